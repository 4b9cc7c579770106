"""The wasmtime configuration every trio_wasi engine uses, and its fingerprint.

The settings are one table so that the compile cache key is derived from
exactly what was applied: a change here changes the fingerprint and so
invalidates old cache entries instead of failing to deserialize them.
"""

from __future__ import annotations

import hashlib
import os
import platform
from functools import cache
from pathlib import Path

import wasmtime

__all__ = ["ENGINE_SETTINGS", "default_cache_dir", "engine_fingerprint", "new_config"]

# Bumped when the layout of cache entries or the meaning of a setting changes.
_CACHE_FORMAT = "trio_wasi-engine-1"

# (wasmtime.Config attribute, value). Each one was checked to be accepted by
# wasmtime 50 and to compile and run plain MVP modules at the same speed.
ENGINE_SETTINGS: tuple[tuple[str, bool], ...] = (
    ("wasm_multi_memory", True),
    ("wasm_reference_types", True),
    ("wasm_bulk_memory", True),
    ("wasm_simd", True),
    ("wasm_relaxed_simd", True),
    ("wasm_tail_call", True),
    ("wasm_multi_value", True),
    ("wasm_function_references", True),
    ("wasm_exceptions", True),
    ("wasm_gc", True),
    # Components never share memory across threads, and a store is only
    # entered by one thread at a time (ARCHITECTURE.md section 4).
    ("wasm_threads", False),
    ("shared_memory", False),
    # A memory reserves its maximum address range up front, so its base pointer
    # is stable and only its size changes when it grows: LinearMemory.view()
    # needs to check the size alone.
    ("memory_may_move", False),
    # Linear memories start as copy-on-write mappings of the module's data
    # image instead of being filled byte by byte (wasmtime's default, pinned
    # here): measured on the componentize-py round-trip guest, instantiation
    # costs about 10 ms of CPU with it and 14 ms without.
    ("memory_init_cow", True),
    # Compiled code checks the engine's epoch at function entries and loop
    # headers, so a deadline can stop a guest that never calls out (see
    # _epoch.py). Measured cost: see README "Limits".
    ("epoch_interruption", True),
)


def new_config(*, consume_fuel: bool = False) -> wasmtime.Config:
    """Return a fresh ``wasmtime.Config`` with :data:`ENGINE_SETTINGS` applied.

    ``consume_fuel`` adds wasmtime's fuel metering (a counter update per basic
    block), for engines whose stores may be given ``Limits.fuel``; it is off
    by default because every guest would pay for it.
    """
    config = wasmtime.Config()
    for name, value in ENGINE_SETTINGS:
        setattr(config, name, value)
    if consume_fuel:
        config.consume_fuel = True
    return config


def _wasmtime_version() -> str:
    # The dist-info directory beside the package names the version; reading
    # it spares every run the import of importlib.metadata (about 50 ms).
    site = Path(wasmtime.__file__).resolve().parent.parent
    for info in site.glob("wasmtime-*.dist-info"):
        return info.name[len("wasmtime-") : -len(".dist-info")]
    import importlib.metadata

    try:
        return importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - vendored wasmtime
        return "unknown"


@cache
def engine_fingerprint(*, consume_fuel: bool = False) -> str:
    """A digest of everything that makes compiled code (in)compatible."""
    version = _wasmtime_version()
    parts = [_CACHE_FORMAT, version, platform.machine(), platform.system()]
    parts.extend(f"{name}={value}" for name, value in ENGINE_SETTINGS)
    if consume_fuel:
        # Fuel metering changes the machine code; engines without it keep
        # the fingerprint they always had.
        parts.append("consume_fuel=True")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$TRIO_WASI_CACHE_DIR``, else ``$XDG_CACHE_HOME/trio_wasi``, else ``~/.cache/trio_wasi``."""
    explicit = os.environ.get("TRIO_WASI_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "trio_wasi"
    return Path.home() / ".cache" / "trio_wasi"
