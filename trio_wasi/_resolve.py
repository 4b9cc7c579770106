"""Turning decoded type definitions into resolved canonical-ABI types.

The decoder keeps type indices; at instantiation time every ``type``
definition is resolved against the type index space of the component instance
being built, producing the index-free types of :mod:`trio_wasi._abi._types`.
Resolution happens per instantiation because resource types are generative:
each instance of a component that defines ``(type (resource ...))`` gets a new
resource type (Explainer.md, "Type Definitions").

Component and instance *types* are kept unresolved (their declarators plus the
scope they were written in): they only matter when the host has to build an
instance to satisfy an import, and then they are walked declarator by
declarator against the host's definitions (see ``_link.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._abi import _types as T
from ._binary import _model as M
from ._errors import LinkError

__all__ = [
    "DeclaredType",
    "TypeSpace",
    "check_value_type",
    "declare",
    "describe",
    "resolve_deftype",
    "resolve_functype",
    "resolve_valtype",
]

_PRIMS: dict[M.Prim, T.ValueType] = {
    M.Prim.BOOL: T.BOOL,
    M.Prim.S8: T.S8,
    M.Prim.U8: T.U8,
    M.Prim.S16: T.S16,
    M.Prim.U16: T.U16,
    M.Prim.S32: T.S32,
    M.Prim.U32: T.U32,
    M.Prim.S64: T.S64,
    M.Prim.U64: T.U64,
    M.Prim.F32: T.F32,
    M.Prim.F64: T.F64,
    M.Prim.CHAR: T.CHAR,
    M.Prim.STRING: T.STRING,
    M.Prim.ERROR_CONTEXT: T.ERROR_CONTEXT,
}


class DeclaredType:
    """A component or instance type: its declarators and where they were written.

    ``outer`` is the type scope the declarators' outer aliases count from.
    """

    __slots__ = ("decl", "outer")

    def __init__(self, decl: M.ComponentType | M.InstanceType, outer: TypeSpace | None) -> None:
        self.decl = decl
        self.outer = outer


class TypeSpace:
    """A type index space with a link to the enclosing scope (for outer aliases).

    ``types`` holds resolved items: ABI value types, ABI function types,
    resource types and :class:`DeclaredType`. ``core_types`` holds decoded core
    types, which the host never needs resolved. ``fresh_resource`` makes the
    abstract resource types met in declarators (``sub resource``).
    """

    # A plain class: attrs would compile its methods at import, for a class
    # that needs none of them.
    __slots__ = ("core_types", "fresh_resource", "outer", "types")

    def __init__(
        self,
        types: list[Any] | None = None,
        core_types: list[Any] | None = None,
        outer: TypeSpace | None = None,
        fresh_resource: Callable[[str], T.ResourceType] | None = None,
    ) -> None:
        self.types: list[Any] = [] if types is None else types
        self.core_types: list[Any] = [] if core_types is None else core_types
        self.outer = outer
        self.fresh_resource = fresh_resource

    def type_at(self, index: int) -> Any:
        if not 0 <= index < len(self.types):
            raise LinkError(f"type index {index} is out of bounds ({len(self.types)} types)")
        return self.types[index]

    def enclosing(self, count: int) -> TypeSpace:
        space: TypeSpace | None = self
        for _ in range(count):
            space = space.outer if space is not None else None
        if space is None:
            raise LinkError(f"outer alias count {count} reaches past the outermost scope")
        return space


def resolve_valtype(space: TypeSpace, vt: M.ValType) -> T.ValueType:
    """Resolve a ``valtype`` (primitive or type index) to an ABI value type."""
    if isinstance(vt, M.Prim):
        return _PRIMS[vt]
    item = space.type_at(vt.index)
    if isinstance(item, (T.FuncType, T.ResourceType, DeclaredType)):
        raise LinkError(f"type index {vt.index} is not a value type")
    result: T.ValueType = item
    return result


def _opt(space: TypeSpace, vt: M.ValType | None) -> T.ValueType | None:
    return None if vt is None else resolve_valtype(space, vt)


def _resource_at(space: TypeSpace, index: int) -> T.ResourceType:
    item = space.type_at(index)
    if not isinstance(item, T.ResourceType):
        raise LinkError(f"type index {index} is not a resource type")
    return item


def resolve_functype(space: TypeSpace, ft: M.FuncTypeDef) -> T.FuncType:
    params = tuple((name, resolve_valtype(space, t)) for name, t in ft.params)
    return T.FuncType(params, _opt(space, ft.result), ft.is_async)


# Resolved types shared process-wide: each value or function type resolved
# equal to one in here is replaced by that one. Every instantiation resolves
# its types anew, and a component defines an import's types again inside the
# import's instance type, while the per-type plans (layouts, loaders) are
# lru_cached by value and keep the type object of the first instantiation
# that made them. Without sharing, the checks made on every call (a future's
# element type against the canon builtin's, an lru_cache lookup) compare two
# distinct equal objects structurally, recursing through every case of
# ``error-code``; with it they find the same object and stop at once. Only
# types that mention no resource type defined by a component instance are
# kept (those are per instance and would pile up); the table is emptied when
# it grows past _INTERNED_MAX, which only costs sharing.
_INTERNED: dict[Any, Any] = {}
_INTERNED_MAX = 4096
_LEAF_TYPES = (*{type(t) for t in _PRIMS.values()}, T.EnumType, T.FlagsType)


def _shared(t: Any) -> bool:
    """Whether ``t`` may be kept in _INTERNED (its parts already are, when compound)."""
    if t is None or isinstance(t, _LEAF_TYPES):
        return True
    if isinstance(t, T.ResourceType):
        return t.instance is None
    return _INTERNED.get(t) is t


def intern_type(t: Any) -> Any:
    """The shared object equal to resolved type ``t`` (``t`` itself when none)."""
    if isinstance(t, _LEAF_TYPES):
        return t
    found = _INTERNED.get(t)
    if found is not None:
        return found
    if all(_shared(p) for p in T.type_parts(t)):
        if len(_INTERNED) >= _INTERNED_MAX:
            _INTERNED.clear()
        _INTERNED[t] = t
    return t


def resolve_deftype(space: TypeSpace, d: M.DefType, *, owner: object | None = None) -> Any:
    """Resolve one ``deftype``. Resource definitions need ``owner`` (the instance state)."""
    t = _resolve_deftype(space, d)
    return t if isinstance(t, DeclaredType) else intern_type(t)


def _resolve_deftype(space: TypeSpace, d: M.DefType) -> Any:
    if isinstance(d, M.Prim):
        return _PRIMS[d]
    if isinstance(d, M.Record):
        return T.RecordType(tuple((n, resolve_valtype(space, t)) for n, t in d.fields))
    if isinstance(d, M.VariantDef):
        return T.VariantType(tuple((n, _opt(space, t)) for n, t in d.cases))
    if isinstance(d, M.List):
        return T.ListType(resolve_valtype(space, d.element), d.length)
    if isinstance(d, M.Tuple):
        return T.TupleType(tuple(resolve_valtype(space, t) for t in d.types))
    if isinstance(d, M.Flags):
        return T.FlagsType(d.labels)
    if isinstance(d, M.Enum):
        return T.EnumType(d.labels)
    if isinstance(d, M.Option):
        return T.OptionType(resolve_valtype(space, d.type))
    if isinstance(d, M.Result):
        return T.ResultType(_opt(space, d.ok), _opt(space, d.error))
    if isinstance(d, M.Own):
        return T.OwnType(_resource_at(space, d.type_index))
    if isinstance(d, M.Borrow):
        return T.BorrowType(_resource_at(space, d.type_index))
    if isinstance(d, M.Stream):
        return T.StreamType(_opt(space, d.element))
    if isinstance(d, M.Future):
        return T.FutureType(_opt(space, d.element))
    if isinstance(d, M.Map):
        key = resolve_valtype(space, d.key)
        if type(key) not in T.KEY_TYPES:
            raise LinkError(f"{describe(key)} cannot be a map key")
        return T.MapType(key, resolve_valtype(space, d.value))
    if isinstance(d, M.FuncTypeDef):
        return resolve_functype(space, d)
    if isinstance(d, (M.ComponentType, M.InstanceType)):
        return DeclaredType(d, space)
    if isinstance(d, M.ResourceTypeDef):
        raise LinkError("resource type definitions are resolved by the linker")
    raise LinkError(f"unknown type definition {d!r}")


def declare(space: TypeSpace, dd: Any, where: str) -> bool:
    """Apply one type, core type or outer-alias declarator of an instance type to ``space``.

    Returns False for any other declarator (exports), which the caller handles.
    """
    if isinstance(dd, M.TypeDecl):
        space.types.append(resolve_deftype(space, dd.type))
    elif isinstance(dd, M.CoreTypeDeclarator):
        space.core_types.append(dd.type)
    elif isinstance(dd, M.AliasDecl):
        a = dd.alias
        if not isinstance(a, M.AliasOuter):
            raise LinkError(f"{where}: unsupported alias in the instance type")
        target = space.enclosing(a.count)
        if a.sort is M.Sort.TYPE:
            space.types.append(target.types[a.index])
        else:
            space.core_types.append(target.core_types[a.index])
    else:
        return False
    return True


def describe(t: Any) -> str:
    """A WIT-like rendering of a resolved type, for error messages."""
    if isinstance(t, T.FuncType):
        params = ", ".join(f"{n}: {describe(p)}" for n, p in t.params)
        result = "" if t.result is None else f" -> {describe(t.result)}"
        prefix = "async func" if t.is_async else "func"
        return f"{prefix}({params}){result}"
    if isinstance(t, DeclaredType):
        return "component type" if isinstance(t.decl, M.ComponentType) else "instance type"
    return T.describe_value_type(t)


def check_value_type(expected: Any, actual: Any, what: str) -> None:
    """Raise LinkError unless ``actual`` matches ``expected`` (structural equality).

    Resource types compare by identity, everything else by value, which is what
    the frozen attrs classes give.
    """
    if expected != actual:
        raise LinkError(f"{what}: expected {describe(expected)}, found {describe(actual)}")


def param_types(ft: T.FuncType) -> Sequence[T.ValueType]:
    return [t for _, t in ft.params]
