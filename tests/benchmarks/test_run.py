"""The benchmark script's table, target checks and n/a handling (not the figures)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _load_run() -> ModuleType:
    name = "_trio_wasi_tests_benchmarks_run"
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("run.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


run = _load_run()


def test_status_follows_target() -> None:
    def under_30(v: float) -> bool:
        return v < 30.0

    assert run.Row("a", 12.0, "us", "< 30 us", under_30).status == "ok"
    assert run.Row("a", 31.0, "us", "< 30 us", under_30).status == "MISS"
    assert run.Row("a", None, "us", "< 30 us", under_30).status == "n/a"
    assert run.Row("a", 5.0, "us").status == ""


def test_table_aligns_columns() -> None:
    rows = [
        run.Row("warm load", 0.25, "s", "< 0.5 s", lambda v: v < 0.5, "note here"),
        run.Row("a much longer benchmark name", None, "us", note="missing"),
    ]
    lines = run.format_table(rows).splitlines()
    assert lines[0].split() == ["benchmark", "figure", "target", "status", "note"]
    assert set(lines[1]) == {"-"}
    assert lines[2].split() == ["warm", "load", "0.250", "s", "<", "0.5", "s", "ok", "note", "here"]
    assert lines[3].split() == ["a", "much", "longer", "benchmark", "name", "n/a", "n/a", "missing"]
    # The figure column starts at the same offset on every line.
    assert lines[2].index("0.250") == lines[3].index("n/a") == lines[0].index("figure")


def test_engine_group_without_bench_module_prints_na(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> ModuleType:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(run.importlib, "import_module", missing)
    rows = run.bench_engine(True)
    assert [r.name for r in rows] == [label for label, _, _ in run.ENGINE_BENCHES]
    assert {r.status for r in rows} == {"n/a"}
    assert all("trio_wasi._engine._bench" in r.note for r in rows)


def test_strict_exit_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(
        run.GROUPS, "call", lambda quick: [run.Row("x", 1.0, "us", "< 30 us", lambda v: v < 30)]
    )
    assert run.main(["--only", "call", "--strict"]) == 0
    monkeypatch.setitem(
        run.GROUPS, "call", lambda quick: [run.Row("x", 99.0, "us", "< 30 us", lambda v: v < 30)]
    )
    assert run.main(["--only", "call", "--strict"]) == 1
    assert run.main(["--only", "call"]) == 0
    assert "MISS" in capsys.readouterr().out
