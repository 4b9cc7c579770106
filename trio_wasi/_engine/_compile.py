"""The engine: one wasmtime engine plus an on-disk cache of compiled modules.

Compiling the core modules of a real component (componentize-py output holds
about 19 MB of them) takes seconds; loading the serialized machine code back
with ``Module.deserialize_file`` maps the file and takes milliseconds. Cache
entries are keyed by the module's sha256 and the engine fingerprint, written
atomically (temporary file + ``os.replace``) so concurrent processes never
see half an entry, and an entry wasmtime refuses to load is simply recompiled
and rewritten.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import marshal
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import wasmtime

from .._cachefile import write_atomically
from .._errors import ValidationError
from . import _capi
from ._config import default_cache_dir, engine_fingerprint, new_config
from ._epoch import EpochTicker
from ._signature import Signature

__all__ = ["Engine", "module_names"]

_log = logging.getLogger("trio_wasi.engine")

# Under the cache directory: per component binary (by its sha256), the cache
# keys of its core modules in order.
_SOURCES_DIR = "sources"


def module_names(
    module: wasmtime.Module,
) -> tuple[tuple[tuple[str, str], ...], frozenset[str]]:
    """The ``(module, name)`` pairs of ``module``'s imports, in order, and its export names."""
    return _capi.module_import_names(module), frozenset(_capi.module_export_names(module))


