"""Conformance runner: executes Component Model ``.wast`` suites against trio_wasi.

Run it as ``python -m conformance PATH...``; see the README for the output
format and for how the ledger of known failures (``ledger.txt``) is applied.
"""

from ._cli import main

__all__ = ["main"]
