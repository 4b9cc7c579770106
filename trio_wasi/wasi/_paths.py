"""Capability-scoped file access: every path resolved beneath a directory descriptor.

The rules (what keeps a guest inside what it was granted):

* A path is always relative to a descriptor the guest holds, and resolved
  beneath it: never by joining strings, always one component at a time
  relative to the file descriptor of the directory reached so far
  (``os.open(name, O_PATH | O_DIRECTORY | O_NOFOLLOW, dir_fd=parent)``). A
  directory swapped for a symlink between two steps is therefore seen as a
  symlink, never followed by the kernel.
* An absolute path, and a ``..`` that would climb above the starting
  descriptor, are refused with ``not-permitted`` (as a capability system
  refuses an escape attempt); a ``..`` inside the walk returns to the
  directory already open one level up.
* Symlinks are followed by this module only: an intermediate one always, the
  last component only when the path flags say ``symlink-follow``. Its target
  is spliced into the remaining path and resolved by the same rules from the
  directory holding the link, so an absolute target or one that climbs out
  is refused like a path the guest wrote. After 40 links the answer is
  ``loop``.
* The final operation uses the ``*at`` call on the parent descriptor with
  symlinks not followed (``O_NOFOLLOW``, ``follow_symlinks=False``): if the
  last component became a symlink after it was checked, the kernel refuses
  (``loop``) or acts on the link itself, never on what it points to.
* A read-only grant (``Preopen(read_only=True)``) marks its descriptors and
  everything opened beneath them read-only: every change is ``read-only``.
  Beneath a writable grant, a directory descriptor changes its directory
  only with ``mutate-directory``, and opening for writing, creating or
  truncating needs it too (``not-permitted``); a file descriptor reads only
  with ``read`` and writes only with ``write`` (``bad-descriptor``).

Every failure is an :class:`FsError` carrying the wasi:filesystem
``error-code`` label; the 0.2 and 0.3 faces (``_filesystem``) turn it into
the interface's result. Nothing here uses trio: the operations are plain
system calls, safe on any thread.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import functools
import hashlib
import os
import stat as stat_mod
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from ._errno import FILESYSTEM_CODES

__all__ = [
    "FsError",
    "MAX_SYMLINKS",
    "Node",
    "Resolved",
    "descriptor_type",
    "open_preopen",
    "resolve",
]

MAX_SYMLINKS = 40

_O_PATH: int = getattr(os, "O_PATH", 0)
_O_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY: int = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)
_SYNC_FLAGS = (
    ("file-integrity-sync", "O_SYNC"),
    ("data-integrity-sync", "O_DSYNC"),
    ("requested-write-sync", "O_RSYNC"),
)
# A directory reached on the way: opened only to resolve beneath it.
_STEP_FLAGS = (_O_PATH or os.O_RDONLY) | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC

#: Tests hook here to act between resolution steps (simulating a race):
#: called with ``("step", parent_fd, name)`` before each intermediate
#: directory is opened and ``("final", parent_fd, name)`` before the last
#: component is handed to the operation.
STEP_HOOK: Callable[[str, int, str], None] | None = None

# Keys the metadata hash, so it identifies a file without revealing its inode.
_HASH_KEY = os.urandom(16)

READ, WRITE, MUTATE = "read", "write", "mutate-directory"


class FsError(Exception):
    """A wasi:filesystem operation failed with ``code`` (an ``error-code`` label)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code

    @classmethod
    def from_os(cls, exc: OSError) -> FsError:
        return cls(FILESYSTEM_CODES.get(exc.errno or 0, "io"), exc.strerror or str(exc))


def _hook(stage: str, parent: int, name: str) -> None:
    hook = STEP_HOOK
    if hook is not None:
        hook(stage, parent, name)


def descriptor_type(mode: int) -> str:
    """The wasi:filesystem ``descriptor-type`` label of a ``st_mode`` (``unknown`` if none)."""
    if stat_mod.S_ISREG(mode):
        return "regular-file"
    if stat_mod.S_ISDIR(mode):
        return "directory"
    if stat_mod.S_ISLNK(mode):
        return "symbolic-link"
    if stat_mod.S_ISCHR(mode):
        return "character-device"
    if stat_mod.S_ISBLK(mode):
        return "block-device"
    if stat_mod.S_ISFIFO(mode):
        return "fifo"
    if stat_mod.S_ISSOCK(mode):
        return "socket"
    return "unknown"


