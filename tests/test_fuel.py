"""Fuel: wasmtime's deterministic bound on the work a guest does (``Limits.fuel``, ``-W fuel``)."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest
import trio

import trio_wasi
from trio_wasi import Engine, Error, Limits, Trap, parse_w_options

WORK_WAT = """
(component
  (core module $m
    (func (export "spin") (loop $l (br $l)))
    ;; n rounds of a small loop body; returns n.
    (func (export "work") (param $n i32) (result i32)
      (local $i i32)
      (block $done
        (loop $more
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $more)))
      (local.get $i)))
  (core instance $i (instantiate $m))
  (func (export "spin") (canon lift (core func $i "spin")))
  (func (export "work") (param "n" u32) (result u32) (canon lift (core func $i "work")))
)
"""

HANG_GUARD = 60
FUEL_MESSAGE = r"fuel exhausted: .*\(limit fuel\)"


@functools.cache
def fuel_engine() -> Engine:
    return Engine(use_cache=False, consume_fuel=True)


@functools.cache
def work_component() -> trio_wasi.Component:
    return trio_wasi.Component.from_wat(WORK_WAT, engine=fuel_engine())


@functools.cache
def plain_work_component() -> trio_wasi.Component:
    return trio_wasi.Component.from_wat(WORK_WAT, engine=Engine(use_cache=False))


async def _calls_until_out_of_fuel(fuel: int, threaded: bool) -> int:
    """How many ``work(100)`` calls one instance with ``fuel`` completes before it traps."""
    linker = trio_wasi.Linker()
    done = 0
    async with linker.instantiate(
        work_component(), limits=Limits(fuel=fuel), run_on_thread=threaded
    ) as inst:
        assert inst.threaded is threaded
        with pytest.raises(Trap, match=FUEL_MESSAGE):
            while True:
                assert await inst.call("work", 100) == 100
                done += 1
        assert inst.poisoned is not None and "limit fuel" in inst.poisoned
        with pytest.raises(Trap, match="poisoned"):
            await inst.call("work", 1)
    return done


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "store-thread"])
async def test_an_infinite_loop_runs_out_of_fuel_and_others_go_on(threaded: bool) -> None:
    linker = trio_wasi.Linker()
    with trio.fail_after(HANG_GUARD):
        async with linker.instantiate(work_component()) as other:
            async with linker.instantiate(
                work_component(), limits=Limits(fuel=100_000), run_on_thread=threaded
            ) as looping:
                with pytest.raises(Trap, match=FUEL_MESSAGE):
                    await looping.call("spin")
            # An instance with no fuel bound on the same metering engine runs on.
            assert await other.call("work", 1_000_000) == 1_000_000


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "store-thread"])
async def test_fuel_is_deterministic(threaded: bool) -> None:
    # The same fuel buys the same work on every run, inline or on a store
    # thread, whatever the machine's load: fuel is counted, not timed.
    with trio.fail_after(HANG_GUARD):
        first = await _calls_until_out_of_fuel(50_000, threaded)
        second = await _calls_until_out_of_fuel(50_000, threaded)
        other_side = await _calls_until_out_of_fuel(50_000, not threaded)
        more = await _calls_until_out_of_fuel(100_000, threaded)
    assert first == second == other_side
    assert first > 0
    # Twice the fuel, about twice the calls (the store's set-up costs a little).
    assert 2 * first <= more <= 2 * first + 1


def test_fuel_bounds_synchronous_calls() -> None:
    linker = trio_wasi.Linker()
    inst = linker.instantiate_sync(work_component(), limits=Limits(fuel=10_000))
    try:
        assert inst.call_sync("work", 10) == 10
        with pytest.raises(Trap, match=FUEL_MESSAGE):
            inst.call_sync("spin")
    finally:
        inst.close()


def test_fuel_needs_a_metering_engine() -> None:
    assert not plain_work_component().engine.consume_fuel
    with pytest.raises(Error, match=r"consume_fuel=True"):
        trio_wasi.Linker().instantiate_sync(plain_work_component(), limits=Limits(fuel=1000))


def test_metering_engines_keep_their_own_compile_cache_entries(tmp_path: Path) -> None:
    # Code compiled with fuel metering is not code compiled without it.
    metered = Engine(cache_dir=tmp_path, consume_fuel=True)
    plain = Engine(cache_dir=tmp_path)
    assert metered.cache_path(b"module") != plain.cache_path(b"module")
    assert plain.cache_path(b"module") == Engine(cache_dir=tmp_path).cache_path(b"module")


def test_the_fuel_option_parses() -> None:
    assert parse_w_options(["fuel=1_000_000"]).fuel == 1_000_000
    assert parse_w_options(["fuel=none"], base=Limits(fuel=5)).fuel is None
    with pytest.raises(ValueError, match="-W fuel"):
        parse_w_options(["fuel=lots"])
    for preset in (Limits.embedding(), Limits.run(), Limits.serve()):
        assert preset.fuel is None


def test_run_takes_w_fuel(tmp_path: Path) -> None:
    wat = tmp_path / "work.wat"
    wat.write_text(WORK_WAT, encoding="utf-8")
    root = Path(__file__).resolve().parent.parent

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "trio_wasi", "run", *argv],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
            check=False,
        )

    spun = run("-W", "fuel=100000", "--invoke", "spin", str(wat))
    assert spun.returncode != 0
    assert "fuel exhausted" in spun.stderr and "limit fuel" in spun.stderr
    worked = run("-W", "fuel=100000", "--invoke", "work", str(wat), "10")
    assert (worked.returncode, worked.stdout.strip()) == (0, "10")
