"""Python values of the compound types: building them when lifting, taking them apart when lowering.

One place for the value mapping of records, tuples, the variant-like types,
flags and maps (see :mod:`._values`), shared by the memory and flat code paths.
The builders are memoised per type.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._types import (
    EnumType,
    FlagsType,
    OptionType,
    RecordType,
    ResultType,
    TupleType,
    ValueType,
    VariantType,
    describe_value_type,
)
from ._values import DuplicateKeyMap, Err, Ok, Some, Variant

__all__ = [
    "flags_packer",
    "flags_unpacker",
    "map_from_pairs",
    "map_to_pairs",
    "record_maker",
    "record_splitter",
    "variant_maker",
    "variant_splitter",
]

_CACHE = 4096

Maker = Callable[[int, Any], Any]
Splitter = Callable[[Any], tuple[int, Any]]


@functools.lru_cache(maxsize=_CACHE)
def variant_maker(t: ValueType) -> Maker:
    """``(case_index, payload) -> value`` for a variant-like type."""
    if isinstance(t, VariantType):
        labels = tuple(label for label, _ in t.cases)
        return lambda i, v: Variant(labels[i], v)
    if isinstance(t, EnumType):
        enum_labels = t.labels
        return lambda i, v: enum_labels[i]
    if isinstance(t, OptionType):
        if isinstance(t.type, OptionType):
            return lambda i, v: Some(v) if i else None
        return lambda i, v: v if i else None
    if isinstance(t, ResultType):
        return lambda i, v: Err(v) if i else Ok(v)
    raise TypeError(f"not a variant-like type: {t!r}")


@functools.lru_cache(maxsize=_CACHE)
def variant_splitter(t: ValueType) -> Splitter:
    """``value -> (case_index, payload)`` for a variant-like type; ValueError if it fits no case."""
    if isinstance(t, VariantType):
        index = {label: i for i, (label, _) in enumerate(t.cases)}

        def split_variant(v: Any) -> tuple[int, Any]:
            if type(v) is not Variant:
                raise ValueError(f"expected a Variant for {describe_value_type(t)}, got {v!r}")
            i = index.get(v.case)
            if i is None:
                raise ValueError(f"{v.case!r} is not a case of {describe_value_type(t)}")
            return i, v.value

        return split_variant
    if isinstance(t, EnumType):
        enum_index = {label: i for i, label in enumerate(t.labels)}

        def split_enum(v: Any) -> tuple[int, Any]:
            i = enum_index.get(v) if isinstance(v, str) else None
            if i is None:
                raise ValueError(f"{v!r} is not a label of {describe_value_type(t)}")
            return i, None

        return split_enum
    if isinstance(t, OptionType):

        def split_option(v: Any) -> tuple[int, Any]:
            if v is None:
                return 0, None
            if type(v) is Some:
                return 1, v.value
            return 1, v

        return split_option
    if isinstance(t, ResultType):

        def split_result(v: Any) -> tuple[int, Any]:
            cls = type(v)
            if cls is Ok:
                return 0, v.value
            if cls is Err:
                return 1, v.value
            raise ValueError(f"expected Ok or Err for {describe_value_type(t)}, got {v!r}")

        return split_result
    raise TypeError(f"not a variant-like type: {t!r}")


@functools.lru_cache(maxsize=_CACHE)
def record_maker(t: ValueType) -> Callable[[list[Any]], Any]:
    """``field values -> value`` for a record (dict) or tuple (tuple)."""
    if isinstance(t, RecordType):
        labels = tuple(label for label, _ in t.fields)
        return lambda vs: dict(zip(labels, vs, strict=True))
    if isinstance(t, TupleType):
        return tuple
    raise TypeError(f"not a record-like type: {t!r}")


@functools.lru_cache(maxsize=_CACHE)
def record_splitter(t: ValueType) -> Callable[[Any], Sequence[Any]]:
    """``value -> field values`` for a record or tuple; ValueError on a wrong shape."""
    if isinstance(t, RecordType):
        labels = tuple(label for label, _ in t.fields)

        def split_record(v: Any) -> Sequence[Any]:
            if not isinstance(v, Mapping):
                raise ValueError(f"expected a dict for {describe_value_type(t)}, got {v!r}")
            try:
                values = [v[label] for label in labels]
            except KeyError as exc:
                raise ValueError(f"record value lacks field {exc.args[0]!r}") from None
            if len(v) != len(labels):
                # A misspelt field is an error, not a field quietly left out.
                extra = sorted(str(k) for k in v if k not in labels)
                raise ValueError(
                    f"record value has fields {describe_value_type(t)} does not: "
                    + ", ".join(extra)
                )
            return values

        return split_record
    if isinstance(t, TupleType):
        n = len(t.types)

        def split_tuple(v: Any) -> Sequence[Any]:
            if not isinstance(v, tuple | list) or len(v) != n:
                raise ValueError(f"expected a {n}-tuple for {describe_value_type(t)}, got {v!r}")
            return v

        return split_tuple
    raise TypeError(f"not a record-like type: {t!r}")


@functools.lru_cache(maxsize=_CACHE)
def flags_unpacker(t: FlagsType) -> Callable[[int], frozenset[str]]:
    """``bits -> frozenset of labels`` (bits past the last label are ignored)."""
    labels = t.labels

    def unpack(i: int) -> frozenset[str]:
        if not i:
            return frozenset()
        return frozenset(label for j, label in enumerate(labels) if i >> j & 1)

    return unpack


@functools.lru_cache(maxsize=_CACHE)
def flags_packer(t: FlagsType) -> Callable[[Iterable[str]], int]:
    """``iterable of labels -> bits``; ValueError for an unknown label."""
    bits = {label: 1 << j for j, label in enumerate(t.labels)}

    def pack(v: Iterable[str]) -> int:
        if isinstance(v, str):
            raise ValueError(
                f"expected a set of labels for {describe_value_type(t)}, got the string {v!r}"
            )
        i = 0
        for label in v:
            bit = bits.get(label)
            if bit is None:
                raise ValueError(f"{label!r} is not a label of {describe_value_type(t)}")
            i |= bit
        return i

    return pack


def map_from_pairs(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """The Python value of a lifted ``map`` from its ``(key, value)`` pairs, in order.

    A plain dict when every key is distinct; a :class:`DuplicateKeyMap` (last
    value wins, every pair kept for lowering) when a key repeats. Keys are
    always hashable: map keys are integers, bool, char or string.
    """
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    return DuplicateKeyMap(pairs)


def map_to_pairs(v: Any) -> Sequence[Any]:
    """The pairs to lower for a ``map`` value: a Mapping, or an iterable of pairs.

    ValueError for anything else; the pairs themselves are checked as
    ``tuple<key, value>`` values when they are stored.
    """
    if type(v) is DuplicateKeyMap:
        return v.lowered_pairs()
    if isinstance(v, Mapping):
        return list(v.items())
    if isinstance(v, str | bytes | bytearray | memoryview):
        raise ValueError(f"expected a mapping or (key, value) pairs for a map, got {v!r}")
    if isinstance(v, Sequence):
        return v
    try:
        return list(v)
    except TypeError:
        raise ValueError(f"expected a mapping or (key, value) pairs for a map, got {v!r}") from None
