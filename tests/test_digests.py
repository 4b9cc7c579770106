"""File digests remembered by file status (trio_wasi._digests)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from trio_wasi import _digests
from trio_wasi._digests import read_with_digest


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    # Files written by a test are seconds old at most: count them as settled.
    monkeypatch.setattr(_digests, "SETTLED_SECONDS", -1.0)


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "digests").glob("*")) if (cache / "digests").exists() else []


def test_digest_is_recorded_and_found_again(tmp_path: Path, settled: None) -> None:
    cache = tmp_path / "cache"
    f = tmp_path / "c.wasm"
    f.write_bytes(b"\0asm one")
    assert read_with_digest(f, cache) == (b"\0asm one", sha(b"\0asm one"))
    (entry,) = entries(cache)
    # Found by status: an entry holding another (well-sealed) digest for the
    # same status is believed, which shows that no hashing happened.
    key = entry.name
    other = sha(b"other")
    entry.write_bytes(_digests._MAGIC + other + _digests._seal(key, other))
    assert read_with_digest(f, cache) == (b"\0asm one", other)


def test_a_rewritten_file_is_hashed_again(tmp_path: Path, settled: None) -> None:
    cache = tmp_path / "cache"
    f = tmp_path / "c.wasm"
    f.write_bytes(b"\0asm one")
    st = f.stat()
    read_with_digest(f, cache)
    # Same size, modification time put back: the status-change time still moves.
    f.write_bytes(b"\0asm two")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_ctime_ns != st.st_ctime_ns
    assert read_with_digest(f, cache) == (b"\0asm two", sha(b"\0asm two"))


def test_a_fresh_file_is_not_recorded(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    f = tmp_path / "c.wasm"
    f.write_bytes(b"\0asm new")
    assert read_with_digest(f, cache) == (b"\0asm new", sha(b"\0asm new"))
    assert entries(cache) == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[:-1],
        lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]),
        lambda raw: raw[:30] + bytes([raw[30] ^ 1]) + raw[31:],
        lambda raw: b"",
        lambda raw: b"x" + raw[1:],
    ],
)
def test_a_damaged_entry_is_ignored(tmp_path: Path, settled: None, damage: object) -> None:
    cache = tmp_path / "cache"
    f = tmp_path / "c.wasm"
    f.write_bytes(b"\0asm one")
    read_with_digest(f, cache)
    (entry,) = entries(cache)
    entry.write_bytes(damage(entry.read_bytes()))  # type: ignore[operator]
    assert read_with_digest(f, cache) == (b"\0asm one", sha(b"\0asm one"))
    # And rewritten whole.
    assert read_with_digest(f, cache)[1] == sha(b"\0asm one")
    assert len(entry.read_bytes()) == len(_digests._MAGIC) + 64


def test_no_cache_means_hashing(tmp_path: Path) -> None:
    f = tmp_path / "c.wasm"
    f.write_bytes(b"\0asm one")
    assert read_with_digest(f, None) == (b"\0asm one", sha(b"\0asm one"))


def test_an_unwritable_cache_does_not_fail_the_read(tmp_path: Path, settled: None) -> None:
    blocker = tmp_path / "cache"
    blocker.write_bytes(b"")  # a file where the directory should be
    f = tmp_path / "c.wasm"
    f.write_bytes(b"\0asm one")
    assert read_with_digest(f, blocker) == (b"\0asm one", sha(b"\0asm one"))
