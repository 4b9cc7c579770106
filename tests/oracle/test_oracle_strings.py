"""String transcoding between every pair of encodings: our ``_abi`` against the specification.

A string travels from a source component (lifted from its memory under its
encoding) to a destination component (lowered into its memory under its
encoding). The realloc calls the destination sees (sizes, alignments, the
grow-then-shrink sequence), the bytes written and the returned (pointer,
tagged length) must be the specification's exactly.
"""

from __future__ import annotations

from typing import Any

import _trio_wasi_oracle_adapter as A
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_wasi._abi import STRING, load, store
from trio_wasi._abi._strings import load_string_from_range, store_string_into_range

S = A.require_spec()

TEXT = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(max_codepoint=0x7F), max_size=12),
    st.text(st.characters(max_codepoint=0xFF), max_size=12),
    # ASCII then something wider: the grow-on-first-non-ASCII paths.
    st.tuples(
        st.text(st.characters(max_codepoint=0x7F), max_size=6),
        st.text(
            st.characters(min_codepoint=0x80, exclude_categories=("Cs",)), min_size=1, max_size=6
        ),
    ).map("".join),
)

SOURCE_AT = 64


def source_bytes(s: str, encoding: str, utf16: bool) -> tuple[bytes, int]:
    """How a component using ``encoding`` holds ``s``: its bytes and tagged length.

    Under ``latin1+utf16`` the component may hold a string that fits Latin-1
    as UTF-16 anyway (``utf16``); the tag says which.
    """
    if encoding == "utf8":
        data = s.encode("utf-8")
        return data, len(data)
    if encoding == "utf16":
        data = s.encode("utf-16-le")
        return data, len(data) // 2
    if utf16 or max(s, default="\0") >= "\u0100":
        data = s.encode("utf-16-le")
        return data, (len(data) // 2) | A.UTF16_TAG
    data = s.encode("latin-1")
    return data, len(data)


@settings(deadline=None, max_examples=400)
@given(
    TEXT,
    st.sampled_from(A.ENCODINGS),
    st.sampled_from(A.ENCODINGS),
    st.booleans(),
)
def test_transcode_component_to_component(s: str, src: str, dst: str, utf16: bool) -> None:
    data, tagged = source_bytes(s, src, utf16)

    # Lift from the source component's memory on both sides.
    src_o, src_s = A.Ours(src), A.Spec(src)
    src_o.memory.view()[SOURCE_AT : SOURCE_AT + len(data)] = data
    src_s.memory.bytes[SOURCE_AT : SOURCE_AT + len(data)] = data
    src_cx = src_o.cx()
    lifted_o = load_string_from_range(src_cx, src_cx.memory_view(), SOURCE_AT, tagged)
    lifted_s = S.load_string_from_range(src_s.cx(), SOURCE_AT, tagged)
    assert lifted_s == (s, src, tagged)
    assert lifted_o == s

    # Lower into the destination component.
    dst_o, dst_s = A.Ours(dst), A.Spec(dst)
    got_o = store_string_into_range(dst_o.cx(source_encoding=src), lifted_o)
    got_s = S.store_string_into_range(dst_s.cx(), lifted_s)
    assert got_o == tuple(got_s)
    assert dst_o.alloc.calls == dst_s.alloc.calls
    assert dst_o.bytes() == dst_s.bytes()

    # And it reads back as the same string on both sides.
    ptr, tagged_dst = got_o
    cx = dst_o.cx()
    assert load_string_from_range(cx, cx.memory_view(), ptr, tagged_dst) == s
    assert S.load_string_from_range(dst_s.cx(), ptr, tagged_dst)[0] == s


@settings(deadline=None, max_examples=150)
@given(TEXT, st.sampled_from(A.ENCODINGS))
def test_host_string_store(s: str, encoding: str) -> None:
    """A host string is lowered as the specification lowers it from the same encoding."""
    ours, spec = A.Ours(encoding), A.Spec(encoding)
    ptr = ours.alloc(0, 0, 4, 8)
    assert spec.alloc(0, 0, 4, 8) == ptr
    store(ours.cx(), s, STRING, ptr)
    S.store(spec.cx(), A.spec_value(STRING, s, encoding), S.StringType(), ptr)
    assert ours.alloc.calls == spec.alloc.calls
    assert ours.bytes() == spec.bytes()
    assert load(ours.cx(), ptr, STRING) == s


BAD_UTF8 = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"a\x80b", b"\xf4\x90\x80\x80"]
BAD_UTF16 = [b"\x00\xd8", b"\x00\xdc\x41\x00", b"\x3d\xd8\x3d\xd8"]


@pytest.mark.parametrize(
    ("encoding", "data", "tagged", "ptr"),
    [
        *[("utf8", d, len(d), SOURCE_AT) for d in BAD_UTF8],
        *[("utf16", d, len(d) // 2, SOURCE_AT) for d in BAD_UTF16],
        *[("latin1+utf16", d, (len(d) // 2) | A.UTF16_TAG, SOURCE_AT) for d in BAD_UTF16],
        ("utf16", b"a\x00", 1, SOURCE_AT + 1),  # misaligned
        ("latin1+utf16", b"a", 1, SOURCE_AT + 1),  # misaligned even for Latin-1
        ("utf8", b"", (1 << 28), SOURCE_AT),  # too long
        ("utf16", b"", (1 << 27), SOURCE_AT),  # too long in bytes
        ("latin1+utf16", b"", A.UTF16_TAG | (1 << 27), SOURCE_AT),
        ("utf8", b"", A.PAGE, SOURCE_AT),  # out of bounds
        ("utf8", b"", 0, A.PAGE),  # empty, at the very end: fine
        ("utf8", b"", 1, A.PAGE),  # one past the end
    ],
)
def test_lift_string_edges(encoding: str, data: bytes, tagged: int, ptr: int) -> None:
    ours, spec = A.Ours(encoding), A.Spec(encoding)
    end = min(ptr + len(data), A.PAGE)
    ours.memory.view()[ptr:end] = data[: end - ptr]
    spec.memory.bytes[ptr:end] = data[: end - ptr]
    cx = ours.cx()
    got_o = A.outcome(lambda: load_string_from_range(cx, cx.memory_view(), ptr, tagged))
    got_s = A.outcome(lambda: S.load_string_from_range(spec.cx(), ptr, tagged))
    assert got_o[0] == got_s[0]
    if got_o[0] == "ok":
        assert got_o[1] == got_s[1][0]


def test_realloc_result_checks() -> None:
    """A realloc answer that is misaligned or out of bounds traps on both sides."""

    def check(answer: int, encoding: str, src: str, s: str) -> Any:
        ours, spec = A.Ours(encoding), A.Spec(encoding)
        ours.opts = type(ours.opts)(
            memory=ours.memory, string_encoding=ours.opts.string_encoding, realloc=lambda *a: answer
        )
        spec.opts.realloc = lambda *a: answer
        got_o = A.outcome(lambda: store_string_into_range(ours.cx(source_encoding=src), s))
        got_s = A.outcome(
            lambda: S.store_string_into_range(spec.cx(), (s, src, A.string_units(s, src)))
        )
        return got_o[0], got_s[0]

    for encoding in A.ENCODINGS:
        for src in A.ENCODINGS:
            for s in ["ab", "é", "\u20ac", "a\U0001f600"]:
                o, p = check(1, encoding, src, s)
                assert o == p, (encoding, src, s, 1)
                o, p = check(A.PAGE - 1, encoding, src, s)
                assert o == p, (encoding, src, s, A.PAGE - 1)
