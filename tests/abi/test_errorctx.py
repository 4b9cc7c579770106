"""Error contexts: the built-ins in every string encoding, traps, lifting and lowering."""

from __future__ import annotations

import struct

import pytest

from trio_wasi._abi import (
    ERROR_CONTEXT,
    GUEST_ASYNC_VALUES,
    UTF16_TAG,
    BytesMemory,
    CanonOptions,
    CoreValueIter,
    ErrorContext,
    InstanceState,
    LiftLowerContext,
    error_context_debug_message,
    error_context_drop,
    error_context_new,
    lift_flat,
    load,
    lower_flat,
    store,
)
from trio_wasi._errors import Trap


class Guest:
    def __init__(self, encoding: str = "utf8") -> None:
        self.inst = InstanceState()
        self.memory = BytesMemory()
        self.top = 1024
        self.allocations: list[tuple[int, int]] = []
        self.opts = CanonOptions(
            memory=self.memory,
            string_encoding=encoding,  # type: ignore[arg-type]
            realloc=self.realloc,
        )

    def realloc(self, old: int, old_size: int, align: int, new_size: int) -> int:
        assert old == 0
        self.allocations.append((align, new_size))
        ptr = (self.top + align - 1) & -align
        self.top = ptr + new_size
        return ptr

    def cx(self) -> LiftLowerContext:
        return LiftLowerContext(self.opts, self.inst, hooks=GUEST_ASYNC_VALUES)

    def put(self, ptr: int, data: bytes) -> None:
        self.memory.view()[ptr : ptr + len(data)] = data

    def get(self, ptr: int, n: int) -> bytes:
        return bytes(self.memory.view()[ptr : ptr + n])


@pytest.mark.parametrize(
    ("encoding", "message", "data", "tagged"),
    [
        ("utf8", "oops ✗", "oops ✗".encode(), 8),
        ("utf16", "oops ✗", "oops ✗".encode("utf-16-le"), 6),
        ("latin1+utf16", "oops ÿ", "oops ÿ".encode("latin-1"), 6),
        ("latin1+utf16", "oops ✗", "oops ✗".encode("utf-16-le"), 6 | UTF16_TAG),
    ],
)
def test_new_reads_the_message_in_the_options_encoding(
    encoding: str, message: str, data: bytes, tagged: int
) -> None:
    g = Guest(encoding)
    g.put(64, data)
    i = error_context_new(g.inst, g.opts, 64, tagged)
    errctx = g.inst.table.get(i)
    assert isinstance(errctx, ErrorContext)
    assert errctx.debug_message == message


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf8", ("déjà vu".encode(), 9)),
        ("utf16", ("déjà vu".encode("utf-16-le"), 7)),
        ("latin1+utf16", ("déjà vu".encode("latin-1"), 7)),
    ],
)
def test_debug_message_stores_a_string(encoding: str, expected: tuple[bytes, int]) -> None:
    g = Guest(encoding)
    g.put(64, "déjà vu".encode())
    # Created by a utf8 user of the same memory, read back in ``encoding``.
    i = error_context_new(g.inst, CanonOptions(memory=g.memory), 64, 9)
    error_context_debug_message(g.inst, g.opts, i, 16)
    begin, tagged = struct.unpack_from("<II", g.memory.view(), 16)
    data, units = expected
    assert tagged == units
    assert g.get(begin, len(data)) == data
    assert len(g.allocations) == 1 and g.allocations[0][1] == len(data)


def test_debug_message_traps_out_of_bounds() -> None:
    g = Guest()
    i = error_context_new(g.inst, g.opts, 0, 0)
    with pytest.raises(Trap, match="out-of-bounds"):
        error_context_debug_message(g.inst, g.opts, i, 65536 - 4)


def test_new_traps_on_bad_strings() -> None:
    g = Guest()
    g.put(64, b"\xff\xfe")
    with pytest.raises(Trap):
        error_context_new(g.inst, g.opts, 64, 2)
    with pytest.raises(Trap, match="out of bounds"):
        error_context_new(g.inst, g.opts, 65530, 10)
    assert len(g.inst.table) == 0


def test_drop_and_wrong_handles() -> None:
    g = Guest()
    i = error_context_new(g.inst, g.opts, 0, 0)
    other = g.inst.table.add(object())
    with pytest.raises(Trap, match=f"handle index {other} is not an error context"):
        error_context_debug_message(g.inst, g.opts, other, 16)
    with pytest.raises(Trap, match=f"handle index {other} is not an error context"):
        error_context_drop(g.inst, other)
    error_context_drop(g.inst, i)
    with pytest.raises(Trap, match=f"unknown handle index {i}"):
        error_context_drop(g.inst, i)


def test_builtins_trap_when_the_instance_may_not_leave() -> None:
    g = Guest()
    i = error_context_new(g.inst, g.opts, 0, 0)
    g.inst.may_leave = False
    with pytest.raises(Trap, match="cannot leave component instance"):
        error_context_new(g.inst, g.opts, 0, 0)
    with pytest.raises(Trap, match="cannot leave component instance"):
        error_context_debug_message(g.inst, g.opts, i, 16)
    with pytest.raises(Trap, match="cannot leave component instance"):
        error_context_drop(g.inst, i)


def test_lift_keeps_the_handle_and_lower_adds_one() -> None:
    a, b = Guest(), Guest()
    a.put(64, b"boom")
    i = error_context_new(a.inst, a.opts, 64, 4)
    v = lift_flat(a.cx(), CoreValueIter([i]), ERROR_CONTEXT)
    assert isinstance(v, ErrorContext) and v.debug_message == "boom"
    assert a.inst.table.get(i) is v
    [j] = lower_flat(b.cx(), v, ERROR_CONTEXT)
    assert b.inst.table.get(int(j)) is v
    # Through memory as well.
    store(b.cx(), v, ERROR_CONTEXT, 32)
    k = struct.unpack_from("<I", b.memory.view(), 32)[0]
    assert k != j and b.inst.table.get(k) is v
    assert load(b.cx(), 32, ERROR_CONTEXT) is v


def test_lift_of_another_handle_traps_and_lower_checks_the_value() -> None:
    g = Guest()
    other = g.inst.table.add(object())
    with pytest.raises(Trap, match="is not an error context"):
        lift_flat(g.cx(), CoreValueIter([other]), ERROR_CONTEXT)
    with pytest.raises(TypeError, match="expected an ErrorContext"):
        lower_flat(g.cx(), "boom", ERROR_CONTEXT)
