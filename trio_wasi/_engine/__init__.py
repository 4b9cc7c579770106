"""The only place that imports wasmtime.

Compiling (with an on-disk cache), stores with a per-store exception tunnel,
fast calls into wasm, fast host functions and linear memory access, all over
wasmtime's C API through ctypes (see ARCHITECTURE.md sections 4 and 7).
"""

from __future__ import annotations

from ._compile import Engine, module_names
from ._config import default_cache_dir
from ._memory import PAGE_SIZE, LinearMemory
from ._rawfunc import RawFunc
from ._signature import CORE_TYPES
from ._store import ExportRef, Store, StoreClosedError
from ._wat import wat_to_wasm

__all__ = [
    "wat_to_wasm",
    "CORE_TYPES",
    "PAGE_SIZE",
    "Engine",
    "ExportRef",
    "LinearMemory",
    "RawFunc",
    "Store",
    "StoreClosedError",
    "default_cache_dir",
    "module_names",
]
