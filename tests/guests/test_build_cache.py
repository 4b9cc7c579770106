"""The guest build cache: keys, reuse, and no partial entries (with a fake componentize-py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HEADER = b"\x00asm\x0d\x00\x01\x00"

# Stands in for componentize-py: records its argv and what it saw in the source
# directory, writes a component header to -o, and fails when FAIL is set.
FAKE = """\
import json, os, sys
from pathlib import Path
argv = sys.argv[1:]
src = Path(argv[argv.index("-p") + 1])
(src / "__pycache__").mkdir(exist_ok=True)
seen = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"argv": argv, "files": seen}) + "\\n")
if os.environ.get("FAKE_FAIL"):
    print("boom", file=sys.stderr)
    sys.exit(3)
Path(argv[argv.index("-o") + 1]).write_bytes(HEADER + b"fake")
"""


@pytest.fixture
def guest_build(guest_build_module: ModuleType) -> Any:
    return guest_build_module


@pytest.fixture
def fake(guest_build: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    guests = tmp_path / "guests"
    (guests / "demo" / "wit").mkdir(parents=True)
    (guests / "demo" / "app.py").write_text("X = 1\n")
    (guests / "demo" / "wit" / "world.wit").write_text("package local:demo;\nworld w {}\n")
    script = tmp_path / "fake-componentize-py"
    script.write_text(f"#!{sys.executable}\nHEADER = {HEADER!r}\n{FAKE}")
    script.chmod(0o755)
    log = tmp_path / "log.jsonl"
    monkeypatch.setattr(guest_build, "GUESTS_DIR", guests)
    monkeypatch.setattr(guest_build, "componentize_py_path", lambda: script)
    monkeypatch.setattr(guest_build, "componentize_py_version", lambda: "componentize-py 9.9")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("TRIO_WASI_GUEST_CACHE", str(cache))
    return {"guests": guests, "log": log, "cache": cache}


def runs(fake: dict[str, Any]) -> list[dict[str, Any]]:
    log: Path = fake["log"]
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_builds_once_then_reuses(guest_build: Any, fake: dict[str, Any]) -> None:
    first = guest_build.build_guest("demo", "w", stub_wasi=True)
    second = guest_build.build_guest("demo", "w", stub_wasi=True)
    assert first == second
    assert first.parent == fake["cache"]
    assert first.read_bytes() == HEADER + b"fake"
    [run] = runs(fake)
    argv = run["argv"]
    assert argv[argv.index("-w") + 1] == "w"
    assert Path(argv[argv.index("-d") + 1]).name == "wit"
    assert argv[argv.index("componentize") + 1] == "app"
    assert "-s" in argv
    assert run["files"] == ["app.py", "wit/world.wit"]
    # The build ran on a copy: the guest's own directory gained no bytecode cache.
    assert not (fake["guests"] / "demo" / "__pycache__").exists()
    assert sorted(p.name for p in fake["cache"].iterdir()) == [first.name]


def test_stub_flag_is_passed_only_when_asked(guest_build: Any, fake: dict[str, Any]) -> None:
    stubbed = guest_build.build_guest("demo", "w", stub_wasi=True)
    plain = guest_build.build_guest("demo", "w", stub_wasi=False)
    assert stubbed != plain
    assert ["-s" in run["argv"] for run in runs(fake)] == [True, False]


def test_key_covers_inputs(
    guest_build: Any, fake: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def key(**kw: Any) -> str:
        return str(guest_build.cache_key("demo", kw.get("world", "w"), stub_wasi=False))

    base = key()
    assert key() == base
    assert key(world="other") != base
    assert guest_build.cache_key("demo", "w", stub_wasi=True) != base

    # Bytecode caches do not count; sources and WIT do.
    pycache = fake["guests"] / "demo" / "__pycache__"
    pycache.mkdir()
    (pycache / "app.cpython-314.pyc").write_bytes(b"junk")
    assert key() == base
    (fake["guests"] / "demo" / "app.py").write_text("X = 2\n")
    changed_app = key()
    assert changed_app != base
    (fake["guests"] / "demo" / "wit" / "world.wit").write_text("package local:demo;\n")
    assert key() not in (base, changed_app)
    monkeypatch.setattr(guest_build, "componentize_py_version", lambda: "componentize-py 9.10")
    assert key() != base


def test_failed_build_leaves_no_entry(
    guest_build: Any, fake: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FAIL", "1")
    with pytest.raises(guest_build.GuestBuildError, match="boom"):
        guest_build.build_guest("demo", "w", stub_wasi=False)
    assert list(fake["cache"].iterdir()) == []


def test_corrupt_entry_is_rebuilt(guest_build: Any, fake: dict[str, Any]) -> None:
    path = guest_build.build_guest("demo", "w", stub_wasi=False)
    path.write_bytes(b"truncated")
    assert guest_build.build_guest("demo", "w", stub_wasi=False) == path
    assert path.read_bytes() == HEADER + b"fake"
    assert len(runs(fake)) == 2


def test_not_a_guest_directory(guest_build: Any, fake: dict[str, Any]) -> None:
    (fake["guests"] / "empty").mkdir()
    with pytest.raises(guest_build.GuestBuildError, match="not a guest directory"):
        guest_build.build_guest("empty", "w", stub_wasi=False)
