"""OS errors as WASI error codes: one table per package, one function per shape.

A WASI function never lets an ``OSError`` escape (that would trap the guest):
it returns the interface's own error code. wasi:filesystem 0.2 spells its
codes as an ``enum`` (a label string), 0.3 as a ``variant`` with an
``other(option<string>)`` case (a :class:`Variant`); wasi:sockets likewise.
"""

from __future__ import annotations

import errno

from .._abi._values import Variant

__all__ = ["FILESYSTEM_CODES", "SOCKET_CODES", "filesystem_code", "socket_code"]

# errno -> wasi:filesystem error-code label (the same labels in 0.2 and 0.3,
# except would-block, which only 0.2 has).
FILESYSTEM_CODES: dict[int, str] = {
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

# errno -> wasi:sockets error-code label.
SOCKET_CODES: dict[int, str] = {
    errno.EACCES: "access-denied",
    errno.EPERM: "access-denied",
    errno.EOPNOTSUPP: "not-supported",
    errno.EAFNOSUPPORT: "not-supported",
    errno.EINVAL: "invalid-argument",
    errno.ENOMEM: "out-of-memory",
    errno.ENOBUFS: "out-of-memory",
    errno.ETIMEDOUT: "timeout",
    errno.EISCONN: "invalid-state",
    errno.ENOTCONN: "invalid-state",
    errno.EADDRNOTAVAIL: "address-not-bindable",
    errno.EADDRINUSE: "address-in-use",
    errno.EHOSTUNREACH: "remote-unreachable",
    errno.ENETUNREACH: "remote-unreachable",
    errno.ECONNREFUSED: "connection-refused",
    errno.EPIPE: "connection-broken",
    errno.ECONNRESET: "connection-reset",
    errno.ECONNABORTED: "connection-aborted",
    errno.EMSGSIZE: "datagram-too-large",
}


def filesystem_code(exc: OSError, *, variant: bool) -> str | Variant:
    """The wasi:filesystem error code for ``exc``: a label (0.2) or a Variant (0.3)."""
    label = FILESYSTEM_CODES.get(exc.errno or 0)
    if variant:
        if label is None or label == "would-block":
            return Variant("other", exc.strerror or str(exc))
        return Variant(label)
    return label or "io"


def socket_code(exc: OSError, *, variant: bool) -> str | Variant:
    """The wasi:sockets error code for ``exc``: a label (0.2) or a Variant (0.3)."""
    label = SOCKET_CODES.get(exc.errno or 0)
    if variant:
        return Variant(label) if label else Variant("other", exc.strerror or str(exc))
    if exc.errno == errno.EAGAIN:
        return "would-block"
    # 0.2 has no connection-broken; a broken pipe is a reset there.
    return {"connection-broken": "connection-reset"}.get(label or "unknown", label or "unknown")
