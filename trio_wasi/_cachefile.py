"""Writing one file of the on-disk caches, atomically.

Every cache entry (compiled modules, their names, module keys per binary, file
digests, encoded WIT) is written to a temporary file beside its place and
renamed over it, so a concurrent reader, in this process or another, sees the
old entry or the new one, never a part of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: Path, content: bytes | bytearray) -> None:
    """Put ``content`` at ``path`` in one step, making its folder if needed.

    Raises OSError when the cache cannot be written; callers treat that as a
    cache miss next time, never as a failure of the load that wrote it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
