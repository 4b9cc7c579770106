"""Frozen value classes built without compiling code per class.

The decoded binary (:mod:`._binary._model`) and the resolved value types
(:mod:`._abi._types`) are about ninety small immutable classes. attrs builds
each one by writing Python source for its methods and compiling it when the
module is imported: some 20 ms of every ``python -m trio_wasi run``, more than
the guest's own work in a hello command. :func:`frozen` gives those classes
the same shape at a fraction of the cost:

- ``__slots__`` holding the annotated fields, in order, and nothing else;
- ``__init__`` taking the fields positionally or by name, trailing defaults
  from the class body;
- assignment and deletion raise :class:`attrs.exceptions.FrozenInstanceError`
  (an ``AttributeError``), as they did under ``attrs.frozen``;
- equal when of the same class with equal fields, hashed by value (the hash
  cached on the instance with ``cache_hash=True``); no ordering;
- ``repr`` as ``Name(field=value, ...)``, ``__match_args__``, and pickling
  and copying by value.

Everything but ``__init__`` is one shared function for all classes, reading
the fields through an ``operator.attrgetter`` kept on the class. ``__init__``
must name its parameters after the fields, so keyword calls work, and should
be as fast as attrs' generated one (the decoder makes about 10,000 instances
per componentize-py guest). It comes from a template per field count,
compiled once per process: a function that stores each argument through the
slot's own descriptor, whose parameter names are then replaced by the
fields' (``CodeType.replace``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, TypeVar, cast, dataclass_transform, overload

from attrs.exceptions import FrozenInstanceError

__all__ = ["FrozenInstanceError", "frozen"]

_C = TypeVar("_C", bound=type)

# The slot that holds a cached hash (``cache_hash=True``).
_HASH_SLOT = "_frozen_hash"


@overload
def frozen(cls: _C, /) -> _C: ...
@overload
def frozen(*, eq: bool = True, cache_hash: bool = False) -> Callable[[_C], _C]: ...


@dataclass_transform(frozen_default=True, eq_default=True, order_default=False)
def frozen(cls: _C | None = None, /, *, eq: bool = True, cache_hash: bool = False) -> Any:
    """Make ``cls`` a slotted, frozen value class of its annotated fields.

    Fields are the names annotated in the class body (not its bases); a value
    given in the body is the field's default, and defaults must come last.
    A class that defines ``__init__`` itself keeps it (it must set every
    field, with ``object.__setattr__``); ``__repr__`` likewise. With
    ``eq=False`` instances compare and hash by identity.
    """

    def wrap(cls: _C) -> _C:
        return cast(_C, _build(cls, eq, cache_hash))

    return wrap if cls is None else wrap(cls)


def _build(cls: Any, eq: bool, cache_hash: bool) -> Any:
    body = dict(cls.__dict__)
    names = tuple(body.get("__annotations__", ()))
    defaults = []
    for name in names:
        if name in body:
            defaults.append(body.pop(name))
        elif defaults:
            raise TypeError(f"{cls.__qualname__}.{name}: a field without a default after defaults")
        if name.startswith("_frozen"):
            raise TypeError(f"{cls.__qualname__}.{name}: the _frozen prefix is reserved")
    body.pop("__dict__", None)
    body.pop("__weakref__", None)
    body["__slots__"] = (*names, _HASH_SLOT) if eq and cache_hash else names
    body["__match_args__"] = names
    body["_frozen_fields"] = names
    # attrgetter returns the value itself for one name and a tuple for more;
    # either compares and hashes by value.
    body["_frozen_key"] = operator.attrgetter(*names) if names else _no_fields
    body["__setattr__"] = _setattr
    body["__delattr__"] = _delattr
    if eq:
        body["__eq__"] = _eq
        body["__ne__"] = _ne
        body["__hash__"] = _cached_hash if cache_hash else _hash
    body["__reduce__"] = _reduce
    body.setdefault("__repr__", _repr)
    made = type(cls)(cls.__name__, cls.__bases__, body)
    if "__init__" not in body:
        made.__init__ = _init_for(made, names, tuple(defaults))
    # Methods that use zero-argument super() or __class__ refer to the class
    # object the body made; point them at the one that replaces it.
    for value in body.values():
        function: Any = getattr(value, "__func__", value)
        code = getattr(function, "__code__", None)
        if code is not None and "__class__" in code.co_freevars:
            cell = function.__closure__[code.co_freevars.index("__class__")]
            cell.cell_contents = made
    return made


class _NoFields:
    """The key of a class without fields (not a function, so not a method)."""

    __slots__ = ()

    def __call__(self, instance: object) -> tuple[()]:
        return ()


_no_fields = _NoFields()


def _setattr(self: object, name: str, value: object) -> None:
    raise FrozenInstanceError()


def _delattr(self: object, name: str) -> None:
    raise FrozenInstanceError()


def _eq(self: Any, other: Any) -> Any:
    if other is self:
        # Types are compared on every checked handle use; most comparisons
        # are of a type with itself (and no field is a NaN).
        return True
    if other.__class__ is not self.__class__:
        return NotImplemented
    key = self._frozen_key
    return key(self) == key(other)


def _ne(self: Any, other: Any) -> Any:
    if other is self:
        return False
    if other.__class__ is not self.__class__:
        return NotImplemented
    key = self._frozen_key
    return key(self) != key(other)


def _hash(self: Any) -> int:
    return hash((self.__class__, self._frozen_key(self)))


def _cached_hash(self: Any) -> int:
    try:
        return self._frozen_hash  # type: ignore[no-any-return]
    except AttributeError:
        value = hash((self.__class__, self._frozen_key(self)))
        object.__setattr__(self, _HASH_SLOT, value)
        return value


def _reduce(self: Any) -> tuple[Any, tuple[Any, ...]]:
    return self.__class__, tuple(getattr(self, name) for name in self._frozen_fields)


def _repr(self: Any) -> str:
    fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._frozen_fields)
    return f"{type(self).__name__}({fields})"


# -- __init__ from templates -------------------------------------------------

_templates: dict[int, Callable[..., Any]] = {}


def _template(count: int) -> Callable[..., Any]:
    """A factory ``(setter_0, ...) -> __init__(self, _frozen_a0, ...)`` for ``count`` fields."""
    factory = _templates.get(count)
    if factory is None:
        setters = ", ".join(f"_frozen_s{i}" for i in range(count))
        params = "".join(f", _frozen_a{i}" for i in range(count))
        stores = "".join(f"        _frozen_s{i}(self, _frozen_a{i})\n" for i in range(count))
        stores = stores or "        pass\n"
        source = (
            f"def factory({setters}):\n"
            f"    def __init__(self{params}):\n"
            f"{stores}"
            f"    return __init__\n"
        )
        scope: dict[str, Any] = {}
        exec(compile(source, f"<frozen __init__ of {count} fields>", "exec"), scope)
        factory = _templates[count] = scope["factory"]
    return factory


def _init_for(cls: Any, names: tuple[str, ...], defaults: tuple[Any, ...]) -> Any:
    # The slot descriptors' own setters bypass the frozen __setattr__.
    setters = [cls.__dict__[name].__set__ for name in names]
    init = _template(len(names))(*setters)
    code = init.__code__
    init.__code__ = code.replace(
        co_varnames=("self", *names, *code.co_varnames[len(names) + 1 :]),
        co_qualname=f"{cls.__qualname__}.__init__",
    )
    init.__defaults__ = defaults or None
    init.__module__ = cls.__module__
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init
