"""Resolved component value types, the vocabulary of the canonical ABI.

The decoder keeps type indices; the linker resolves them into the classes here,
which hold their component types directly (no index spaces). Every class except
:class:`ResourceType` is a frozen, slotted class (:func:`.._frozen.frozen`)
compared and hashed by value, with the hash cached, so per-type layouts and
lift/lower plans can be memoised in ``functools.lru_cache`` tables keyed by the
type itself.

:class:`ResourceType` is the one exception: each ``(type (resource ...))``
definition, and each resource a host defines, is a *new* type at run time
(CanonicalABI.md "Resource State"), so two resource types are equal only when
they are the same object.

The specialised types (tuple, enum, option, result, map) stay distinct classes
here because they map to different Python values; the layout code treats them
as the record, variant or list they despecialise to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from .._frozen import frozen

if TYPE_CHECKING:
    from ._handles import InstanceState

__all__ = [
    "BOOL",
    "CHAR",
    "ERROR_CONTEXT",
    "F32",
    "F64",
    "S8",
    "S16",
    "S32",
    "S64",
    "STRING",
    "U8",
    "U16",
    "U32",
    "U64",
    "BoolType",
    "BorrowType",
    "CharType",
    "EnumType",
    "ErrorContextType",
    "F32Type",
    "F64Type",
    "FlagsType",
    "FuncType",
    "FutureType",
    "KEY_TYPES",
    "ListType",
    "MapType",
    "OptionType",
    "OwnType",
    "RecordType",
    "ResourceType",
    "ResultType",
    "S8Type",
    "S16Type",
    "S32Type",
    "S64Type",
    "StreamType",
    "StringType",
    "TupleType",
    "U8Type",
    "U16Type",
    "U32Type",
    "U64Type",
    "ValueType",
    "VariantType",
    "describe_value_type",
    "type_parts",
]


# ---------------------------------------------------------------------------
# Primitive types: field-less, so every instance is equal to every other.


@frozen(cache_hash=True)
class BoolType:
    """``bool``."""


@frozen(cache_hash=True)
class S8Type:
    """``s8``."""


@frozen(cache_hash=True)
class U8Type:
    """``u8``."""


@frozen(cache_hash=True)
class S16Type:
    """``s16``."""


@frozen(cache_hash=True)
class U16Type:
    """``u16``."""


@frozen(cache_hash=True)
class S32Type:
    """``s32``."""


@frozen(cache_hash=True)
class U32Type:
    """``u32``."""


@frozen(cache_hash=True)
class S64Type:
    """``s64``."""


@frozen(cache_hash=True)
class U64Type:
    """``u64``."""


@frozen(cache_hash=True)
class F32Type:
    """``f32``."""


@frozen(cache_hash=True)
class F64Type:
    """``f64``."""


@frozen(cache_hash=True)
class CharType:
    """``char``: a Unicode scalar value."""


@frozen(cache_hash=True)
class StringType:
    """``string``."""


@frozen(cache_hash=True)
class ErrorContextType:
    """``error-context``."""


BOOL = BoolType()
S8 = S8Type()
U8 = U8Type()
S16 = S16Type()
U16 = U16Type()
S32 = S32Type()
U32 = U32Type()
S64 = S64Type()
U64 = U64Type()
F32 = F32Type()
F64 = F64Type()
CHAR = CharType()
STRING = StringType()
ERROR_CONTEXT = ErrorContextType()


# ---------------------------------------------------------------------------
# Resources


class ResourceType:
    """One resource type, compared by identity.

    ``instance`` is the state of the component instance that defined it, or
    None for a resource the host defines (then ``host_class`` is the Python
    class of its values). ``dtor`` is called with the representation when an
    owning handle is dropped; for host resources it runs before the
    representation leaves the store's :class:`~._resources.HostRepTable`, so it
    can still look the object up.
    """

    __slots__ = ("__weakref__", "dtor", "host_class", "instance", "name")

    def __init__(
        self,
        name: str,
        instance: InstanceState | None = None,
        dtor: Callable[[int], None] | None = None,
        host_class: type | None = None,
    ) -> None:
        self.name = name
        self.instance = instance
        self.dtor = dtor
        self.host_class = host_class

    def __repr__(self) -> str:
        owner = "host" if self.instance is None else "guest"
        return f"<ResourceType {self.name!r} ({owner}) at {id(self):#x}>"


# ---------------------------------------------------------------------------
# Compound types


@frozen(cache_hash=True)
class ListType:
    """``list<element>``, or ``list<element, length>`` when ``length`` is set."""

    element: ValueType
    length: int | None = None


KEY_TYPES: tuple[type, ...] = (
    BoolType,
    S8Type,
    U8Type,
    S16Type,
    U16Type,
    S32Type,
    U32Type,
    S64Type,
    U64Type,
    CharType,
    StringType,
)
"""The classes of the types a ``map`` key may have (Explainer.md ``keytype``).

