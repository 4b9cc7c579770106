"""wasi:filesystem 0.3.0 and 0.2.0 driven directly through the host classes.

Every descriptor operation runs on both generations (``face`` is 0.2 or
0.3) against a fresh tree: a granted directory ``root/``, a read-only grant
``ro/`` and ``outside/`` that is never granted. The path-escape suite is in
``test_filesystem_escapes.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from _fs_faces import CREATE, FOLLOW, NO_OPEN, NOFOLLOW, READ, RW, Face, context, make_tree

from trio_wasi._abi._values import Err, Ok, Variant
from trio_wasi.wasi import Preopen, WasiConfig
from trio_wasi.wasi._filesystem import FileInputStream, FsIoError, Types02, add_to_linker
from trio_wasi.wasi._io import IoError


@pytest.fixture(params=["0.2", "0.3"])
async def face(request: Any, tmp_path: Path) -> AsyncIterator[Face]:
    async with trio.open_nursery() as nursery:
        yield Face(request.param, context(nursery), make_tree(tmp_path))


def tree(face: Face) -> Path:
    # The granted directory on the host (the descriptor's fd names it).
    return Path(os.readlink(f"/proc/self/fd/{face.root.node.fd}"))


async def test_preopens_are_directories_with_their_flags(face: Face) -> None:
    assert sorted(face.roots) == ["/ro", "/root"]
    assert await face.ok(face.root, "get-type") == "directory"
    assert await face.ok(face.root, "get-flags") == {"read", "mutate-directory"}
    assert await face.ok(face.ro, "get-flags") == {"read"}


async def test_write_read_and_stat_a_new_file(face: Face) -> None:
    f = await face.open(face.root, "new", RW, open_flags=CREATE)
    assert await face.ok(f, "get-type") == "regular-file"
    assert await face.ok(f, "get-flags") == {"read", "write"}
    assert await face.write(f, b"hello world") == ("ok", None)
    assert await face.read(f) == ("ok", b"hello world")
    assert await face.read(f, 6) == ("ok", b"world")
    assert await face.write(f, b"W", 6) == ("ok", None)
    assert await face.write(f, b"!", None) == ("ok", None)
    assert (tree(face) / "new").read_bytes() == b"hello World!"
    st = await face.ok(f, "stat")
    assert (st["type"], st["size"], st["link-count"]) == ("regular-file", 12, 1)
    mtime = st["data-modification-timestamp"]
    assert abs(mtime["seconds"] - time.time()) < 3600
    assert await face.ok(face.root, "stat-at", NOFOLLOW, "new") == st


async def test_stream_survives_the_descriptor(face: Face) -> None:
    f = await face.open(face.root, "file")
    if face.version == "0.2":
        stream = await face.ok(f, "read-via-stream", 2)
        f.close()
        assert stream.read(3).value == b"234"
        stream.close()
    else:
        chunks, future = f.read_via_stream(2)
        f.close()
        assert await chunks.receive() == b"23456789"
        await chunks.aclose()
        # Stopping early is no failure.
        assert await future.receive() == Ok()


async def test_read_stream_of_a_large_file_comes_in_chunks(face: Face) -> None:
    data = os.urandom(3 << 20)
    (tree(face) / "big").write_bytes(data)
    f = await face.open(face.root, "big")
    assert await face.read(f) == ("ok", data)


async def test_descriptor_flags_limit_reads_and_writes(face: Face) -> None:
    reader = await face.open(face.root, "file", READ)
    assert await face.write(reader, b"x") == ("err", "bad-descriptor")
    assert await face.call(reader, "set-size", 0) == ("err", "bad-descriptor")
    writer = await face.open(face.root, "file", frozenset({"write"}))
    assert await face.read(writer) == ("err", "bad-descriptor")
    assert await face.read(face.root) == ("err", "is-directory")
    assert await face.write(face.root, b"x") == ("err", "is-directory")
    assert (tree(face) / "file").read_bytes() == b"0123456789"


async def test_set_size_truncate_and_exclusive(face: Face) -> None:
    f = await face.open(face.root, "file", RW)
    assert await face.ok(f, "set-size", 4) == None  # noqa: E711
    assert (tree(face) / "file").read_bytes() == b"0123"
    trunc = frozenset({"truncate"})
    await face.open(face.root, "file", RW, open_flags=trunc)
    assert (tree(face) / "file").read_bytes() == b""
    excl = frozenset({"create", "exclusive"})
    assert await face.call(face.root, "open-at", FOLLOW, "file", excl, RW) == ("err", "exist")
    assert await face.call(face.root, "open-at", FOLLOW, "nope", NO_OPEN, READ) == (
        "err",
        "no-entry",
    )
    dirflag = frozenset({"directory"})
    assert await face.call(face.root, "open-at", FOLLOW, "file", dirflag, READ) == (
        "err",
        "not-directory",
    )


async def test_set_times_and_set_times_at(face: Face) -> None:
    stamp = Variant("timestamp", {"seconds": 1_000_000_000, "nanoseconds": 5})
    keep, now = Variant("no-change"), Variant("now")
    f = await face.open(face.root, "file", RW)
    assert await face.ok(f, "set-times", stamp, keep) is None
    st = os.stat(tree(face) / "file")
    assert st.st_atime_ns == 1_000_000_000_000_000_005
    assert await face.ok(face.root, "set-times-at", NOFOLLOW, "file", keep, stamp) is None
    st = os.stat(tree(face) / "file")
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_000_000_000_005,) * 2
    assert await face.ok(f, "set-times", now, now) is None
    assert os.stat(tree(face) / "file").st_mtime > time.time() - 3600
    got = await face.ok(face.root, "stat-at", NOFOLLOW, "file")
    assert got["data-access-timestamp"]["seconds"] > 1_000_000_000


def _meanwhile(
    monkeypatch: pytest.MonkeyPatch, path: Path, change: Callable[[], None]
) -> list[int]:
    """Make ``change`` happen the first time the host reads ``path``'s metadata.

    This is where a host that reads a value, then writes based on it, can
    be raced by another process; the list records whether it happened.
    """
    ino = os.stat(path).st_ino
    fired: list[int] = []
    for name in ("stat", "fstat", "lstat"):
        real = getattr(os, name)

        def spy(*args: Any, _real: Any = real, **kwargs: Any) -> os.stat_result:
            st = _real(*args, **kwargs)
            if st.st_ino == ino and not fired:
                fired.append(1)
                change()
            return st

        monkeypatch.setattr(os, name, spy)
    return fired


async def test_set_times_never_undoes_a_change_to_the_time_it_keeps(
    face: Face, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tree(face) / "file"
    before, meanwhile, stamp = 1_000_000_000_000_000_000, 1_100_000_000_000_000_000, 7
    os.utime(path, ns=(before, before))
    f = await face.open(face.root, "file", RW)
    mtime = Variant("timestamp", {"seconds": stamp, "nanoseconds": 0})
    for call in (
        lambda: face.ok(f, "set-times", Variant("no-change"), mtime),
        lambda: face.ok(face.root, "set-times-at", NOFOLLOW, "file", Variant("no-change"), mtime),
    ):
        os.utime(path, ns=(before, before))
        with monkeypatch.context() as patch:
            fired = _meanwhile(patch, path, lambda: os.utime(path, ns=(meanwhile, before)))
            assert await call() is None
        st = os.stat(path)
        # The access time was left alone: whatever another writer set stays.
        assert st.st_atime_ns == (meanwhile if fired else before)
        assert st.st_mtime_ns == stamp * 1_000_000_000


async def test_appending_never_overwrites_another_writer(
    face: Face, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tree(face) / "file"
    f = await face.open(face.root, "file", RW)

    def other_writer() -> None:
        with path.open("ab") as other:
            other.write(b"[other]")

    with monkeypatch.context() as patch:
        fired = _meanwhile(patch, path, other_writer)
        assert await face.write(f, b"[mine]", offset=None) == ("ok", None)
    expected = b"0123456789" + (b"[other]" if fired else b"") + b"[mine]"
    assert path.read_bytes() == expected


async def test_advise_sync_and_sync_data(face: Face) -> None:
    f = await face.open(face.root, "file", RW)
    for advice in ("normal", "sequential", "random", "will-need", "dont-need", "no-reuse"):
        assert await face.ok(f, "advise", 0, 10, advice) is None
    assert await face.ok(f, "sync") is None
    assert await face.ok(f, "sync-data") is None
    assert await face.ok(face.root, "sync") is None


async def test_directories_create_list_remove(face: Face) -> None:
    assert await face.ok(face.root, "create-directory-at", "d1") is None
    assert await face.call(face.root, "create-directory-at", "d1") == ("err", "exist")
    assert await face.ok(face.root, "create-directory-at", "d1/d2") is None
    await face.open(face.root, "d1/f", RW, open_flags=CREATE)
    d1 = await face.open(face.root, "d1", READ)
    assert await face.listing(d1) == ("ok", [("d2", "directory"), ("f", "regular-file")])
    assert await face.call(face.root, "remove-directory-at", "d1") == ("err", "not-empty")
    assert await face.call(face.root, "remove-directory-at", "d1/f") == ("err", "not-directory")
    assert await face.call(face.root, "unlink-file-at", "d1/d2") == ("err", "is-directory")
    assert await face.ok(face.root, "unlink-file-at", "d1/f") is None
    assert await face.ok(face.root, "remove-directory-at", "d1/d2") is None
    assert await face.listing(d1) == ("ok", [])
    assert await face.listing(await face.open(face.root, "file")) == ("err", "not-directory")


async def test_listing_names_every_kind(face: Face) -> None:
    os.symlink("file", tree(face) / "link")
    os.mkfifo(tree(face) / "fifo")
    assert await face.listing(face.root) == (
        "ok",
        [
            ("dir", "directory"),
            ("fifo", "fifo"),
            ("file", "regular-file"),
            ("link", "symbolic-link"),
        ],
    )


async def test_rename_link_symlink_readlink(face: Face) -> None:
    assert await face.ok(face.root, "rename-at", "file", face.root, "dir/moved") is None
    assert (tree(face) / "dir" / "moved").read_bytes() == b"0123456789"
    assert await face.call(face.root, "rename-at", "file", face.root, "x") == ("err", "no-entry")
    assert await face.ok(face.root, "link-at", NOFOLLOW, "dir/moved", face.root, "hard") is None
    assert os.stat(tree(face) / "hard").st_nlink == 2
    assert await face.ok(face.root, "symlink-at", "dir/moved", "soft") is None
    assert await face.ok(face.root, "readlink-at", "soft") == "dir/moved"
    assert await face.call(face.root, "readlink-at", "hard") == ("err", "invalid")
    soft = await face.ok(face.root, "stat-at", NOFOLLOW, "soft")
    followed = await face.ok(face.root, "stat-at", FOLLOW, "soft")
    assert (soft["type"], followed["type"]) == ("symbolic-link", "regular-file")
    assert await face.read(await face.open(face.root, "soft")) == ("ok", b"0123456789")
    assert await face.call(face.root, "open-at", NOFOLLOW, "soft", NO_OPEN, READ) == (
        "err",
        "loop",
    )
    # link-at following the symlink links its target, not the link.
    assert await face.ok(face.root, "link-at", FOLLOW, "soft", face.root, "hard2") is None
    assert os.stat(tree(face) / "hard2").st_nlink == 3
    # A rename between two descriptors.
    d = await face.open(face.root, "dir", frozenset({"read", "mutate-directory"}))
    assert await face.ok(d, "rename-at", "moved", face.root, "back") is None
    assert (tree(face) / "back").is_file()


async def test_same_object_and_metadata_hash(face: Face) -> None:
    a = await face.open(face.root, "file")
    b = await face.open(face.root, "file")
    c = await face.open(face.root, "dir")
    same = await a.is_same_object(b) if face.version == "0.3" else a.is_same_object(b)
    other = await a.is_same_object(c) if face.version == "0.3" else a.is_same_object(c)
    assert (same, other) == (True, False)
    h = await face.ok(a, "metadata-hash")
    assert await face.ok(b, "metadata-hash") == h
    assert await face.ok(face.root, "metadata-hash-at", NOFOLLOW, "file") == h
    assert await face.ok(c, "metadata-hash") != h
    assert set(h) == {"lower", "upper"}


async def test_child_directory_needs_mutate_directory(face: Face) -> None:
    plain = await face.open(face.root, "dir", READ)
    assert await face.ok(plain, "get-flags") == {"read"}
    assert await face.call(plain, "create-directory-at", "x") == ("err", "not-permitted")
    assert await face.call(plain, "open-at", FOLLOW, "x", CREATE, RW) == ("err", "not-permitted")
    mutable = await face.open(face.root, "dir", frozenset({"read", "mutate-directory"}))
    assert await face.ok(mutable, "create-directory-at", "x") is None
    assert (tree(face) / "dir" / "x").is_dir()


async def test_metadata_only_descriptor(face: Face) -> None:
    f = await face.open(face.root, "file", frozenset())
    assert await face.ok(f, "get-type") == "regular-file"
    assert (await face.ok(f, "stat"))["size"] == 10
    assert await face.read(f) == ("err", "bad-descriptor")


async def test_read_at_offset_02(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        face = Face("0.2", context(nursery), make_tree(tmp_path))
        f = await face.open(face.root, "file", RW)
        assert f.read(4, 2) == f.read(4, 2)
        assert f.read(4, 2).value == (b"2345", False)
        assert f.read(100, 8).value == (b"89", True)
        assert f.read(0, 0).value == (b"", False)
        assert f.write(b"ab", 12).value == 2
        assert (tmp_path / "root" / "file").read_bytes() == b"0123456789\0\0ab"
        assert face.ro.read(1, 0) == Err("is-directory")


async def test_directory_entry_stream_and_error_code_02(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        face = Face("0.2", context(nursery), make_tree(tmp_path))
        stream = face.root.read_directory().value
        names = set()
        while (entry := stream.read_directory_entry().value) is not None:
            names.add(entry["name"])
        assert names == {"file", "dir"}
        assert stream.read_directory_entry().value is None
        # A stream failure carries a code filesystem-error-code reads.
        fd = os.open(tmp_path / "root" / "file", os.O_WRONLY)
        broken = FileInputStream(fd, 0)
        result = broken.read(10)
        broken.close()
        assert isinstance(result, Err) and result.value.case == "last-operation-failed"
        err = result.value.value
        assert isinstance(err, FsIoError)
        assert Types02.filesystem_error_code(err) == "bad-descriptor"
        assert Types02.filesystem_error_code(IoError("stdout broke", "io")) is None


async def test_write_stream_error_resolves_the_future_03(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        face = Face("0.3", context(nursery), make_tree(tmp_path))
        f = await face.open(face.root, "file", READ)
        send, receive = trio.open_memory_channel[bytes](1)
        future = f.write_via_stream(receive, 0)
        assert await future.receive() == Err(Variant("bad-descriptor"))
        # The guest's stream was dropped, so its writer learns at once.
        with pytest.raises(trio.BrokenResourceError):
            await send.send(b"x")
        items, done = f.read_directory()
        assert [i async for i in items] == []
        assert await done.receive() == Err(Variant("not-directory"))


async def test_error_codes_without_a_03_case_become_other(tmp_path: Path) -> None:
    from trio_wasi.wasi._filesystem import _err03
    from trio_wasi.wasi._paths import FsError

    assert _err03(FsError("would-block", "try again")) == Err(Variant("other", "try again"))
    assert _err03(FsError("access")) == Err(Variant("access"))


def test_a_preopen_that_is_not_a_directory_is_refused_at_link_time(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    config = WasiConfig(preopens=[Preopen(tmp_path / "f", "/f")])
    with pytest.raises(ValueError, match="not a directory"):
        add_to_linker(None, config)  # type: ignore[arg-type]


async def test_reads_that_would_wait_for_the_disk_leave_the_trio_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every page-cache-only read says "would block": only a worker thread can read.
    def uncached(fd: int, buffers: Any, offset: int, flags: int = 0) -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "preadv", uncached)
    data = os.urandom(3 << 20)
    async with trio.open_nursery() as nursery:
        face = Face("0.3", context(nursery), make_tree(tmp_path))
        (tmp_path / "root" / "big").write_bytes(data)
        assert await face.read(await face.open(face.root, "big")) == ("ok", data)
        face2 = Face("0.2", context(nursery), tmp_path)
        stream = (await face2.open(face2.root, "big")).read_via_stream(0).value
        # On the trio thread a plain read does not wait: no bytes yet, not ready.
        assert stream.read(10) == Ok(b"")
        assert not stream.subscribe().ready()
        assert await stream.blocking_read(10) == Ok(data[:10])
        assert stream.read(10) == Ok(data[10:20])
        stream.close()
        assert await face2.read(await face2.open(face2.root, "big")) == ("ok", data)


async def test_a_file_system_without_nowait_reads_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def unsupported(fd: int, buffers: Any, offset: int, flags: int = 0) -> int:
        calls.append(flags)
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "preadv", unsupported)
    async with trio.open_nursery() as nursery:
        face = Face("0.3", context(nursery), make_tree(tmp_path))
        assert await face.read(await face.open(face.root, "file")) == ("ok", b"0123456789")
    assert len(calls) == 1  # asked once, then plain reads
