"""The deny-everything baseline for interfaces this host does not implement yet.

``deny_all(linker, interface)`` defines every function of a WIT interface so
that a component importing it links, and every operation answers with the
interface's own refusal: a ``result`` whose error type has a denial case
(``access-denied``, ``access``, ``not-permitted``, ``not-supported``) returns
it, an ``option`` is ``none``, a ``list`` is empty (so
``wasi:filesystem/preopens.get-directories`` grants nothing), a function that
returns a resource gets a fresh placeholder object. Anything else cannot be
answered without lying and traps, naming the function. Never a host
exception for a refusal.

wasi:filesystem and wasi:sockets start here and are replaced interface by
interface by their real implementations (see ``_filesystem`` and
``_sockets``).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._abi import _types as T
from .._abi._values import Err, Variant
from .._hostdefs import (
    _find_interface,
    _resolution_cache,
    _resource_for,
    python_name,
    resource_class_name,
)
from .._names import compatibility_key
from .._wit import resolve_interface

if TYPE_CHECKING:
    from .._linker import Linker

__all__ = ["DeniedResource", "deny_all"]

DENIAL_CASES = ("access-denied", "access", "not-permitted", "not-supported", "unsupported")


class DeniedResource:
    """A placeholder object of a resource whose every operation is refused."""


# Placeholder classes by (interface compatibility key, resource name), so a
# function of one interface can make a resource of another (instance-network).
_CLASSES: dict[tuple[str, str], type] = {}


def _class_for(interface: str, name: str) -> type:
    key = (compatibility_key(interface), name)
    cls = _CLASSES.get(key)
    if cls is None:
        cls = _CLASSES[key] = type(resource_class_name(name), (DeniedResource,), {})
    return cls


def _denial(t: T.ValueType | None, owners: dict[int, tuple[str, str]], name: str) -> Any:
    if t is None:
        return None
    if isinstance(t, T.ResultType):
        err = t.error
        if isinstance(err, T.EnumType):
            for case in DENIAL_CASES:
                if case in err.labels:
                    return Err(case)
        if isinstance(err, T.VariantType):
            labels = [c for c, _ in err.cases]
            for case in DENIAL_CASES:
                if case in labels:
                    return Err(Variant(case))
    elif isinstance(t, T.OptionType):
        return None
    elif isinstance(t, T.ListType):
        return []
    elif isinstance(t, T.BoolType):
        return False
    elif isinstance(t, T.OwnType) and id(t.resource) in owners:
        return _class_for(*owners[id(t.resource)])()
    raise NotImplementedError(f"`{name}` is not available on this host")


def _function(ft: T.FuncType, owners: dict[int, tuple[str, str]], name: str) -> Callable[..., Any]:
    if ft.is_async:

        async def denied_async(*args: Any) -> Any:
            return _denial(ft.result, owners, name)

        return denied_async

    def denied(*args: Any) -> Any:
        return _denial(ft.result, owners, name)

    return denied


def deny_all(linker: Linker, interface: str) -> None:
    """Define ``interface`` (from the bundled WIT) with every operation refused."""
    if hasattr(linker, "_keys") and compatibility_key(interface) not in linker._keys:
        return  # a linker taking only some interfaces (wasi.add_to_linker(only=...))
    host = linker._host
    resolved = resolve_interface(
        _find_interface(interface, None),
        functools.partial(_resource_for, host),
        _resolution_cache(host),
    )
    # Which interface each of the host's resource types belongs to.
    owners = {id(rt): (key, name) for (key, name), rt in host.resources.items() if key}
    impl = types.SimpleNamespace()
    classes = {r: _class_for(interface, r) for r in resolved.resources}
    for rname, cls in classes.items():
        setattr(impl, resource_class_name(rname), cls)
    for fname, ft in resolved.functions.items():
        fn = _function(ft, owners, f"{interface}#{fname}")
        if not fname.startswith("["):
            setattr(impl, python_name(fname), fn)
            continue
        kind, _, rest = fname[1:].partition("]")
        rname, _, member = rest.partition(".")
        cls = classes[rname]
        if kind == "constructor":
            # A constructor cannot refuse: it traps.
            def init(self: Any, *args: Any, _n: str = fname) -> None:
                raise NotImplementedError(f"`{interface}#{_n}` is not available on this host")

            cls.__init__ = init  # type: ignore[misc]
        elif kind == "static":
            setattr(cls, python_name(member), staticmethod(fn))
        else:
            setattr(cls, python_name(member), fn)
    linker.define_interface(interface, impl)
