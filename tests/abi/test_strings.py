"""Strings in the three encodings, transcoding between them, and string traps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_wasi._abi import (
    STRING,
    UTF16_TAG,
    BytesMemory,
    CanonOptions,
    CoreValueIter,
    InstanceState,
    LiftLowerContext,
    lift_flat,
    lower_flat,
)
from trio_wasi._errors import Trap

ENCODINGS = ["utf8", "utf16", "latin1+utf16"]


class Env:
    """A memory, a bump allocator that records its calls, and a context."""

    def __init__(self, encoding: str, source: str | None = None) -> None:
        self.memory = BytesMemory()
        self.top = 16
        self.calls: list[tuple[int, int, int, int]] = []
        options = CanonOptions(
            memory=self.memory,
            string_encoding=encoding,  # type: ignore[arg-type]
            realloc=self.realloc,
        )
        self.cx = LiftLowerContext(
            options,
            InstanceState(),
            source_encoding=source,  # type: ignore[arg-type]
        )

    def realloc(self, old: int, old_size: int, align: int, new_size: int) -> int:
        self.calls.append((old, old_size, align, new_size))
        ptr = (self.top + align - 1) & -align
        self.top = ptr + new_size
        if old:
            n = min(old_size, new_size)
            view = self.memory.view()
            view[ptr : ptr + n] = bytes(view[old : old + n])
        return ptr

    def put(self, ptr: int, data: bytes) -> None:
        self.memory.view()[ptr : ptr + len(data)] = data

    def get(self, ptr: int, n: int) -> bytes:
        return bytes(self.memory.view()[ptr : ptr + n])

    def lift(self, ptr: int, tagged: int) -> str:
        return lift_flat(self.cx, CoreValueIter([ptr, tagged]), STRING)  # type: ignore[no-any-return]

    def sizes(self) -> list[tuple[int, int, int]]:
        """The realloc calls without their pointers: (old size, align, new size)."""
        return [(old_size, align, new) for _, old_size, align, new in self.calls]


SAMPLES = ["", "a", "hello", "héllo", "ÿ\x80", "h€llo", "🎉 party", "a\U0010ffffz"]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("source", [None, *ENCODINGS])
@pytest.mark.parametrize("s", SAMPLES)
def test_roundtrip(encoding: str, source: str | None, s: str) -> None:
    env = Env(encoding, source)
    ptr, tagged = lower_flat(env.cx, s, STRING)
    assert env.lift(int(ptr), int(tagged)) == s


def test_utf8_layout() -> None:
    env = Env("utf8")
    ptr, n = lower_flat(env.cx, "h€", STRING)
    assert n == 4
    assert env.get(int(ptr), 4) == "h€".encode()
    assert env.sizes() == [(0, 1, 4)]


def test_utf16_layout_with_surrogate_pairs() -> None:
    env = Env("utf16")
    ptr, n = lower_flat(env.cx, "a🎉", STRING)
    assert n == 3  # code units, the emoji is a surrogate pair
    assert int(ptr) % 2 == 0
    assert env.get(int(ptr), 6) == "a🎉".encode("utf-16-le")


def test_latin1_fast_path_and_utf16_fallback() -> None:
    env = Env("latin1+utf16")
    ptr, tagged = lower_flat(env.cx, "ÿes", STRING)
    assert tagged == 3  # untagged: Latin-1, one byte per character
    assert env.get(int(ptr), 3) == b"\xffes"
    ptr, tagged = lower_flat(env.cx, "€1", STRING)
    assert tagged == 2 | UTF16_TAG
    assert env.get(int(ptr), 4) == "€1".encode("utf-16-le")
    assert env.sizes() == [(0, 2, 3), (0, 2, 4)]


def test_lift_latin1_and_tagged_utf16() -> None:
    env = Env("latin1+utf16")
    env.put(64, b"caf\xe9")
    assert env.lift(64, 4) == "café"
    env.put(128, "€".encode("utf-16-le"))
    assert env.lift(128, 1 | UTF16_TAG) == "€"


# ---------------------------------------------------------------------------
# Transcoding: the realloc calls of the specification's algorithms


@pytest.mark.parametrize(
    ("encoding", "source", "s", "sizes", "tagged"),
    [
        # UTF-16 source into UTF-8: guess 1 byte per unit, grow to 3x, shrink.
        ("utf8", "utf16", "aé", [(0, 1, 2), (2, 1, 6), (6, 1, 3)], 3),
        ("utf8", "utf16", "abc", [(0, 1, 3)], 3),  # all ASCII: the guess fits
        # Latin-1 source into UTF-8: the worst case is 2x.
        ("utf8", "latin1+utf16", "aé", [(0, 1, 2), (2, 1, 4), (4, 1, 3)], 3),
        ("utf8", "latin1+utf16", "a€", [(0, 1, 2), (2, 1, 6), (6, 1, 4)], 4),
        ("utf8", "utf8", "aé", [(0, 1, 3)], 3),
        # UTF-8 source into UTF-16: allocate 2 bytes per source byte, shrink.
        ("utf16", "utf8", "aé", [(0, 2, 6), (6, 2, 4)], 2),
        ("utf16", "utf8", "ab", [(0, 2, 4)], 2),
        ("utf16", "latin1+utf16", "aé", [(0, 2, 4)], 2),
        ("utf16", "utf16", "a€", [(0, 2, 4)], 2),
        # Into latin1+utf16 from UTF-8: Latin-1 first, inflated on the first
        # character past U+00FF.
        ("latin1+utf16", "utf8", "aé", [(0, 2, 3), (3, 2, 2)], 2),
        ("latin1+utf16", "utf8", "ab", [(0, 2, 2)], 2),
        ("latin1+utf16", "utf8", "é€", [(0, 2, 5), (5, 2, 10), (10, 2, 4)], 2 | UTF16_TAG),
        ("latin1+utf16", "utf16", "aé", [(0, 2, 2)], 2),
        ("latin1+utf16", "utf16", "a€", [(0, 2, 2), (2, 2, 4)], 2 | UTF16_TAG),
        ("latin1+utf16", "latin1+utf16", "aé", [(0, 2, 2)], 2),
        ("latin1+utf16", "latin1+utf16", "a€", [(0, 2, 4)], 2 | UTF16_TAG),
    ],
)
def test_transcoding_realloc_calls(
    encoding: str, source: str, s: str, sizes: list[tuple[int, int, int]], tagged: int
) -> None:
    env = Env(encoding, source)
    ptr, got = lower_flat(env.cx, s, STRING)
    assert env.sizes() == sizes
    assert got == tagged
    assert env.lift(int(ptr), int(got)) == s


@pytest.mark.parametrize(
    ("encoding", "sizes", "tagged"),
    [
        # The source held "aé" as UTF-16: into UTF-8 the worst case is 3x, not 2x.
        ("utf8", [(0, 1, 2), (2, 1, 6), (6, 1, 3)], 3),
        # Into latin1+utf16: copy the UTF-16, then compact it to Latin-1 (alignment 1).
        ("latin1+utf16", [(0, 2, 4), (4, 1, 2)], 2),
        ("utf16", [(0, 2, 4)], 2),
    ],
)
def test_latin1_string_held_as_utf16_transcodes_from_utf16(
    encoding: str, sizes: list[tuple[int, int, int]], tagged: int
) -> None:
    source = Env("latin1+utf16")
    source.put(64, "aé".encode("utf-16-le"))
    lifted = source.lift(64, 2 | UTF16_TAG)
    assert lifted == "aé"
    env = Env(encoding, "latin1+utf16")
    ptr, got = lower_flat(env.cx, lifted, STRING)
    assert env.sizes() == sizes
    assert got == tagged
    assert env.lift(int(ptr), int(got)) == "aé"


def test_host_strings_take_one_exact_allocation() -> None:
    for encoding, size in [("utf8", 4), ("utf16", 4), ("latin1+utf16", 4)]:
        env = Env(encoding)
        lower_flat(env.cx, "a€", STRING)
        assert env.sizes() == [(0, 1 if encoding == "utf8" else 2, size)]


def test_inflation_keeps_the_latin1_prefix() -> None:
    env = Env("latin1+utf16", "utf8")
    s = "Grüße aus Köln — 👋"
    ptr, tagged = lower_flat(env.cx, s, STRING)
    assert int(tagged) & UTF16_TAG
    assert env.get(int(ptr), 2 * (int(tagged) ^ UTF16_TAG)) == s.encode("utf-16-le")


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=20),
    st.sampled_from(ENCODINGS),
    st.sampled_from([None, *ENCODINGS]),
)
def test_random_strings(s: str, encoding: str, source: str | None) -> None:
    s = s.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates
    env = Env(encoding, source)
    ptr, tagged = lower_flat(env.cx, s, STRING)
    assert env.lift(int(ptr), int(tagged)) == s


# ---------------------------------------------------------------------------
# Traps and host errors


def test_invalid_utf8_traps() -> None:
    env = Env("utf8")
    env.put(64, b"a\xffb")
    with pytest.raises(Trap, match="invalid utf-8"):
        env.lift(64, 3)
    env.put(64, b"ab\xc3")
    with pytest.raises(Trap, match="incomplete utf-8 byte sequence"):
        env.lift(64, 3)
    env.put(64, b"\xed\xa0\x80")  # an encoded surrogate is not UTF-8
    with pytest.raises(Trap, match="invalid utf-8"):
        env.lift(64, 3)


def test_invalid_utf16_traps() -> None:
    for encoding, tagged in [("utf16", 1), ("latin1+utf16", 1 | UTF16_TAG)]:
        env = Env(encoding)
        env.put(64, b"\x00\xd8")  # a lone high surrogate
        with pytest.raises(Trap, match="invalid utf-16"):
            env.lift(64, tagged)
        with pytest.raises(Trap, match="unaligned pointer"):
            env.lift(65, tagged)


def test_latin1_strings_are_aligned_too() -> None:
    env = Env("latin1+utf16")
    with pytest.raises(Trap, match="unaligned pointer"):
        env.lift(65, 1)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_out_of_bounds_traps(encoding: str) -> None:
    env = Env(encoding)
    with pytest.raises(Trap, match="string content out-of-bounds"):
        env.lift(65534, 4)
    with pytest.raises(Trap, match="string pointer/length out of bounds of memory"):
        env.lift(70000, 0)  # even an empty string must point inside memory


def test_too_long_strings_trap() -> None:
    with pytest.raises(Trap, match="string content out-of-bounds"):
        Env("utf8").lift(0, 1 << 28)
    with pytest.raises(Trap, match="string content out-of-bounds"):
        Env("utf16").lift(0, 1 << 27)


def test_lone_surrogates_in_host_strings_are_rejected() -> None:
    for encoding in ENCODINGS:
        with pytest.raises(ValueError):
            lower_flat(Env(encoding).cx, "a\ud800", STRING)