All of them lift to hashable Python values (bool, int, str), so a lifted map
can be a ``dict``.
"""


@frozen(cache_hash=True)
class MapType:
    """``map<key, value>``: despecialises to ``list<tuple<key, value>>``.

    ``key`` must be one of :data:`KEY_TYPES` (ValueError otherwise).
    """

    key: ValueType
    value: ValueType

    def __init__(self, key: ValueType, value: ValueType) -> None:
        if type(key) not in KEY_TYPES:
            raise ValueError(
                f"{key!r} cannot be a map key (keys are integers, bool, char or string)"
            )
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "value", value)

    def as_list(self) -> ListType:
        """The ``list<tuple<key, value>>`` this map type is laid out as."""
        return ListType(TupleType((self.key, self.value)))

    def pair_type(self) -> TupleType:
        """The element type of :meth:`as_list`: ``tuple<key, value>``."""
        return TupleType((self.key, self.value))


@frozen(cache_hash=True)
class RecordType:
    """``record``: labelled fields in declaration order."""

    fields: tuple[tuple[str, ValueType], ...]


@frozen(cache_hash=True)
class TupleType:
    """``tuple<...>``."""

    types: tuple[ValueType, ...]


@frozen(cache_hash=True)
class VariantType:
    """``variant``: labelled cases, each with an optional payload type."""

    cases: tuple[tuple[str, ValueType | None], ...]


@frozen(cache_hash=True)
class EnumType:
    """``enum``: a variant whose cases carry no payload."""

    labels: tuple[str, ...]


@frozen(cache_hash=True)
class OptionType:
    """``option<type>``."""

    type: ValueType


@frozen(cache_hash=True)
class ResultType:
    """``result<ok, error>``; either side may be absent (None)."""

    ok: ValueType | None = None
    error: ValueType | None = None


@frozen(cache_hash=True)
class FlagsType:
    """``flags``: a set of labelled bits."""

    labels: tuple[str, ...]


@frozen(cache_hash=True)
class OwnType:
    """``own<resource>``."""

    resource: ResourceType


@frozen(cache_hash=True)
class BorrowType:
    """``borrow<resource>``."""

    resource: ResourceType


@frozen(cache_hash=True)
class StreamType:
    """``stream<element>`` (``element`` None for a payload-less stream)."""

    element: ValueType | None = None


@frozen(cache_hash=True)
class FutureType:
    """``future<element>`` (``element`` None for a payload-less future)."""

    element: ValueType | None = None


@frozen(cache_hash=True)
class FuncType:
    """A component function type: named parameters, an optional result."""

    params: tuple[tuple[str, ValueType], ...]
    result: ValueType | None = None
    is_async: bool = False

    def param_types(self) -> tuple[ValueType, ...]:
        """The parameter types without their names."""
        return tuple(t for _, t in self.params)

    def result_types(self) -> tuple[ValueType, ...]:
        """The result as a tuple of zero or one types (the spec's result list)."""
        return () if self.result is None else (self.result,)


ValueType: TypeAlias = (
    BoolType
    | S8Type
    | U8Type
    | S16Type
    | U16Type
    | S32Type
    | U32Type
    | S64Type
    | U64Type
    | F32Type
    | F64Type
    | CharType
    | StringType
    | ErrorContextType
    | ListType
    | MapType
    | RecordType
    | TupleType
    | VariantType
    | EnumType
    | OptionType
    | ResultType
    | FlagsType
    | OwnType
    | BorrowType
    | StreamType
    | FutureType
)
"""Any component value type."""


def type_parts(t: object) -> tuple[object, ...]:
    """The types ``t`` is made of, in order (``None`` for an absent payload or side).

    Own and borrow handles are made of their resource type; a function type of
    its parameter types and its result. TypeError for a type with no parts.
    """
    if isinstance(t, RecordType):
        return tuple(p for _, p in t.fields)
    if isinstance(t, FuncType):
        return (*(p for _, p in t.params), t.result)
    if isinstance(t, VariantType):
        return tuple(c for _, c in t.cases)
    if isinstance(t, ListType | StreamType | FutureType):
        return (t.element,)
    if isinstance(t, TupleType):
        return t.types
    if isinstance(t, OptionType):
        return (t.type,)
    if isinstance(t, ResultType):
        return (t.ok, t.error)
    if isinstance(t, MapType):
        return (t.key, t.value)
    if isinstance(t, OwnType | BorrowType):
        return (t.resource,)
    raise TypeError(f"not a compound type: {t!r}")


def describe_value_type(t: object) -> str:
    """A WIT-like rendering of a value type, for messages a user reads.

    ``None`` (no payload, no element) renders as ``_``, as WIT writes an
    absent ``result`` side.
    """
    if t is None:
        return "_"
    d = describe_value_type
    if isinstance(t, ResourceType):
        return f"resource {t.name}" if t.name else "resource"
    if isinstance(t, OwnType):
        return f"own<{t.resource.name or 'resource'}>"
    if isinstance(t, BorrowType):
        return f"borrow<{t.resource.name or 'resource'}>"
    if isinstance(t, ListType):
        size = "" if t.length is None else f", {t.length}"
        return f"list<{d(t.element)}{size}>"
    if isinstance(t, MapType):
        return f"map<{d(t.key)}, {d(t.value)}>"
    if isinstance(t, OptionType):
        return f"option<{d(t.type)}>"
    if isinstance(t, ResultType):
        return f"result<{d(t.ok)}, {d(t.error)}>"
    if isinstance(t, TupleType):
        return "tuple<" + ", ".join(d(x) for x in t.types) + ">"
    if isinstance(t, RecordType):
        return "record { " + ", ".join(f"{n}: {d(x)}" for n, x in t.fields) + " }"
    if isinstance(t, VariantType):
        cases = ", ".join(n if x is None else f"{n}({d(x)})" for n, x in t.cases)
        return "variant { " + cases + " }"
    if isinstance(t, EnumType):
        return "enum { " + ", ".join(t.labels) + " }"
    if isinstance(t, FlagsType):
        return "flags { " + ", ".join(t.labels) + " }"
    if isinstance(t, StreamType):
        return "stream" if t.element is None else f"stream<{d(t.element)}>"
    if isinstance(t, FutureType):
        return "future" if t.element is None else f"future<{d(t.element)}>"
    name = type(t).__name__
    if name.endswith("Type"):
        return name[: -len("Type")].lower().replace("errorcontext", "error-context")
    return name
