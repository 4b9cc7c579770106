"""Component values in wasm-tools' ``json-from-wast`` form, as trio_wasi Python values.

``wasm-tools json-from-wast`` writes each argument and expected result as
``{"type": T, "value": V}``. The forms (as produced by wasm-tools 1.262):

=============  ==============================================================
``T``          ``V``
=============  ==============================================================
bool           JSON ``true``/``false``
u8 ... s64     the integer as a decimal string (signed types carry a sign)
f32, f64       the IEEE bit pattern as an unsigned decimal string, or
               ``"nan:canonical"``/``"nan:arithmetic"``
char, string   a JSON string
list, tuple    a JSON array of values
record         a JSON array of ``[label, value]`` pairs
variant        ``{"case": label, "payload": value}`` (payload absent or null
               for a case without one)
enum           the label string
option         null for none, else the payload value
result         ``{"Ok": value-or-null}`` or ``{"Err": value-or-null}``
flags          a JSON array of the labels that are set
=============  ==============================================================

:func:`argument_value` turns one into what ``Instance.call`` accepts and
:func:`expected_value` into a pattern that :func:`matches` compares with a
result, following the value mapping of the embedding API.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Final, final

import attrs

from trio_wasi import Err, Ok, Some, Variant

__all__ = ["NanPattern", "ValueFormError", "argument_value", "expected_value", "matches"]

_INTEGER_RANGES: Final[dict[str, tuple[int, int]]] = {
    "u8": (0, 2**8 - 1),
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
    "s8": (-(2**7), 2**7 - 1),
    "s16": (-(2**15), 2**15 - 1),
    "s32": (-(2**31), 2**31 - 1),
    "s64": (-(2**63), 2**63 - 1),
}


class ValueFormError(ValueError):
    """A JSON value this converter does not understand."""


@final
@attrs.frozen
class NanPattern:
    """An expected float result that is any NaN (``nan:canonical``/``nan:arithmetic``).

    Results are canonicalised NaNs in our value mapping, so both forms accept
    any NaN.
    """

    form: str

    def __repr__(self) -> str:
        return self.form


@final
@attrs.frozen
class _U8List:
    """An expected ``list`` whose elements are all u8: matches ``bytes`` or a list.

    The JSON does not say whether the list type is ``list<u8>`` (lifted to
    ``bytes``) or, for instance, ``list<T>`` with T another alias, so both
    results are accepted.
    """

    items: tuple[int, ...]

    def __repr__(self) -> str:
        return repr(list(self.items))


def _float(kind: str, raw: object) -> float | NanPattern:
    if not isinstance(raw, str):
        raise ValueFormError(f"{kind} value must be a string, not {raw!r}")
    if raw.startswith("nan:"):
        return NanPattern(raw)
    try:
        bits = int(raw, 10)
    except ValueError:
        raise ValueFormError(f"{kind} value {raw!r} is not a bit pattern") from None
    if kind == "f32":
        if not 0 <= bits < 2**32:
            raise ValueFormError(f"f32 bit pattern {raw} out of range")
        value: float = struct.unpack("<f", struct.pack("<I", bits))[0]
        return value
    if not 0 <= bits < 2**64:
        raise ValueFormError(f"f64 bit pattern {raw} out of range")
    value = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return value


def _convert(value: object, *, expected: bool) -> Any:
    if not isinstance(value, dict) or "type" not in value:
        raise ValueFormError(f"not a typed value: {value!r}")
    kind = value["type"]
    raw = value.get("value")

    def sub(item: object) -> Any:
        return _convert(item, expected=expected)

    if kind == "bool":
        if not isinstance(raw, bool):
            raise ValueFormError(f"bool value must be true or false, not {raw!r}")
        return raw
    if kind in _INTEGER_RANGES:
        try:
            number = int(str(raw), 10)
        except ValueError:
            raise ValueFormError(f"{kind} value {raw!r} is not an integer") from None
        low, high = _INTEGER_RANGES[kind]
        if not low <= number <= high:
            raise ValueFormError(f"{kind} value {number} out of range")
        return number
    if kind in ("f32", "f64"):
        result = _float(kind, raw)
        if isinstance(result, NanPattern) and not expected:
            return math.nan
        return result
    if kind == "char":
        if not isinstance(raw, str) or len(raw) != 1:
            raise ValueFormError(f"char value must be one character, not {raw!r}")
        return raw
    if kind in ("string", "enum"):
        if not isinstance(raw, str):
            raise ValueFormError(f"{kind} value must be a string, not {raw!r}")
        return raw
    if kind == "list":
        items = [sub(item) for item in _array(kind, raw)]
        if expected and items and all(_is_u8(item) for item in _array(kind, raw)):
            return _U8List(tuple(items))
        return items
    if kind == "tuple":
        return tuple(sub(item) for item in _array(kind, raw))
    if kind == "record":
        fields: dict[str, Any] = {}
        for pair in _array(kind, raw):
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise ValueFormError(f"record field must be [label, value], not {pair!r}")
            fields[pair[0]] = sub(pair[1])
        return fields
    if kind == "variant":
        if not isinstance(raw, dict) or not isinstance(raw.get("case"), str):
            raise ValueFormError(f"variant value must have a case, not {raw!r}")
        payload = raw.get("payload")
        return Variant(raw["case"], None if payload is None else sub(payload))
    if kind == "option":
        if raw is None:
            return None
        inner = sub(raw)
        # Our mapping wraps the payload only where a bare value would be ambiguous.
        if isinstance(raw, dict) and raw.get("type") == "option":
            return Some(inner)
        return inner
    if kind == "result":
        if not isinstance(raw, dict) or len(raw) != 1:
            raise ValueFormError(f"result value must be {{'Ok': v}} or {{'Err': v}}, not {raw!r}")
        ((case, payload),) = raw.items()
        inner = None if payload is None else sub(payload)
        if case == "Ok":
            return Ok(inner)
        if case == "Err":
            return Err(inner)
        raise ValueFormError(f"unknown result case {case!r}")
    if kind == "flags":
        labels = _array(kind, raw)
        if not all(isinstance(label, str) for label in labels):
            raise ValueFormError(f"flags value must be a list of labels, not {raw!r}")
        return frozenset(labels)
    raise ValueFormError(f"unsupported value type {kind!r}")


def _array(kind: str, raw: object) -> list[Any]:
    if not isinstance(raw, list):
        raise ValueFormError(f"{kind} value must be an array, not {raw!r}")
    return raw


def _is_u8(item: object) -> bool:
    return isinstance(item, dict) and item.get("type") == "u8"


def argument_value(value: object) -> Any:
    """The Python argument for a JSON value (NaN forms become ``math.nan``)."""
    return _convert(value, expected=False)


def expected_value(value: object) -> Any:
    """A pattern for :func:`matches` from an expected JSON value."""
    return _convert(value, expected=True)


def _float_matches(expected: float, actual: object) -> bool:
    if not isinstance(actual, float):
        return False
    if math.isnan(expected):
        # Results carry canonical NaNs, whatever payload the expectation spells.
        return math.isnan(actual)
    # Equality alone would accept -0.0 for 0.0.
    return expected == actual and math.copysign(1.0, expected) == math.copysign(1.0, actual)


def matches(expected: Any, actual: object) -> bool:
    """Whether a result ``actual`` satisfies the pattern ``expected``."""
    if isinstance(expected, NanPattern):
        return isinstance(actual, float) and math.isnan(actual)
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual is expected
    if isinstance(expected, int):
        return isinstance(actual, int) and not isinstance(actual, bool) and actual == expected
    if isinstance(expected, float):
        return _float_matches(expected, actual)
    if isinstance(expected, str):
        return isinstance(actual, str) and actual == expected
    if expected is None:
        return actual is None
    if isinstance(expected, _U8List):
        if isinstance(actual, bytes | bytearray):
            return tuple(actual) == expected.items
        return matches(list(expected.items), actual)
    if isinstance(expected, list):
        return isinstance(actual, list) and _all_match(expected, actual)
    if isinstance(expected, tuple):
        return isinstance(actual, tuple) and _all_match(expected, actual)
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(matches(expected[key], actual[key]) for key in expected)
        )
    if isinstance(expected, frozenset):
        return isinstance(actual, frozenset | set) and actual == expected
    if isinstance(expected, Variant):
        return (
            isinstance(actual, Variant)
            and actual.case == expected.case
            and matches(expected.value, actual.value)
        )
    if isinstance(expected, Some | Ok | Err):
        return type(actual) is type(expected) and matches(expected.value, actual.value)
    raise TypeError(f"not a value pattern: {expected!r}")


def _all_match(expected: list[Any] | tuple[Any, ...], actual: list[Any] | tuple[Any, ...]) -> bool:
    return len(expected) == len(actual) and all(
        matches(e, a) for e, a in zip(expected, actual, strict=True)
    )
