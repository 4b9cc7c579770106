"""The sha256 of a component file, remembered by the file's status.

Every warm load finds its validation verdict and compiled modules by the
sha256 of the binary, and hashing a componentize-py component (19 MB) takes
about 10 ms of a run. The digest of a file is therefore kept in the compile
cache under a key made of the file's path, device, inode, size, modification
time and status-change time (``st_ctime_ns``), and found again without hashing
while all of them are unchanged.

Why that is safe: any write to a file, or replacing it, gives it a new
status-change time taken from the clock at that moment, and no call lets a
program set it back (``os.utime`` sets the modification time, and stamps the
status-change time with now). A digest is only recorded when the file's times
are more than :data:`SETTLED_SECONDS` in the past, so a write landing in the
same clock tick as the hash (timestamps are coarser than nanoseconds on most
file systems) cannot go unseen, and only when the file's status was the same
before and after its bytes were read. What this trusts beyond that is the
cache directory itself, which already holds the machine code that runs. An
entry carries a checksum; a damaged or foreign one is ignored and the file is
hashed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Final

from ._cachefile import write_atomically

__all__ = ["SETTLED_SECONDS", "read_with_digest"]

_log = logging.getLogger("trio_wasi.engine")

#: How long a file must have been left alone before its digest is recorded.
SETTLED_SECONDS: Final = 2.0

_DIR: Final = "digests"
_MAGIC: Final = b"trio-wasi digest 1\n"


def _status_key(path: Path, st: os.stat_result) -> str:
    parts = (
        os.path.realpath(path),
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
    )
    return hashlib.sha256("\0".join(map(str, parts)).encode("utf-8", "surrogateescape")).hexdigest()


def _same_status(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns, a.st_ctime_ns) == (
        b.st_dev,
        b.st_ino,
        b.st_size,
        b.st_mtime_ns,
        b.st_ctime_ns,
    )


def _seal(key: str, digest: bytes) -> bytes:
    return hashlib.sha256(_MAGIC + key.encode() + digest).digest()


def read_with_digest(path: Path, cache_dir: Path | None) -> tuple[bytes, bytes]:
    """The bytes of the file at ``path`` and their sha256.

    With a ``cache_dir``, the digest recorded for the file's unchanged status
    is used instead of hashing (see the module docstring). Raises ``OSError``
    as reading the file does.
    """
    with open(path, "rb") as file:
        before = os.fstat(file.fileno())
        data = file.read()
        after = os.fstat(file.fileno())
    if cache_dir is None or not _same_status(before, after) or len(data) != after.st_size:
        return data, hashlib.sha256(data).digest()
    key = _status_key(path, after)
    entry = cache_dir / _DIR / key
    try:
        raw = entry.read_bytes()
    except OSError:
        raw = b""
    if len(raw) == len(_MAGIC) + 64 and raw.startswith(_MAGIC):
        digest, seal = raw[len(_MAGIC) : len(_MAGIC) + 32], raw[len(_MAGIC) + 32 :]
        if seal == _seal(key, digest):
            return data, digest
    digest = hashlib.sha256(data).digest()
    newest = max(after.st_mtime_ns, after.st_ctime_ns) / 1e9
    if time.time() - newest > SETTLED_SECONDS:
        _record(entry, _MAGIC + digest + _seal(key, digest))
    return data, digest


def _record(entry: Path, content: bytes) -> None:
    try:
        write_atomically(entry, content)
    except OSError as exc:
        # The cache is an optimisation: a load never fails for it.
        _log.debug("could not record a file digest in %s: %s", entry, exc)
