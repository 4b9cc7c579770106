"""Loads the oracle adapter (``_adapter.py``) once, under a unique module name.

The tests in this directory compare trio_wasi's canonical ABI with the
specification's executable definitions (``definitions.py`` in the shared
reference material next to the repository). The adapter is loaded by path so
it works whatever pytest's import mode is; test modules import it as
``_trio_wasi_oracle_adapter`` and skip themselves when the reference is absent.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "_trio_wasi_oracle_adapter"


def _load_adapter() -> None:
    if _NAME in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).with_name("_adapter.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    spec.loader.exec_module(module)


_load_adapter()
