"""wasi:filesystem 0.3.0 and 0.2.0: the deny-everything baseline.

No directory is preopened and no descriptor ever exists, so every
filesystem operation is unreachable or refused with the interface's own
error code. The real implementation replaces ``add_to_linker`` here, reading
``WasiState.of(context, config).config.preopens`` and building its 0.2
streams on ``_io.InputStream``/``_io.OutputStream``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._deny import deny_all

if TYPE_CHECKING:
    from .._linker import Linker
    from ._config import WasiConfig

__all__ = ["add_to_linker"]

INTERFACES = (
    "wasi:filesystem/types@0.3.0",
    "wasi:filesystem/preopens@0.3.0",
    "wasi:filesystem/types@0.2.0",
    "wasi:filesystem/preopens@0.2.0",
)


def add_to_linker(linker: Linker, config: WasiConfig) -> None:
    """Define wasi:filesystem with nothing granted (the baseline)."""
    for name in INTERFACES:
        deny_all(linker, name)