# ---------------------------------------------------------------------------
# Resolution


class Resolved:
    """The directory holding a path's last component (an owned fd) and that component.

    ``name`` is ``"."`` when the path names the directory itself. Use it as a
    context manager: leaving it closes ``parent``.
    """

    __slots__ = ("must_be_dir", "name", "parent")

    def __init__(self, parent: int, name: str, must_be_dir: bool) -> None:
        self.parent = parent
        self.name = name
        self.must_be_dir = must_be_dir

    def __enter__(self) -> Resolved:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.parent)

    def check_dir(self) -> None:
        """A trailing ``/`` asked for a directory: refuse an existing non-directory."""
        if not self.must_be_dir or self.name == ".":
            return
        try:
            st = os.stat(self.name, dir_fd=self.parent, follow_symlinks=False)
        except OSError:
            return
        if not stat_mod.S_ISDIR(st.st_mode):
            raise FsError("not-directory")


def _readlink(parent: int, name: str) -> str | None:
    """The target of symlink ``name`` in ``parent``; None when it is not a symlink."""
    try:
        return os.readlink(name, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOENT):
            return None
        raise


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def resolve(base: int, path: str, *, follow: bool) -> Resolved:
    """Resolve ``path`` beneath directory fd ``base`` (see the module's rules).

    ``follow``: whether a symlink as the last component is followed. Raises
    :class:`FsError`; never returns a location outside ``base``.
    """
    if not path:
        raise FsError("no-entry")
    if "\0" in path:
        raise FsError("invalid")
    if path.startswith("/"):
        raise FsError("not-permitted", "absolute paths are not permitted")
    must_be_dir = path.endswith("/")
    follow = follow or must_be_dir
    parts = collections.deque(_split(path))
    # The directories walked through, ``base`` (duplicated) first; a ``..``
    # pops back to the one above, and can never pop ``base`` itself.
    stack = [os.dup(base)]
    links = 0
    try:
        while True:
            if not parts:
                name = "."
                break
            name = parts.popleft()
            if name == "..":
                if len(stack) == 1:
                    raise FsError("not-permitted", "the path leaves the directory")
                os.close(stack.pop())
                continue
            last = not parts
            parent = stack[-1]
            target: str | None
            if last:
                if not follow:
                    break
                target = _readlink(parent, name)
                if target is None:
                    break
            else:
                _hook("step", parent, name)
                try:
                    stack.append(os.open(name, _STEP_FLAGS, dir_fd=parent))
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    target = _readlink(parent, name)
                    if target is None:
                        raise
            links += 1
            if links > MAX_SYMLINKS:
                raise FsError("loop")
            if target.startswith("/"):
                raise FsError("not-permitted", "a symlink leads out of the directory")
            if last and target.endswith("/"):
                must_be_dir = True
            parts.extendleft(reversed(_split(target)))
        _hook("final", stack[-1], name)
        parent = stack.pop()
        return Resolved(parent, name, must_be_dir)
    except OSError as exc:
        raise FsError.from_os(exc) from exc
    finally:
        for fd in stack:
            os.close(fd)


# utimensat(2) and futimens(2) take each time as a timespec, or one of these
# markers in tv_nsec (Linux values): "leave this time alone" and "the
# kernel's now". os.utime has neither, so it must read a time to keep it,
# which undoes a change made between the read and the write.
_UTIME_NOW = (1 << 30) - 1
_UTIME_OMIT = (1 << 30) - 2
_AT_SYMLINK_NOFOLLOW = 0x100


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


