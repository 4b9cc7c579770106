"""Python values of component types.

The mapping (lifting produces these; lowering accepts them):

=====================  ==================================================
component type         Python value
=====================  ==================================================
bool                   ``bool``
s8 ... u64             ``int`` (lowering raises ValueError out of range)
f32, f64               ``float`` (NaNs canonicalised)
char                   ``str`` of length 1 (no surrogates)
string                 ``str``
list<u8>               ``bytes`` (lowering also takes bytearray,
                       memoryview or an iterable of ints)
list<T>, list<T, N>    ``list`` (lowering takes any sequence)
record                 ``dict`` keyed by the field labels
tuple                  ``tuple``
variant                :class:`Variant` ``(case, value)``
enum                   ``str``, the case label
option<T>              ``None`` or the value; ``Some(v)`` when T is itself
                       an option, so ``Some(None)`` differs from ``None``
                       (lowering accepts ``Some(v)`` for any T)
result<O, E>           :class:`Ok` or :class:`Err`
flags                  ``frozenset`` of the labels set (lowering takes any
                       iterable of labels)
map<K, V>              ``dict`` in the order of the pairs; when a key repeats,
                       the last pair gives its value and the dict is a
                       :class:`DuplicateKeyMap` that also keeps every pair
                       (lowering takes any Mapping or an iterable of
                       ``(key, value)`` pairs)
own<R>, borrow<R>      a host object, or :class:`GuestResource` for a
                       guest-defined resource (see :mod:`._resources`)
=====================  ==================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, final

import attrs

if TYPE_CHECKING:
    from ._types import ResourceType

__all__ = ["DuplicateKeyMap", "Err", "GuestResource", "Ok", "Some", "Variant"]


@attrs.frozen
class Variant:
    """A value of a ``variant`` type: the case label and its payload (None if none)."""

    case: str
    value: Any = None


@attrs.frozen
class Some:
    """The ``some`` case of an option, used where a bare value would be ambiguous."""

    value: Any


@attrs.frozen
class Ok:
    """The ``ok`` case of a ``result``."""

    value: Any = None


@attrs.frozen
class Err:
    """The ``error`` case of a ``result``."""

    value: Any = None


@final
class DuplicateKeyMap(dict[Any, Any]):
    """A lifted ``map`` whose list of pairs repeated a key.

    As a dict it holds the last value of each key (Explainer.md "Specialized
    value types": the last pair defines a key's value). ``pairs`` keeps the
    pairs exactly as lifted, duplicates and order included, because the
    Component Model does not deduplicate: passing the value on to another
    component lowers these pairs unchanged. Once the dict's contents no longer
    agree with ``pairs`` (the host changed it), lowering uses the dict instead.
    """

    __slots__ = ("pairs",)

    def __init__(self, pairs: Sequence[tuple[Any, Any]]) -> None:
        super().__init__(pairs)
        self.pairs: tuple[tuple[Any, Any], ...] = tuple(pairs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.pairs)!r})"

    def lowered_pairs(self) -> Sequence[tuple[Any, Any]]:
        """The pairs to lower: ``pairs`` while they still describe this dict."""
        if dict(self.pairs) == self:
            return self.pairs
        return list(self.items())


@final
class GuestResource:
    """A guest-defined resource held by the host: its type and representation.

    An owning value is consumed when it is lowered into a component or dropped;
    using it again raises ValueError.
    """

    __slots__ = ("_live", "owned", "rep", "resource")

    def __init__(self, resource: ResourceType, rep: int, owned: bool) -> None:
        self.resource = resource
        self.rep = rep
        self.owned = owned
        self._live = True

    def __repr__(self) -> str:
        kind = "own" if self.owned else "borrow"
        state = "" if self._live else " (consumed)"
        return f"<GuestResource {kind} {self.resource.name!r} rep={self.rep}{state}>"

    @property
    def live(self) -> bool:
        """False once the value has been moved into a component or dropped."""
        return self._live

    def take(self) -> int:
        """Consume an owning value, returning its representation."""
        if not self.owned:
            raise ValueError(f"{self!r} is a borrow; it cannot transfer ownership")
        if not self._live:
            raise ValueError(f"{self!r} was already moved or dropped")
        self._live = False
        return self.rep
