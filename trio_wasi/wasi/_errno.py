"""Host ``OSError``\\ s as wasi:filesystem ``error-code`` case names.

One table serves both generations: 0.2's ``error-code`` is an ``enum`` and
0.3's a ``variant`` with the same labels, less ``would-block`` and plus
``other(option<string>)``. :func:`error_code` gives the 0.2 label (``io``
when the errno has no case of its own); the 0.3 face turns ``would-block``
and unknown errors into ``other``.
"""

from __future__ import annotations

import errno

__all__ = ["ERRNO_CODES", "error_code"]

ERRNO_CODES: dict[int, str] = {
    errno.EACCES: "access",
    errno.EAGAIN: "would-block",
    errno.EALREADY: "already",
    errno.EBADF: "bad-descriptor",
    errno.EBUSY: "busy",
    errno.EDEADLK: "deadlock",
    errno.EDQUOT: "quota",
    errno.EEXIST: "exist",
    errno.EFBIG: "file-too-large",
    errno.EILSEQ: "illegal-byte-sequence",
    errno.EINPROGRESS: "in-progress",
    errno.EINTR: "interrupted",
    errno.EINVAL: "invalid",
    errno.EIO: "io",
    errno.EISDIR: "is-directory",
    errno.ELOOP: "loop",
    errno.EMLINK: "too-many-links",
    errno.EMSGSIZE: "message-size",
    errno.ENAMETOOLONG: "name-too-long",
    errno.ENODEV: "no-device",
    errno.ENOENT: "no-entry",
    errno.ENOLCK: "no-lock",
    errno.ENOMEM: "insufficient-memory",
    errno.ENOSPC: "insufficient-space",
    errno.ENOTDIR: "not-directory",
    errno.ENOTEMPTY: "not-empty",
    errno.ENOTRECOVERABLE: "not-recoverable",
    errno.ENOTSUP: "unsupported",
    errno.EOPNOTSUPP: "unsupported",
    errno.ENOTTY: "no-tty",
    errno.ENXIO: "no-such-device",
    errno.EOVERFLOW: "overflow",
    errno.EPERM: "not-permitted",
    errno.EPIPE: "pipe",
    errno.EROFS: "read-only",
    errno.ESPIPE: "invalid-seek",
    errno.ETXTBSY: "text-file-busy",
    errno.EXDEV: "cross-device",
}


def error_code(exc: OSError) -> str:
    """The wasi:filesystem 0.2 ``error-code`` label for ``exc`` (``io`` when none fits)."""
    return ERRNO_CODES.get(exc.errno or 0, "io")