@functools.cache
def _libc() -> Any:
    """The C library's ``utimensat`` and ``futimens``, on Linux; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.utimensat, libc.futimens
    except (OSError, AttributeError):
        return None


def _timespec(value: Any) -> _Timespec:
    if value is None:
        return _Timespec(0, _UTIME_OMIT)
    if value == "now":
        return _Timespec(0, _UTIME_NOW)
    sec, nsec = divmod(int(value), 1_000_000_000)
    return _Timespec(sec, nsec)


def _set_times(fd: int, name: str | None, atime: Any, mtime: Any) -> None:
    """Set the times of ``fd``, or of ``name`` beneath it (never following a symlink).

    ``None`` keeps a time and ``"now"`` takes the kernel's clock, both in the
    one system call, so nothing is read first (wasi:filesystem
    ``new-timestamp``: ``no-change``, ``now``, ``timestamp``).
    """
    calls = _libc()
    if calls is None:
        st = _os(os.stat, name, dir_fd=fd, follow_symlinks=False) if name else _os(os.fstat, fd)
        ns = (_new_time(atime, st.st_atime_ns), _new_time(mtime, st.st_mtime_ns))
        if name is None:
            _os(os.utime, fd, ns=ns)
        else:
            _os(os.utime, name, ns=ns, dir_fd=fd, follow_symlinks=False)
        return
    utimensat, futimens = calls
    times = (_Timespec * 2)(_timespec(atime), _timespec(mtime))
    if name is None:
        rc = futimens(fd, times)
    else:
        rc = utimensat(fd, os.fsencode(name), times, _AT_SYMLINK_NOFOLLOW)
    if rc != 0:
        code = ctypes.get_errno()
        raise FsError.from_os(OSError(code, os.strerror(code)))


def _new_time(value: Any, current: int) -> int:
    """A ``new-timestamp`` as nanoseconds: ``None`` keeps ``current``, ``"now"`` is now."""
    if value is None:
        return current
    if value == "now":
        return time.time_ns()
    return int(value)


# ---------------------------------------------------------------------------
# Descriptors


def open_preopen(host_path: str | os.PathLike[str], read_only: bool) -> Node:
    """A descriptor for a granted host directory."""
    fd = os.open(host_path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    flags = frozenset({READ} if read_only else {READ, MUTATE})
    return Node(fd, is_dir=True, flags=flags, read_only=read_only)


def _entry_type(entry: os.DirEntry[str]) -> str:
    # d_type answers the common cases without a system call per entry.
    if entry.is_symlink():
        return "symbolic-link"
    if entry.is_dir(follow_symlinks=False):
        return "directory"
    if entry.is_file(follow_symlinks=False):
        return "regular-file"
    try:
        return descriptor_type(entry.stat(follow_symlinks=False).st_mode)
    except OSError:
        return "unknown"


class Node:
    """One open file or directory (the core of a wasi:filesystem descriptor).

    Owns ``fd``; :meth:`close` releases it once. Streams and directory
    listings take their own duplicate, so they outlive the descriptor.
    """

    def __init__(self, fd: int, *, is_dir: bool, flags: frozenset[str], read_only: bool) -> None:
        self.fd = fd
        self.is_dir = is_dir
        self.flags = flags
        self.read_only = read_only
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    # -- permissions ---------------------------------------------------------

    def _live(self) -> int:
        fd = self.fd
        if fd < 0:
            raise FsError("bad-descriptor")
        return fd

    def _dir(self) -> int:
        fd = self._live()
        if not self.is_dir:
            raise FsError("not-directory")
        return fd

    def _mutable_dir(self) -> int:
        fd = self._dir()
        if self.read_only:
            raise FsError("read-only")
        if MUTATE not in self.flags:
            raise FsError("not-permitted")
        return fd

    def readable_fd(self) -> int:
        """The fd, if this is a file opened for reading."""
        fd = self._live()
        if self.is_dir:
            raise FsError("is-directory")
        if READ not in self.flags:
            raise FsError("bad-descriptor")
        return fd

    def writable_fd(self) -> int:
        """The fd, if this is a file opened for writing."""
        fd = self._live()
        if self.is_dir:
            raise FsError("is-directory")
        if self.read_only:
            raise FsError("read-only")
        if WRITE not in self.flags:
            raise FsError("bad-descriptor")
        return fd

    def dup(self, fd: int) -> int:
        """A duplicate of ``fd`` for a stream or listing of its own."""
        try:
            return os.dup(fd)
        except OSError as exc:
            raise FsError.from_os(exc) from exc

    def _resolve(self, path: str, *, follow: bool) -> Resolved:
        return resolve(self._dir(), path, follow=follow)

    # -- operations on the descriptor ------------------------------------------

    def stat(self) -> os.stat_result:
        return _os(os.fstat, self._live())

    def get_type(self) -> str:
        return descriptor_type(self.stat().st_mode)

    def get_flags(self) -> frozenset[str]:
        self._live()
        return self.flags

    def set_size(self, size: int) -> None:
        _os(os.ftruncate, self.writable_fd(), size)

    def set_times(self, atime: Any, mtime: Any) -> None:
        fd = self._live()
        if self.read_only:
            raise FsError("read-only")
        _set_times(fd, None, atime, mtime)

    def advise(self, offset: int, length: int, advice: str) -> None:
        fd = self._live()
        if self.is_dir:
            raise FsError("bad-descriptor")
        name = {
            "normal": "POSIX_FADV_NORMAL",
            "sequential": "POSIX_FADV_SEQUENTIAL",
            "random": "POSIX_FADV_RANDOM",
            "will-need": "POSIX_FADV_WILLNEED",
            "dont-need": "POSIX_FADV_DONTNEED",
            "no-reuse": "POSIX_FADV_NOREUSE",
        }[advice]
        fadvise = getattr(os, "posix_fadvise", None)
        if fadvise is not None:
            _os(fadvise, fd, offset, length, getattr(os, name))

    def sync(self) -> None:
        _os(os.fsync, self._live())

    def sync_data(self) -> None:
        _os(getattr(os, "fdatasync", os.fsync), self._live())

    def read_at(self, length: int, offset: int) -> bytes:
        return _os(os.pread, self.readable_fd(), length, offset)

    def write_at(self, data: bytes, offset: int) -> int:
        return _os(os.pwrite, self.writable_fd(), data, offset)

    def metadata_hash(self) -> tuple[int, int]:
        return _hash(self.stat())

    def is_same_object(self, other: Node) -> bool:
        try:
            a, b = self.stat(), other.stat()
        except FsError:
            return False
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

    def list_directory(self) -> list[tuple[str, str]]:
        """``(name, descriptor-type)`` of each entry (``.`` and ``..`` left out)."""
        fd = self._dir()
        if READ not in self.flags:
            raise FsError("bad-descriptor")
        try:
            # scandir reads from a duplicate of the fd and rewinds it when done.
            with os.scandir(fd) as it:
                return [(entry.name, _entry_type(entry)) for entry in it]
        except OSError as exc:
            raise FsError.from_os(exc) from exc

    # -- operations on paths beneath the descriptor -------------------------------

    def stat_at(self, follow: bool, path: str) -> os.stat_result:
        with self._resolve(path, follow=follow) as r:
            r.check_dir()
            return _os(os.stat, r.name, dir_fd=r.parent, follow_symlinks=False)

    def metadata_hash_at(self, follow: bool, path: str) -> tuple[int, int]:
        return _hash(self.stat_at(follow, path))

    def set_times_at(self, follow: bool, path: str, atime: Any, mtime: Any) -> None:
        self._dir()
        if self.read_only:
            raise FsError("read-only")
        with self._resolve(path, follow=follow) as r:
            _set_times(r.parent, r.name, atime, mtime)

    def create_directory_at(self, path: str) -> None:
        self._mutable_dir()
        with self._resolve(path, follow=False) as r:
            _os(os.mkdir, r.name, dir_fd=r.parent)

    def remove_directory_at(self, path: str) -> None:
        self._mutable_dir()
        with self._resolve(path, follow=False) as r:
            _os(os.rmdir, r.name, dir_fd=r.parent)

    def unlink_file_at(self, path: str) -> None:
        self._mutable_dir()
        with self._resolve(path, follow=False) as r:
            if r.must_be_dir:
                # "name/" names a directory, which unlink-file never removes.
                r.check_dir()
                raise FsError("is-directory")
            _os(os.unlink, r.name, dir_fd=r.parent)

    def readlink_at(self, path: str) -> str:
        with self._resolve(path, follow=False) as r:
            return _os(os.readlink, r.name, dir_fd=r.parent)

    def symlink_at(self, old_path: str, new_path: str) -> None:
        self._mutable_dir()
        if old_path.startswith("/"):
            raise FsError("not-permitted", "a symlink may not point to an absolute path")
        if "\0" in old_path:
            raise FsError("invalid")
        with self._resolve(new_path, follow=False) as r:
            _os(os.symlink, old_path, r.name, dir_fd=r.parent)

    def rename_at(self, old_path: str, new: Node, new_path: str) -> None:
        self._mutable_dir()
        new._mutable_dir()
        with self._resolve(old_path, follow=False) as a, new._resolve(new_path, follow=False) as b:
            _os(os.rename, a.name, b.name, src_dir_fd=a.parent, dst_dir_fd=b.parent)

    def link_at(self, follow: bool, old_path: str, new: Node, new_path: str) -> None:
        self._dir()
        if self.read_only:
            raise FsError("read-only")
        new._mutable_dir()
        # A followed symlink is resolved here, so the kernel links what this
        # module reached beneath the descriptor and nothing else.
        with self._resolve(old_path, follow=follow) as a, new._resolve(new_path, follow=False) as b:
            _os(
                os.link,
                a.name,
                b.name,
                src_dir_fd=a.parent,
                dst_dir_fd=b.parent,
                follow_symlinks=False,
            )

    def open_at(
        self, follow: bool, path: str, open_flags: frozenset[str], flags: frozenset[str]
    ) -> Node:
        self._dir()
        creating = bool(open_flags & {"create", "truncate"})
        changes = creating or WRITE in flags or MUTATE in flags
        if changes and self.read_only:
            raise FsError("read-only")
        if changes and MUTATE not in self.flags:
            raise FsError("not-permitted")
        if "directory" in open_flags and (WRITE in flags or "truncate" in open_flags):
            raise FsError("is-directory")
        if "exclusive" in open_flags and "create" in open_flags:
            follow = False  # O_CREAT | O_EXCL never follows a final symlink.
        if {READ, WRITE} <= flags:
            mode = os.O_RDWR
        elif WRITE in flags:
            mode = os.O_WRONLY
        else:
            mode = os.O_RDONLY
        # O_NONBLOCK: opening a FIFO must not wait for its other end.
        oflags = mode | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK
        if "create" in open_flags:
            oflags |= os.O_CREAT
        if "exclusive" in open_flags:
            oflags |= os.O_EXCL
        if "truncate" in open_flags:
            oflags |= os.O_TRUNC
        if "directory" in open_flags:
            oflags |= _O_DIRECTORY
        for flag, name in _SYNC_FLAGS:
            if flag in flags:
                oflags |= getattr(os, name, 0)
        if not flags & {READ, WRITE} and not creating and _O_PATH:
            # Neither reading nor writing: a descriptor for metadata and paths only.
            oflags = _O_PATH | _O_NOFOLLOW | _O_CLOEXEC | (oflags & _O_DIRECTORY)
        with self._resolve(path, follow=follow) as r:
            r.check_dir()
            if r.must_be_dir:
                oflags |= _O_DIRECTORY
            fd = _os(os.open, r.name, oflags, 0o666, dir_fd=r.parent)
        try:
            st = os.fstat(fd)
            if stat_mod.S_ISLNK(st.st_mode):
                # O_PATH | O_NOFOLLOW opens a symlink itself: refuse it like open(2).
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
            if stat_mod.S_ISREG(st.st_mode) and _O_NONBLOCK and not oflags & _O_PATH:
                os.set_blocking(fd, True)
        except OSError as exc:
            os.close(fd)
            raise FsError.from_os(exc) from exc
        is_dir = stat_mod.S_ISDIR(st.st_mode)
        granted = set(flags) & {READ, WRITE, MUTATE}
        if not is_dir:
            granted.discard(MUTATE)
        return Node(fd, is_dir=is_dir, flags=frozenset(granted), read_only=self.read_only)


P = ParamSpec("P")
R = TypeVar("R")


def _os(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call ``fn``; an ``OSError`` (or an argument Python refuses) becomes an FsError."""
    try:
        return fn(*args, **kwargs)
    except OSError as exc:
        raise FsError.from_os(exc) from exc
    except (ValueError, OverflowError) as exc:
        raise FsError("invalid", str(exc)) from exc


def _hash(st: os.stat_result) -> tuple[int, int]:
    digest = hashlib.blake2b(
        f"{st.st_dev}:{st.st_ino}".encode(), digest_size=16, key=_HASH_KEY
    ).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")
