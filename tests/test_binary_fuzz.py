"""Robustness of the component decoder against damaged binaries.

Truncated and mutated versions of real components must fail with DecodeError
(or decode, when the damage happens to yield another well-formed binary),
never with another exception, and always quickly.
"""

from __future__ import annotations

import functools
import time

import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_wasi._binary import DecodeError, decode_component
from trio_wasi._binary._model import Component

SOURCES = {
    "types": """
        (component
          (type $r (record (field "a" u8) (field "b" string)))
          (type (variant (case "x" s64) (case "y")))
          (type (list $r))
          (type (list u8 4))
          (type (tuple bool char))
          (type (flags "p" "q"))
          (type (enum "e1" "e2"))
          (type (result u32 (error string)))
          (type (stream u8))
          (type (future))
          (type (map string u64))
          (type $i (instance
            (export "t" (type (sub resource)))
            (export "f" (func (param "v" string) (result u32)))))
          (type (component
            (import "in" (instance (type $i)))
            (export "out" (func async))))
          (import "host" (instance (type $i)))
          (core type (module
            (import "env" "mem" (memory 1 2))
            (export "run" (func (param i32) (result i64)))))
        )
    """,
    "canon": """
        (component
          (type $s (stream u8))
          (core module $m
            (memory (export "mem") 1)
            (table (export "tbl") 1 funcref)
            (func (export "run") (param i32 i32) (result i32) unreachable)
            (func (export "cb") (param i32 i32 i32) (result i32) unreachable)
            (func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable)
            (func (export "dtor") (param i32)))
          (core instance $i (instantiate $m))
          (alias core export $i "mem" (core memory $mem))
          (alias core export $i "tbl" (core table $tbl))
          (alias core export $i "run" (core func $run))
          (alias core export $i "cb" (core func $cb))
          (alias core export $i "realloc" (core func $realloc))
          (alias core export $i "dtor" (core func $dtor))
          (type $res (resource (rep i32) (dtor (core func $dtor))))
          (core type $ft (func (param i32)))
          (type $f (func async (param "x" string) (result u32)))
          (func (export "run") (type $f) (canon lift (core func $run) async
            (callback (core func $cb)) (memory (core memory $mem))
            (realloc (core func $realloc))))
          (core func (canon task.return (result u32) (memory (core memory $mem))))
          (core func (canon context.get i32 0))
          (core func (canon waitable-set.wait (memory (core memory $mem))))
          (core func (canon stream.read $s async (memory (core memory $mem))))
          (core func (canon subtask.cancel async))
          (core func (canon resource.new $res))
          (core func (canon thread.new-indirect $ft (core table $tbl)))
          (core func (canon error-context.new (memory (core memory $mem)) string-encoding=utf16))
        )
    """,
    "nested": """
        (component
          (import "f" (func $f))
          (component $c
            (import "x" (func))
            (core module $m (func (export "g")))
            (core instance (instantiate $m))
            (component $d (type string))
            (export "y" (func 0)))
          (instance $i (instantiate $c (with "x" (func $f))))
          (instance (export "a" (func $f)) (export "i" (instance $i)))
          (alias export $i "y" (func))
          (export "c" (component $c))
        )
    """,
}


@functools.cache
def binaries() -> tuple[bytes, ...]:
    return tuple(bytes(wasmtime.wat2wasm(text)) for text in SOURCES.values())


# Every call must finish within this many seconds; the inputs are a few
# hundred bytes, so anything near it means a runaway loop.
CALL_BUDGET = 0.25

FUZZ = settings(
    max_examples=800,
    deadline=None,  # timing is checked per call below; a shared CI box is noisy
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    database=None,
)


def check(data: bytes) -> None:
    start = time.perf_counter()
    try:
        assert isinstance(decode_component(data), Component)
    except DecodeError as exc:
        assert 0 <= exc.offset <= len(data)
    elapsed = time.perf_counter() - start
    assert elapsed < CALL_BUDGET, f"decoding {len(data)} bytes took {elapsed:.3f}s"


def test_sources_decode() -> None:
    for data in binaries():
        assert decode_component(data).definitions


def test_every_truncation_fails_cleanly() -> None:
    # Exhaustive: each proper prefix must be reported as malformed.
    for data in binaries():
        for end in range(len(data)):
            start = time.perf_counter()
            try:
                decode_component(data[:end])
            except DecodeError as exc:
                assert exc.offset <= end
            else:
                # A prefix ending exactly at a section boundary is well formed.
                assert end >= 8
            assert time.perf_counter() - start < CALL_BUDGET


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(binaries())))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif len(data) > 1:
            del data[at : at + draw(st.integers(1, 4))]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutations_fail_cleanly(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.sampled_from(range(3)), st.integers(0, 4096), st.binary(max_size=16))
def test_spliced_garbage_fails_cleanly(which: int, at: int, garbage: bytes) -> None:
    data = binaries()[which]
    at %= len(data)
    check(data[:at] + garbage + data[at:])


@FUZZ
@given(st.binary(max_size=64))
def test_random_bodies_after_a_preamble(body: bytes) -> None:
    check(b"\x00asm\x0d\x00\x01\x00" + body)
