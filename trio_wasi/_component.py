"""Loading components: decode, validate, compile their core modules."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, final

from ._binary import _model as M
from ._binary._cache import decode_cached
from ._digests import read_with_digest
from ._engine import Engine, module_names, wat_to_wasm
from ._frozen import frozen
from ._validate import validate_component

__all__ = ["Component", "CoreModuleInfo", "core_module_info"]

_default_engine: Engine | None = None
_fuel_engine: Engine | None = None


def default_engine() -> Engine:
    """The process-wide engine used when none is given (created on first use)."""
    global _default_engine
    if _default_engine is None:
        _default_engine = Engine()
    return _default_engine


def fuel_engine() -> Engine:
    """The process-wide engine with fuel metering, for ``Limits.fuel`` (created on first use)."""
    global _fuel_engine
    if _fuel_engine is None:
        _fuel_engine = Engine(consume_fuel=True)
    return _fuel_engine


def _core_modules(component: M.DecodedComponent) -> Iterator[M.CoreModule]:
    for d in component.definitions:
        if isinstance(d, M.CoreModule):
            yield d
        elif isinstance(d, M.NestedComponent):
            yield from _core_modules(d.component)


@frozen(eq=False)
class CoreModuleInfo:
    """A compiled core module with its import and export names read once.

    Reading a module's imports through wasmtime-py builds a Python object per
    import; a component instantiates its modules every time it is
    instantiated, so the names are kept with the module.
    """

    module: Any
    imports: tuple[tuple[str, str], ...]
    exports: frozenset[str]


def core_module_info(module: Any) -> CoreModuleInfo:
    """Read the import and export names of the compiled core module ``module``."""
    imports, exports = module_names(module)
    return CoreModuleInfo(module, imports, exports)


@final
class Component:
    """A decoded, validated component whose core modules are compiled.

    Create one with :meth:`from_bytes`, :meth:`from_file` or :meth:`from_wat`;
    instantiate it with :meth:`trio_wasi.Linker.instantiate`. A component is
    immutable and may be instantiated any number of times.
    """

    def __init__(self, model: M.DecodedComponent, modules: dict[int, Any], engine: Engine) -> None:
        self._model = model
        # Compiled core modules keyed by their offset in the binary, which is
        # unique across nested components.
        self._modules = modules
        self.engine = engine
        # Filled by _link: core module import/export names, and pre-linked
        # forms per set of host definitions (see trio_wasi._link.prelink).
        self._infos: dict[int, CoreModuleInfo] | None = None
        self._linked: list[tuple[tuple[Any, ...], Any]] = []

    def _module_infos(self) -> dict[int, CoreModuleInfo]:
        """The compiled core modules with their import/export names, read once."""
        if self._infos is None:
            names_of = self.engine.names_of
            self._infos = {
                offset: CoreModuleInfo(m, *names_of(m)) for offset, m in self._modules.items()
            }
        return self._infos

    @classmethod
    def from_bytes(
        cls,
        data: bytes | bytearray | memoryview,
        *,
        engine: Engine | None = None,
        validate: bool = True,
    ) -> Component:
        """Load a component from its binary encoding.

        Raises :class:`DecodeError` for malformed bytes and
        :class:`ValidationError` for a component that breaks a validation rule.
        Validation fails closed: when the reference validator cannot run,
        :class:`ValidationError` says so. ``validate=False`` skips it and
        accepts a component that only decodes (its imports and types are still
        checked when linking).
        """
        return cls._from_binary(bytes(data), engine=engine, validate=validate)

    @classmethod
    def _from_binary(
        cls,
        data: bytes,
        *,
        engine: Engine | None = None,
        validate: bool = True,
        sha256: bytes | None = None,
    ) -> Component:
        """:meth:`from_bytes` of ``data`` whose sha256 the caller may know already."""
        engine = engine or default_engine()
        if sha256 is not None:
            # The cached modules load on a thread while the binary is decoded.
            engine._preload_source(sha256)
        # Decoded once: later loads of the same bytes read the decoded form
        # kept in the cache (when the digest is known without hashing).
        model = decode_cached(data, engine.cache_dir if sha256 is not None else None, sha256)
        # Hashed once: the validation verdict and the compiled modules are
        # both found in the cache by it.
        if sha256 is None:
            sha256 = hashlib.sha256(data).digest()
        if validate:
            validate_component(data, cache_dir=engine.cache_dir, sha256=sha256)
        blobs = list(_core_modules(model))
        compiled = engine.compile_many([m.data for m in blobs], source=sha256)
        modules = {m.offset: mod for m, mod in zip(blobs, compiled, strict=True)}
        return cls(model, modules, engine)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, engine: Engine | None = None) -> Component:
        """Load a component from a ``.wasm`` file (or a ``.wat`` text file)."""
        p = Path(path)
        if p.suffix == ".wat":
            return cls.from_wat(p.read_text("utf-8"), engine=engine)
        engine = engine or default_engine()
        data, sha256 = read_with_digest(p, engine.cache_dir)
        return cls._from_binary(data, engine=engine, sha256=sha256)

    @classmethod
    def from_wat(cls, text: str, *, engine: Engine | None = None) -> Component:
        """Load a component from its text format (:class:`DecodeError` if it does not parse)."""
        return cls.from_bytes(wat_to_wasm(text), engine=engine)

    @property
    def model(self) -> M.DecodedComponent:
        """The decoded definitions (read-only data)."""
        return self._model

    def __repr__(self) -> str:
        return f"<Component with {len(self._modules)} core modules>"