class Engine:
    """A wasmtime engine configured for components, with a compile cache.

    ``cache_dir`` defaults to :func:`default_cache_dir`; ``use_cache=False``
    keeps compiled modules in memory only. A cache directory that cannot be
    created or written disables the on-disk cache silently.

    ``consume_fuel=True`` compiles wasm with wasmtime's fuel metering, which
    ``Limits.fuel`` needs (a deterministic bound on the work a guest does);
    it costs every guest of the engine a counter update per basic block.
    """

    def __init__(
        self, cache_dir: Path | None = None, *, use_cache: bool = True, consume_fuel: bool = False
    ) -> None:
        self.wasmtime = wasmtime.Engine(new_config(consume_fuel=consume_fuel))
        #: Whether wasm compiled here meters fuel (see ``Limits.fuel``).
        self.consume_fuel = consume_fuel
        self._address = _capi.engine_address(self.wasmtime)
        self._fingerprint = engine_fingerprint(consume_fuel=consume_fuel)
        self._cache_dir: Path | None = None
        if use_cache:
            self._cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        self._memo: dict[str, wasmtime.Module] = {}
        self._memo_lock = threading.Lock()
        # The cache key of each module in the memo, by id (the memo keeps
        # the module, so the id cannot be reused), for names_of.
        self._key_of: dict[int, str] = {}
        self._functypes: dict[Signature, wasmtime.FuncType] = {}
        self._preloading: threading.Thread | None = None
        # Advances the epoch while some store of this engine has a deadline.
        self.ticker = EpochTicker(self.wasmtime)

    @property
    def cache_dir(self) -> Path | None:
        """The directory of the on-disk cache, or None when it is off."""
        return self._cache_dir

    def cache_path(self, data: bytes) -> Path | None:
        """Where the compiled form of ``data`` is (or would be) cached."""
        if self._cache_dir is None:
            return None
        return self._cache_dir / f"{self._key(data)}.cwasm"

    def compile(self, data: bytes | memoryview) -> wasmtime.Module:
        """Compile a core module, through the in-process memo and the disk cache.

        Raises ValidationError (with wasmtime's message) for invalid modules.
        """
        key = self._key(data)
        module = self._memo.get(key)
        if module is None:
            module = self._load(key)
            if module is None:
                module = self._compile_and_store(key, data)
            module = self._remember(key, module)
        return module

    def compile_many(
        self, modules: Sequence[bytes | memoryview], *, source: bytes | None = None
    ) -> list[wasmtime.Module]:
        """Compile several core modules, compiling cache misses on a thread pool.

        ``source`` is the sha256 of the binary the modules were taken from
        (a component), which determines them: with the disk cache on, their
        cache keys are kept under it, so loading the same binary again looks
        them up without hashing every module (19 MB for a componentize-py
        component, about 10 ms).

        wasmtime releases the GIL while it compiles, but it also compiles the
        functions of one module in parallel already. Measured on 2 cores with
        the 14 core modules (19 MB) of a componentize-py component, the pool
        and a plain loop both took 5 to 10 s (within the noise of a shared
        machine); the pool, bounded by the CPU count, at least overlaps
        serialising and writing one entry with compiling the next. A warm
        cache loads the same 14 modules in about 14 ms.
        """
        self._wait_for_preload()
        keys = self._source_keys(source, len(modules)) if source is not None else None
        known = keys is not None
        if keys is None:
            keys = [self._key(data) for data in modules]
        results: list[wasmtime.Module | None] = []
        misses: list[int] = []
        for index, key in enumerate(keys):
            module = self._memo.get(key)
            if module is None:
                module = self._load(key)
                if module is not None:
                    module = self._remember(key, module)
            results.append(module)
            if module is None:
                misses.append(index)
        if len(misses) == 1:
            index = misses[0]
            results[index] = self.compile(modules[index])
        elif misses:
            workers = min(len(misses), os.cpu_count() or 1)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                compiled = list(pool.map(lambda i: self.compile(modules[i]), misses))
            for index, module in zip(misses, compiled, strict=True):
                results[index] = module
        if source is not None and not known:
            self._remember_source_keys(source, keys)
        return [module for module in results if module is not None]

    def names_of(
        self, module: wasmtime.Module
    ) -> tuple[tuple[tuple[str, str], ...], frozenset[str]]:
        """:func:`module_names` of a module this engine compiled, kept in the disk cache.

        Reading the names through wasmtime costs about a microsecond each,
        and a componentize-py component's modules have some 7,000 of them
        (12 ms); the cache answers with one small file per module.
        """
        key = self._key_of.get(id(module))
        path = None
        if key is not None and self._cache_dir is not None:
            path = self._cache_dir / f"{key}.names"
            names = _read_names(path)
            if names is not None:
                return names
        imports, exports = module_names(module)
        if path is not None:
            _write_names(path, imports, exports)
        return imports, exports

    def functype(self, sig: Signature) -> wasmtime.FuncType:
        """The ``FuncType`` of ``sig`` for this engine (built once per engine)."""
        functype = self._functypes.get(sig)
        if functype is None:
            functype = self._functypes.setdefault(sig, sig.new_functype())
        return functype

    def _preload_source(self, source: bytes) -> None:
        """Start loading the cached modules of the binary whose sha256 is ``source``, on a thread.

        Deserialising the 14 modules of a componentize-py component takes a
        few milliseconds, nearly all inside wasmtime without the GIL: started
        before the component is decoded, it overlaps the decoding.
        :meth:`compile_many` waits for it and finds the modules in the memo;
        whatever it could not load, compile_many loads or compiles as always.
        Nothing happens without a disk cache, while another preload runs, or
        for a binary never compiled here.
        """
        if self._cache_dir is None:
            return
        running = self._preloading
        if running is not None and running.is_alive():
            return
        thread = threading.Thread(
            target=self._preload, args=(source,), name="trio_wasi module preload", daemon=True
        )
        self._preloading = thread
        thread.start()

    def _preload(self, source: bytes) -> None:
        try:
            for key in self._source_keys(source, None) or ():
                if key not in self._memo:
                    module = self._load(key)
                    if module is not None:
                        self._remember(key, module)
        except Exception as exc:  # an optimisation: compile_many does the work again
            _log.debug("module preload failed: %s", exc)

    def _wait_for_preload(self) -> None:
        running = self._preloading
        if running is not None:
            running.join()
            self._preloading = None

    # -- internals -------------------------------------------------------------

    def _key(self, data: bytes | memoryview) -> str:
        digest = hashlib.sha256(data).hexdigest()
        return f"{digest}-{self._fingerprint}"

    def _source_path(self, source: bytes) -> Path | None:
        if self._cache_dir is None:
            return None
        return self._cache_dir / _SOURCES_DIR / f"{source.hex()}-{self._fingerprint}"

    def _source_keys(self, source: bytes, count: int | None) -> list[str] | None:
        """The module keys kept for ``source``: all well-formed, ``count`` of them if given."""
        path = self._source_path(source)
        if path is None:
            return None
        try:
            keys = path.read_text(encoding="ascii").split()
        except (OSError, UnicodeDecodeError):
            return None
        suffix = f"-{self._fingerprint}"
        if (count is not None and len(keys) != count) or not all(
            len(k) == 64 + len(suffix) and k.endswith(suffix) for k in keys
        ):
            return None
        return keys

    def _remember_source_keys(self, source: bytes, keys: list[str]) -> None:
        path = self._source_path(source)
        if path is None:
            return
        try:
            write_atomically(path, "\n".join(keys).encode("ascii"))
        except OSError as exc:
            # The cache is an optimisation: a load never fails for it.
            _log.debug("could not record module keys in %s: %s", path, exc)

    def _remember(self, key: str, module: wasmtime.Module) -> wasmtime.Module:
        # Two threads may compile the same bytes; keep the first result so all
        # callers share one Module.
        with self._memo_lock:
            kept = self._memo.setdefault(key, module)
            self._key_of[id(kept)] = key
            return kept

    def _load(self, key: str) -> wasmtime.Module | None:
        if self._cache_dir is None:
            return None
        path = self._cache_dir / f"{key}.cwasm"
        if not path.is_file():
            return None
        try:
            module: wasmtime.Module = wasmtime.Module.deserialize_file(self.wasmtime, str(path))
        except wasmtime.WasmtimeError as exc:
            _log.debug("ignoring unusable cache entry %s: %s", path, exc)
            return None
        return module

    def _compile_and_store(self, key: str, data: bytes | memoryview) -> wasmtime.Module:
        module = self._compile_bytes(bytes(data))
        if self._cache_dir is not None:
            try:
                self._write_entry(key, module)
            except (OSError, wasmtime.WasmtimeError) as exc:
                _log.debug("compile cache disabled, %s is not usable: %s", self._cache_dir, exc)
                self._cache_dir = None
        return module

    def _compile_bytes(self, data: bytes) -> wasmtime.Module:
        # The C entry point is called directly: wasmtime-py's Module() would
        # copy the bytes and would parse anything not starting with a NUL byte
        # as WAT text, turning a bad binary into a confusing text-format error.
        out = ctypes.c_void_p()
        error = _capi.module_new(self._address, data, len(data), ctypes.addressof(out))
        if error:
            raise ValidationError(f"invalid core module: {_capi.error_message(error)}") from None
        assert out.value
        return _capi.module_from_pointer(out.value)

    def _write_entry(self, key: str, module: wasmtime.Module) -> None:
        assert self._cache_dir is not None
        write_atomically(self._cache_dir / f"{key}.cwasm", module.serialize())


def _read_names(path: Path) -> tuple[tuple[tuple[str, str], ...], frozenset[str]] | None:
    try:
        imports, exports = marshal.loads(path.read_bytes())
        if not (isinstance(imports, tuple) and isinstance(exports, tuple)):
            return None
        return tuple((str(m), str(n)) for m, n in imports), frozenset(exports)
    except (OSError, ValueError, EOFError, TypeError):
        return None


def _write_names(path: Path, imports: tuple[tuple[str, str], ...], exports: frozenset[str]) -> None:
    # Written like a module entry (temporary file, then rename); a failure only
    # means the names are read from wasmtime next time.
    try:
        write_atomically(path, marshal.dumps((imports, tuple(sorted(exports)))))
    except OSError as exc:
        _log.debug("could not cache module names in %s: %s", path, exc)
