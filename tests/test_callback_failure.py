"""A host callback that fails before it can report its failure traps the wasm that called it.

When wasm calls the host with the Python stack all but exhausted, the
callback's own exception handler fails too, and an exception escaping a ctypes
callback is printed and dropped while the callback returns garbage, which
wasmtime takes as a trap to free (a crash) or as "no trap" (the wasm goes on
with unset results). These tests put the Python stack within a level or two of
the recursion limit, deterministically, by recursing to the limit and calling
from a chosen number of frames above it, and sweep that number across the
levels at which a call fails at different points.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

import trio_wasi
from trio_wasi import Trap
from trio_wasi._engine import Deadline, Engine, Store, wat_to_wasm

# How far above the recursion limit the sweeps go: wide enough for every
# level at which an engine call fails to lie inside (the component call path
# is a few dozen frames deep).
ENGINE_LEVELS = 16
COMPONENT_LEVELS = 160

HOSTED = """
(module
  (import "host" "f" (func $f (param i32) (result i32)))
  (global $returned (mut i32) (i32.const 0))
  ;; Counts the host calls that came back without a trap: a failed host call
  ;; must never let the wasm after it run.
  (func (export "call_f") (param i32) (result i32)
    (local $r i32)
    (local.set $r (call $f (local.get 0)))
    (global.set $returned (i32.add (global.get $returned) (i32.const 1)))
    (local.get $r))
  (func (export "returned") (result i32) (global.get $returned))
  (func (export "spin") (loop $l (br $l)))
)
"""

COMPONENT = """
(component
  (import "f" (func $f (param "x" u32) (result u32)))
  (core func $lowered (canon lower (func $f)))
  (core module $m
    (import "" "f" (func $f (param i32) (result i32)))
    (func (export "run") (param i32) (result i32) (call $f (local.get 0))))
  (core instance $i (instantiate $m (with "" (instance (export "f" (func $lowered))))))
  (func (export "run") (param "x" u32) (result u32) (canon lift (core func $i "run")))
)
"""

_DONE = -2


def with_headroom(levels: int, op: Callable[[], Any]) -> tuple[bool, Any]:
    """Run ``op`` in a frame from which calls nest only ``levels`` deep.

    Recurses until the recursion limit stops it, then calls ``op`` from the
    frame ``levels`` above the deepest one. Returns ``(True, result)`` or
    ``(False, exception)``. Frames near the limit call nothing but ``dive``
    and ``op`` (arithmetic and stores into ``box`` are not calls), so the
    harness itself never fails there.
    """
    box: list[Any] = [None, None]

    def dive() -> int:
        try:
            below = dive()
        except RecursionError:
            below = -1
        if below == _DONE:
            return _DONE
        mine = below + 1
        if mine == levels:
            try:
                box[1] = op()
                box[0] = True
            except BaseException as exc:
                box[1] = exc
                box[0] = False
            return _DONE
        return mine

    dive()
    assert box[0] is not None, f"no frame has {levels} levels of headroom"
    return box[0], box[1]


def caused_by_recursion(exc: BaseException) -> bool:
    # ctypes reports a failed argument conversion as ArgumentError naming the
    # RecursionError: the call was refused before any wasm ran.
    return isinstance(exc, RecursionError) or "RecursionError" in str(exc)


def is_lost_failure(exc: BaseException) -> bool:
    """The Trap of a host callback that had no stack to report its exception."""
    return (
        isinstance(exc, Trap)
        and "host function failed before it could report it: RecursionError" in str(exc)
        and isinstance(exc.__cause__, RecursionError)
    )


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    # A C-level hook: it needs no Python frame, so it records even at the limit.
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    return seen


def _hosted(store: Store, fn: Callable[..., Any]) -> dict[str, Any]:
    module = store.engine.compile(wat_to_wasm(HOSTED))
    instance = store.instantiate(module, [store.host_func(["i32"], ["i32"], fn)])
    exports = dict(instance.exports(store.wasmtime_store))
    return {
        "call_f": store.raw_func(exports["call_f"], ["i32"], ["i32"]),
        "returned": store.raw_func(exports["returned"], [], ["i32"]),
        "spin": store.raw_func(exports["spin"], [], []),
    }


def test_a_callback_that_cannot_report_its_failure_traps_the_call(
    unraisable: list[Any], capfd: pytest.CaptureFixture[str]
) -> None:
    ran: list[int] = []

    def f(x: int) -> int:
        ran.append(x)
        return x + 1

    kinds: list[str] = []
    with Store(Engine(use_cache=False)) as store:
        funcs = _hosted(store, f)
        call_f, returned = funcs["call_f"], funcs["returned"]
        assert call_f(1) == 2
        # Three sweeps: more such failures in a row than the store keeps
        # spare traps, so each must have been replaced in time.
        for _ in range(3):
            for levels in range(ENGINE_LEVELS):
                before, ran_before = returned(), len(ran)
                ok, value = with_headroom(levels, lambda: call_f(41))
                went_on = returned() - before
                if ok:
                    assert value == 42 and went_on == 1
                    kinds.append("ok")
                elif isinstance(value, Trap):
                    assert is_lost_failure(value), value
                    assert went_on == 0 and len(ran) == ran_before
                    kinds.append("trap")
                else:
                    assert caused_by_recursion(value), value
                    assert went_on == 0 and len(ran) == ran_before
                    kinds.append("refused")
            assert kinds[-1] == "ok"
        # The reproduction reached the failure this is about, each sweep.
        assert kinds.count("trap") >= 3, kinds
        # Nothing is left over: the store calls on as before.
        assert call_f(5) == 6
    assert unraisable == []
    assert "Exception ignored" not in capfd.readouterr().err


def test_an_epoch_callback_that_cannot_run_ends_the_call_with_a_trap(
    unraisable: list[Any], capfd: pytest.CaptureFixture[str]
) -> None:
    engine = Engine(use_cache=False)
    deadline = Deadline(engine.ticker)
    kinds: list[str] = []
    with Store(engine, deadline=deadline) as store:
        spin = _hosted(store, lambda x: x)["spin"]

        def spin_until_deadline(levels: int | None) -> tuple[bool, Any]:
            at = time.monotonic() + 0.05
            deadline.arm(at)
            try:
                if levels is None:
                    with pytest.raises(Trap, match="deadline exceeded"):
                        spin()
                    return False, None
                return with_headroom(levels, spin)
            finally:
                deadline.disarm(at)

        # The first call compiles the call code, some frames deeper.
        spin_until_deadline(None)
        for levels in range(ENGINE_LEVELS):
            ok, value = spin_until_deadline(levels)
            assert not ok  # the loop never ends by itself
            if isinstance(value, Trap) and "deadline exceeded" in str(value):
                kinds.append("deadline")
            elif isinstance(value, Trap):
                assert is_lost_failure(value), value
                kinds.append("trap")
            else:
                assert caused_by_recursion(value), value
                kinds.append("refused")
    assert "trap" in kinds and kinds[-1] == "deadline", kinds
    assert unraisable == []
    assert "Exception ignored" not in capfd.readouterr().err


def test_a_component_call_whose_host_callback_cannot_report_traps_and_poisons(
    unraisable: list[Any], capfd: pytest.CaptureFixture[str]
) -> None:
    engine = Engine(use_cache=False)
    component = trio_wasi.Component.from_wat(COMPONENT, engine=engine)
    linker = trio_wasi.Linker(engine)
    linker.define_function(None, "f", lambda x: x + 1)
    found = None
    # A fresh instance per level: at other levels a RecursionError may stop
    # the runtime's own Python anywhere, which this test is not about.
    for levels in range(COMPONENT_LEVELS):
        inst = linker.instantiate_sync(component)
        try:
            ok, value = with_headroom(levels, functools.partial(inst.call_sync, "run", 41))
            if ok:
                assert value == 42
            elif is_lost_failure(value):
                found = levels
                assert inst.poisoned is not None and "RecursionError" in inst.poisoned
                with pytest.raises(Trap, match="poisoned by an earlier trap"):
                    inst.call_sync("run", 1)
                break
        finally:
            inst.close()
    assert found is not None
    assert unraisable == []
    assert "Exception ignored" not in capfd.readouterr().err


SPIN_AT_START = "(module (func $spin (loop $l (br $l))) (start $spin))"


class _InterruptedOnce(Deadline):
    """A deadline whose first check is interrupted, as by a KeyboardInterrupt.

    The epoch callback has no handler of its own to fall back on: whatever it
    raises takes the last resort (a spare error and the exception recorded),
    however much stack is left.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.interrupted = False

    def passed(self) -> bool:
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        return super().passed()


def test_an_epoch_callback_failure_in_a_start_function_is_reported_by_the_instantiation(
    unraisable: list[Any],
) -> None:
    engine = Engine(use_cache=False)
    deadline = _InterruptedOnce(engine.ticker)
    with Store(engine, deadline=deadline) as store:

        def f(x: int) -> int:
            raise ValueError("from the host function")

        call_f = _hosted(store, f)["call_f"]
        module = engine.compile(wat_to_wasm(SPIN_AT_START))
        # The spin ends at the first tick (the interrupted check); the
        # deadline itself is only there to make the ticker tick.
        at = time.monotonic() + 60
        deadline.arm(at)
        try:
            with pytest.raises(Trap) as info:
                store.instantiate(module, [])
        finally:
            deadline.disarm(at)
        assert deadline.interrupted
        assert "host function failed before it could report it: KeyboardInterrupt" in str(
            info.value
        )
        assert isinstance(info.value.__cause__, KeyboardInterrupt)
        # Nothing recorded is left behind for a later, unrelated failure.
        with pytest.raises(ValueError, match="from the host function"):
            call_f(1)
    assert unraisable == []
