"""HTTP fields (headers and trailers) as wasi:http defines them, shared by 0.3 and 0.2.

A :class:`Fields` keeps its entries in order with their names as given;
names compare case-insensitively. Names must be RFC 9110 tokens and values
field-value octets (section 5.5: no CR, LF or NUL, no other controls but
HTAB). Hop-by-hop headers that only the host may set are *forbidden*: a guest
can neither add them nor see them on incoming messages. Headers attached to a
request or response become *immutable*: every mutation is then refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Self

from trio_wasi import Err, Ok, Variant

__all__ = [
    "FORBIDDEN",
    "FieldsCore",
    "FieldsFace",
    "HeaderError",
    "header_result",
    "valid_name",
    "valid_value",
]

# RFC 9110 section 5.6.2: token = 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 section 5.5: field-vchar, SP, HTAB and obs-text; a value neither
# starts nor ends with whitespace.
_VALUE = re.compile(rb"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?")

#: Connection-specific headers the host manages itself (RFC 9110 section 7.6.1,
#: RFC 9113 section 8.2.2); a guest may not set them.
FORBIDDEN = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
        "http2-settings",
    }
)


class HeaderError(Exception):
    """A refused field operation; ``case`` is the ``header-error`` case label."""

    def __init__(self, case: str) -> None:
        super().__init__(case)
        self.case = case

    def variant(self) -> Variant:
        return Variant(self.case, None)


def valid_name(name: str) -> bool:
    """Whether ``name`` is an RFC 9110 token."""
    return _TOKEN.fullmatch(name) is not None


def valid_value(value: bytes) -> bool:
    """Whether ``value`` is a valid field value (section 5.5), with no surrounding whitespace."""
    return _VALUE.fullmatch(value) is not None


def _key(name: str) -> str:
    return name.lower()


class FieldsCore:
    """Ordered (name, value) pairs, optionally immutable; the WIT classes build on it."""

    def __init__(self) -> None:
        # Not called `entries`: that is a method of the 0.2 resource.
        self.pairs: list[tuple[str, bytes]] = []
        self.immutable = False

    @classmethod
    def of(cls, entries: Iterable[tuple[str, bytes]], *, immutable: bool = False) -> Self:
        """Fields holding ``entries`` as they are (no checks)."""
        out = cls()
        out.pairs = [(n, bytes(v)) for n, v in entries]
        out.immutable = immutable
        return out

    @classmethod
    def checked(cls, entries: Iterable[tuple[str, bytes]]) -> Self:
        """Fields from a guest's list, validated; raises :class:`HeaderError`."""
        out = cls()
        for name, value in entries:
            out.check(name, [bytes(value)])
            out.pairs.append((name, bytes(value)))
        return out

    @classmethod
    def incoming(cls, entries: Iterable[tuple[bytes | str, bytes]]) -> Self:
        """Immutable fields from the network: forbidden and malformed ones left out."""
        kept: list[tuple[str, bytes]] = []
        # (_key, valid_name and valid_value, inline: this runs per header of every request.)
        token, field_value = _TOKEN.fullmatch, _VALUE.fullmatch
        for raw, value in entries:
            name = raw.decode("latin-1") if isinstance(raw, bytes) else raw
            if name.lower() in FORBIDDEN or token(name) is None or field_value(value) is None:
                continue
            kept.append((name, bytes(value)))
        out = cls()
        out.pairs = kept
        out.immutable = True
        return out

    def check(self, name: str, values: list[bytes]) -> None:
        """Refuse a mutation of ``name`` (to ``values``): immutable, bad syntax, forbidden."""
        if self.immutable:
            raise HeaderError("immutable")
        # (valid_name, _key and valid_value, inline: this runs per header set.)
        if _TOKEN.fullmatch(name) is None:
            raise HeaderError("invalid-syntax")
        if name.lower() in FORBIDDEN:
            raise HeaderError("forbidden")
        for v in values:
            if _VALUE.fullmatch(v) is None:
                raise HeaderError("invalid-syntax")

    def values(self, name: str) -> list[bytes]:
        key = _key(name)
        return [v for n, v in self.pairs if n.lower() == key]  # (_key, inline)

    def contains(self, name: str) -> bool:
        key = _key(name)
        for n, _ in self.pairs:  # (_key, inline: this runs per response)
            if n.lower() == key:
                return True
        return False

    def put(self, name: str, values: list[bytes]) -> None:
        values = [bytes(v) for v in values]
        self.check(name, values)
        key = _key(name)
        self.pairs = [(n, v) for n, v in self.pairs if _key(n) != key]
        self.pairs.extend((name, v) for v in values)

    def add(self, name: str, value: bytes) -> None:
        self.check(name, [bytes(value)])
        self.pairs.append((name, bytes(value)))

    def remove(self, name: str) -> list[bytes]:
        self.check(name, [])
        key = _key(name)
        removed = [v for n, v in self.pairs if _key(n) == key]
        self.pairs = [(n, v) for n, v in self.pairs if _key(n) != key]
        return removed


def header_result(fn: Callable[..., Any], *args: Any) -> Ok | Err:
    """Run a field operation, turning a :class:`HeaderError` into ``Err(header-error)``."""
    try:
        value = fn(*args)
    except HeaderError as exc:
        return Err(exc.variant())
    return Ok(value)


class FieldsFace(FieldsCore):
    """The WIT methods of ``fields`` that 0.2.0 and 0.3.0 share.

    Each generation's ``fields`` resource is a subclass of its own (resource
    types are per interface), adding what only that generation has.
    """

    @classmethod
    def from_list(cls, entries: list[tuple[str, bytes]]) -> Ok | Err:
        return header_result(cls.checked, entries)

    def get(self, name: str) -> list[bytes]:
        return self.values(name)

    def has(self, name: str) -> bool:
        return self.contains(name)

    def set(self, name: str, value: list[bytes]) -> Ok | Err:
        return header_result(self.put, name, value)

    def delete(self, name: str) -> Ok | Err:
        result = header_result(self.remove, name)
        return Ok(None) if isinstance(result, Ok) else result

    def append(self, name: str, value: bytes) -> Ok | Err:
        return header_result(self.add, name, value)

    def clone(self) -> Self:
        return type(self).of(self.pairs)
