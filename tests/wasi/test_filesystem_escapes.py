"""The path-escape suite: every attempt to reach outside a grant, on both generations.

Each case sets up the granted tree (``root/`` writable, ``ro/`` read-only,
``outside/secret`` beside them, never granted), makes one attempt and states
the exact ``error-code`` it must get. After every attempt the test checks
that nothing outside the grant changed. Races are simulated by construction:
``_paths.STEP_HOOK`` runs between two resolution steps and swaps a symlink
in exactly there.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from _fs_faces import CREATE, FOLLOW, NO_OPEN, NOFOLLOW, READ, RW, Face, context, make_tree

from trio_wasi._abi._values import Variant
from trio_wasi.wasi import _paths

Attempt = Callable[[Face, Path], Awaitable[tuple[str, Any]]]
CASES: list[tuple[str, Attempt, str]] = []
MUTATE = frozenset({"read", "mutate-directory"})
STAMP = Variant("timestamp", {"seconds": 5, "nanoseconds": 0})


def case(name: str, expected: str) -> Callable[[Attempt], Attempt]:
    def register(fn: Attempt) -> Attempt:
        CASES.append((name, fn, expected))
        return fn

    return register


def opener(
    path: str,
    flags: frozenset[str] = READ,
    open_flags: frozenset[str] = NO_OPEN,
    follow: frozenset[str] = FOLLOW,
) -> Attempt:
    async def attempt(face: Face, tree: Path) -> tuple[str, Any]:
        return await face.call(face.root, "open-at", follow, path, open_flags, flags)

    return attempt


def on_root(method: str, *args: Any) -> Attempt:
    async def attempt(face: Face, tree: Path) -> tuple[str, Any]:
        return await face.call(face.root, method, *args)

    return attempt


def on_ro(method: str, *args: Any) -> Attempt:
    async def attempt(face: Face, tree: Path) -> tuple[str, Any]:
        return await face.call(face.ro, method, *args)

    return attempt


# -- `..` chains and absolute paths --------------------------------------------

for name, path in [
    ("dotdot to a sibling", "../outside/secret"),
    ("dotdot chain to /etc", "../../../../../../etc/passwd"),
    ("down then up out", "dir/../../outside/secret"),
    ("zigzag out", "dir/../dir/./../../outside/secret"),
    ("dotdot alone", ".."),
    ("dotdot with slashes", "dir//..//..//outside"),
    ("absolute /etc/passwd", "/etc/passwd"),
    ("absolute root", "/"),
    ("absolute with dotdot", "/../outside/secret"),
]:
    case(f"open {name}", "not-permitted")(opener(path))


@case("absolute host path of the secret", "not-permitted")
async def _abs_host(face: Face, tree: Path) -> tuple[str, Any]:
    return await face.call(
        face.root, "open-at", FOLLOW, str(tree / "outside/secret"), NO_OPEN, READ
    )


@case("subdirectory descriptor cannot climb to its granted parent", "not-permitted")
async def _sub_climb(face: Face, tree: Path) -> tuple[str, Any]:
    sub = await face.open(face.root, "dir", READ)
    return await face.call(sub, "open-at", FOLLOW, "../file", NO_OPEN, READ)


case("stat-at /", "not-permitted")(on_root("stat-at", FOLLOW, "/"))
case("stat-at dotdot", "not-permitted")(on_root("stat-at", NOFOLLOW, "../outside/secret"))
case("readlink-at dotdot", "not-permitted")(on_root("readlink-at", "../outside"))
case("create-directory-at dotdot", "not-permitted")(on_root("create-directory-at", "../new"))
case("unlink-file-at dotdot", "not-permitted")(on_root("unlink-file-at", "../outside/secret"))
case("remove-directory-at dotdot", "not-permitted")(on_root("remove-directory-at", "../outside"))
case("set-times-at dotdot", "not-permitted")(
    on_root("set-times-at", NOFOLLOW, "../outside/secret", STAMP, STAMP)
)
case("metadata-hash-at dotdot", "not-permitted")(
    on_root("metadata-hash-at", NOFOLLOW, "../outside/secret")
)
case("NUL byte in a path", "invalid")(opener("file\0/../../outside/secret"))

# -- symlinks made by the host ----------------------------------------------------


def with_links(attempt: Attempt) -> Attempt:
    async def run(face: Face, tree: Path) -> tuple[str, Any]:
        root = tree / "root"
        os.symlink("/", root / "to_slash")
        os.symlink("../outside", root / "up")
        os.symlink(tree / "outside" / "secret", root / "abs_secret")
        os.symlink("l2", root / "l1")
        os.symlink("l1", root / "l2")
        os.symlink("self", root / "self")
        for i in range(_paths.MAX_SYMLINKS + 1):
            os.symlink(f"c{i + 1}", root / f"c{i}")
        (root / f"c{_paths.MAX_SYMLINKS + 1}").write_text("end of a long chain")
        os.symlink("dir/../..", root / "sneaky")
        return await attempt(face, tree)

    return run


case("symlink to / then into it", "not-permitted")(with_links(opener("to_slash/etc/passwd")))
case("symlink to / followed", "not-permitted")(with_links(opener("to_slash")))
case("relative symlink out", "not-permitted")(with_links(opener("up/secret")))
case("symlink through a subdirectory out", "not-permitted")(with_links(opener("sneaky/outside")))
case("absolute symlink to the secret", "not-permitted")(with_links(opener("abs_secret")))
case("absolute symlink not followed", "loop")(with_links(opener("abs_secret", follow=NOFOLLOW)))
case("stat-at following an absolute symlink", "not-permitted")(
    with_links(on_root("stat-at", FOLLOW, "abs_secret"))
)
case("symlink loop", "loop")(with_links(opener("l1")))
case("symlink loop mid-path", "loop")(with_links(opener("l1/x")))
case("self-referencing symlink", "loop")(with_links(opener("self")))
case("a chain longer than the limit", "loop")(with_links(opener("c0")))
case("create through a symlink pointing out", "not-permitted")(
    with_links(opener("up/planted", RW, CREATE))
)

# -- symlinks made by the guest ----------------------------------------------------


@case("guest symlink to dotdot, then followed", "not-permitted")
async def _guest_link(face: Face, tree: Path) -> tuple[str, Any]:
    assert await face.ok(face.root, "symlink-at", "../outside/secret", "mine") is None
    return await face.call(face.root, "open-at", FOLLOW, "mine", NO_OPEN, READ)


@case("guest symlink to a directory above, then walked", "not-permitted")
async def _guest_dir_link(face: Face, tree: Path) -> tuple[str, Any]:
    assert await face.ok(face.root, "symlink-at", "dir/../..", "top") is None
    return await face.call(face.root, "open-at", FOLLOW, "top/outside/secret", NO_OPEN, READ)


case("guest symlink with an absolute target", "not-permitted")(
    on_root("symlink-at", "/etc/passwd", "abs")
)
case("guest symlink placed outside", "not-permitted")(on_root("symlink-at", "file", "../outside/l"))

# -- races: a symlink swapped in between resolution steps -------------------------


def race(stage: str, victim: str, target: Callable[[Path], str]) -> Callable[[Attempt], Attempt]:
    """Swap ``root/victim`` for a symlink to ``target`` when resolution reaches ``stage``."""

    def wrap(attempt: Attempt) -> Attempt:
        async def run(face: Face, tree: Path) -> tuple[str, Any]:
            fired = []

            def hook(at: str, parent: int, name: str) -> None:
                if at == stage and name == victim and not fired:
                    fired.append(name)
                    path = tree / "root" / victim
                    if path.is_dir():
                        os.rename(path, tree / "root" / (victim + ".old"))
                    elif path.exists():
                        path.unlink()
                    os.symlink(target(tree), path)

            _paths.STEP_HOOK = hook
            try:
                result = await attempt(face, tree)
            finally:
                _paths.STEP_HOOK = None
            assert fired == [victim], "the race was not staged"
            return result

        return run

    return wrap


case("directory swapped for an absolute symlink mid-walk", "not-permitted")(
    race("step", "dir", lambda t: "/")(opener("dir/etc/passwd"))
)
case("directory swapped for a relative symlink out mid-walk", "not-permitted")(
    race("step", "dir", lambda t: "../outside")(opener("dir/secret"))
)
case("file swapped for a symlink after the check", "loop")(
    race("final", "file", lambda t: str(t / "outside" / "secret"))(opener("file"))
)
case("file swapped for a symlink before a write", "loop")(
    race("final", "file", lambda t: str(t / "outside" / "secret"))(opener("file", RW))
)
case("new name swapped for a dangling symlink before create", "loop")(
    race("final", "fresh", lambda t: str(t / "outside" / "planted"))(opener("fresh", RW, CREATE))
)
case("directory swapped before a rename", "not-permitted")(
    race("step", "dir", lambda t: "../outside")(on_root("rename-at", "file", None, "dir/stolen"))
)

# -- hard links and renames out ------------------------------------------------------

case("hard link through an absolute symlink", "not-permitted")(
    with_links(on_root("link-at", FOLLOW, "abs_secret", None, "hard"))
)
case("hard link to a dotdot path", "not-permitted")(
    on_root("link-at", NOFOLLOW, "../outside/secret", None, "hard")
)
case("hard link placed outside", "not-permitted")(
    on_root("link-at", NOFOLLOW, "file", None, "../outside/hard")
)
case("rename out", "not-permitted")(on_root("rename-at", "file", None, "../outside/stolen"))
case("rename in from outside", "not-permitted")(
    on_root("rename-at", "../outside/secret", None, "got")
)
case("rename through a symlink out", "not-permitted")(
    with_links(on_root("rename-at", "file", None, "up/stolen"))
)

# -- read-only grants ------------------------------------------------------------------

case("read-only: open for writing", "read-only")(on_ro("open-at", FOLLOW, "file", NO_OPEN, RW))
case("read-only: create", "read-only")(on_ro("open-at", FOLLOW, "new", CREATE, READ))
case("read-only: truncate", "read-only")(
    on_ro("open-at", FOLLOW, "file", frozenset({"truncate"}), READ)
)
case("read-only: directory with mutate-directory", "read-only")(
    on_ro("open-at", FOLLOW, "dir", NO_OPEN, MUTATE)
)
case("read-only: create-directory-at", "read-only")(on_ro("create-directory-at", "new"))
case("read-only: remove-directory-at", "read-only")(on_ro("remove-directory-at", "dir"))
case("read-only: unlink-file-at", "read-only")(on_ro("unlink-file-at", "file"))
case("read-only: symlink-at", "read-only")(on_ro("symlink-at", "file", "l"))
case("read-only: set-times-at", "read-only")(on_ro("set-times-at", NOFOLLOW, "file", STAMP, STAMP))
case("read-only: link-at", "read-only")(on_ro("link-at", NOFOLLOW, "file", None, "l"))
case("read-only: rename-at within", "read-only")(on_ro("rename-at", "file", None, "moved"))


@case("read-only: rename into the read-only grant", "read-only")
async def _rename_into_ro(face: Face, tree: Path) -> tuple[str, Any]:
    return await face.call(face.root, "rename-at", "file", face.ro, "planted")


@case("read-only: hard link into the read-only grant", "read-only")
async def _link_into_ro(face: Face, tree: Path) -> tuple[str, Any]:
    return await face.call(face.root, "link-at", NOFOLLOW, "file", face.ro, "planted")


@case("read-only: set-size through a read descriptor", "read-only")
async def _ro_set_size(face: Face, tree: Path) -> tuple[str, Any]:
    f = await face.open(face.ro, "file", READ)
    return await face.call(f, "set-size", 0)


@case("read-only: write stream through a read descriptor", "read-only")
async def _ro_write(face: Face, tree: Path) -> tuple[str, Any]:
    f = await face.open(face.ro, "file", READ)
    return await face.write(f, b"overwritten")


@case("read-only: set-times on a descriptor", "read-only")
async def _ro_set_times(face: Face, tree: Path) -> tuple[str, Any]:
    f = await face.open(face.ro, "file", READ)
    return await face.call(f, "set-times", STAMP, STAMP)


def _snapshot(tree: Path) -> dict[str, tuple[Any, ...]]:
    """Everything outside ``root/`` (where the guest may write), with contents and times."""
    seen: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        rel = os.path.relpath(dirpath, tree)
        if rel == "root" or rel.startswith("root" + os.sep):
            continue
        for n in dirnames + filenames:
            if rel == "." and n == "root":
                continue
            p = Path(dirpath) / n
            st = p.lstat()
            body = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
            seen[os.path.join(rel, n)] = (st.st_mode, st.st_nlink, st.st_mtime_ns, body)
    return seen


@pytest.fixture(params=["0.2", "0.3"])
async def face_and_tree(request: Any, tmp_path: Path) -> AsyncIterator[tuple[Face, Path]]:
    tree = make_tree(tmp_path)
    async with trio.open_nursery() as nursery:
        yield Face(request.param, context(nursery), tree), tree


def test_the_suite_has_at_least_thirty_attempts() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize(("name", "attempt", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_escape_is_refused(
    face_and_tree: tuple[Face, Path], name: str, attempt: Attempt, expected: str
) -> None:
    face, tree = face_and_tree
    before = _snapshot(tree)
    # A second descriptor argument of None means: the same directory as the first.
    result = await _with_self(attempt, face, tree)
    assert result == ("err", expected)
    assert _snapshot(tree) == before
    assert (tree / "outside").iterdir() and sorted(os.listdir(tree / "outside")) == ["secret"]


async def _with_self(attempt: Attempt, face: Face, tree: Path) -> tuple[str, Any]:
    original = face.call

    async def call(desc: Any, method: str, *args: Any) -> tuple[str, Any]:
        args = tuple(desc if a is None else a for a in args)
        return await original(desc, method, *args)

    face.call = call  # type: ignore[method-assign]
    try:
        return await attempt(face, tree)
    finally:
        face.call = original  # type: ignore[method-assign]


async def test_refusals_leave_no_file_descriptor_open(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    async with trio.open_nursery() as nursery:
        face = Face("0.2", context(nursery), tree)

        def open_fds() -> int:
            return len(os.listdir("/proc/self/fd"))

        before = open_fds()
        checked = 0
        for name, attempt, expected in CASES:
            if attempt.__name__ == "run" or attempt.__name__.startswith("_"):
                # Sets up links or a race (needs a fresh tree), or holds descriptors.
                continue
            assert await _with_self(attempt, face, tree) == ("err", expected), name
            checked += 1
        assert open_fds() == before
        assert checked >= 30
