"""Tests of trio_wasi._engine: raw calls, host functions, the tunnel, memory, cache."""

from __future__ import annotations

import hashlib
import math
import threading
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from trio_wasi._engine import (
    PAGE_SIZE,
    Engine,
    LinearMemory,
    RawFunc,
    Store,
    StoreClosedError,
    default_cache_dir,
)
from trio_wasi._engine._bench import run_all
from trio_wasi._errors import LinkError, Trap, ValidationError

ARITH = """
(module
  (func (export "add32") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "add64") (param i64 i64) (result i64) (i64.add (local.get 0) (local.get 1)))
  (func (export "mulf32") (param f32 f32) (result f32) (f32.mul (local.get 0) (local.get 1)))
  (func (export "divf64") (param f64 f64) (result f64) (f64.div (local.get 0) (local.get 1)))
  (func (export "minus1") (result i32 i64) (i32.const -1) (i64.const -1))
  (func (export "swap") (param i32 i64 f32 f64) (result f64 f32 i64 i32)
    (local.get 3) (local.get 2) (local.get 1) (local.get 0))
  (func (export "nothing"))
  (func (export "unreachable") (unreachable))
  (func (export "div0") (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
)
"""

HOSTED = """
(module
  (import "host" "f" (func $f (param i32) (result i32)))
  (import "host" "g" (func $g (param i32)))
  (func (export "call_f") (param i32) (result i32) (call $f (local.get 0)))
  (func (export "call_g") (param i32) (call $g (local.get 0)))
  (func (export "twice_f") (param i32) (result i32)
    (i32.add (call $f (local.get 0)) (call $f (local.get 0))))
)
"""

MEMORY = """
(module
  (memory (export "mem") 1 10)
  (func (export "store8") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
)
"""


@pytest.fixture
def engine() -> Engine:
    return Engine(use_cache=False)


@pytest.fixture
def store(engine: Engine) -> Any:
    with Store(engine) as store:
        yield store


def instantiate(store: Store, wat: str, imports: list[Any] | None = None) -> dict[str, Any]:
    module = store.engine.compile(bytes(wasmtime.wat2wasm(wat)))
    instance = store.instantiate(module, imports or [])
    return dict(instance.exports(store.wasmtime_store))


def hosted(store: Store, f: Any, g: Any = None) -> dict[str, Any]:
    imports = [
        store.host_func(["i32"], ["i32"], f),
        store.host_func(["i32"], [], g or (lambda x: None)),
    ]
    return instantiate(store, HOSTED, imports)


# -- raw calls ---------------------------------------------------------------------


def test_raw_calls_with_every_core_type(store: Store) -> None:
    ex = instantiate(store, ARITH)
    add32 = store.raw_func(ex["add32"], ["i32", "i32"], ["i32"])
    add64 = store.raw_func(ex["add64"], ["i64", "i64"], ["i64"])
    mulf32 = store.raw_func(ex["mulf32"], ["f32", "f32"], ["f32"])
    divf64 = store.raw_func(ex["divf64"], ["f64", "f64"], ["f64"])
    assert isinstance(add32, RawFunc)
    assert add32(2, 40) == 42
    assert add64(2**40, 2**41) == 3 * 2**40
    assert mulf32(1.5, 2.0) == 3.0
    assert mulf32(0.1, 1.0) == pytest.approx(0.1, rel=1e-7)
    assert mulf32(0.1, 1.0) != 0.1  # rounded to single precision
    assert divf64(1.0, 3.0) == 1.0 / 3.0
    assert math.isinf(divf64(1.0, 0.0))
    assert math.isnan(divf64(0.0, 0.0))


def test_multi_value_and_no_value(store: Store) -> None:
    ex = instantiate(store, ARITH)
    swap = store.raw_func(ex["swap"], ["i32", "i64", "f32", "f64"], ["f64", "f32", "i64", "i32"])
    assert swap(7, 8, 0.5, 0.25) == (0.25, 0.5, 8, 7)
    assert swap.call_args([7, 8, 0.5, 0.25]) == [0.25, 0.5, 8, 7]
    nothing = store.raw_func(ex["nothing"], [], [])
    assert nothing() is None
    assert nothing.call_args([]) == []
    add32 = store.raw_func(ex["add32"], ["i32", "i32"], ["i32"])
    assert add32.call_args([1, 2]) == [3]
    with pytest.raises(TypeError):
        add32(1)
    with pytest.raises(ValueError):
        add32.call_args([1])


def test_integers_are_unsigned_and_arguments_are_masked(store: Store) -> None:
    ex = instantiate(store, ARITH)
    minus1 = store.raw_func(ex["minus1"], [], ["i32", "i64"])
    assert minus1() == (2**32 - 1, 2**64 - 1)
    add32 = store.raw_func(ex["add32"], ["i32", "i32"], ["i32"])
    add64 = store.raw_func(ex["add64"], ["i64", "i64"], ["i64"])
    assert add32(-1, 0) == 2**32 - 1
    assert add32(2**32 - 1, 1) == 0
    assert add32(2**32 + 5, 2**40) == 5
    assert add64(-2, 1) == 2**64 - 1
    assert add64(2**64 + 3, 0) == 3


def test_signature_is_checked_against_the_function(store: Store) -> None:
    ex = instantiate(store, ARITH)
    with pytest.raises(TypeError, match="i32"):
        store.raw_func(ex["add32"], ["i64", "i64"], ["i64"])
    with pytest.raises(ValueError, match="not supported"):
        store.raw_func(ex["add32"], ["externref"], [])
    with pytest.raises(ValueError, match="unknown"):
        store.host_func(["u32"], [], lambda x: None)


def test_traps_raise_trap_with_wasmtime_message(store: Store) -> None:
    ex = instantiate(store, ARITH)
    unreachable = store.raw_func(ex["unreachable"], [], [])
    with pytest.raises(Trap, match="wasm trap: wasm `unreachable` instruction executed") as info:
        unreachable()
    assert any("backtrace" in note for note in info.value.__notes__)
    div0 = store.raw_func(ex["div0"], ["i32"], ["i32"])
    with pytest.raises(Trap, match="integer divide by zero"):
        div0(0)
    # The store stays usable after a trap.
    assert div0(1) == 1


# -- host functions and the tunnel -----------------------------------------------------


def test_host_function_receives_unsigned_values(store: Store) -> None:
    seen: list[int] = []

    def f(x: int) -> int:
        seen.append(x)
        return x - 1  # may go negative: the result slot masks it

    ex = hosted(store, f)
    call_f = store.raw_func(ex["call_f"], ["i32"], ["i32"])
    assert call_f(-5) == 2**32 - 6
    assert call_f(0) == 2**32 - 1
    assert seen == [2**32 - 5, 0]


def test_host_functions_with_several_and_no_results(store: Store) -> None:
    wat = """
    (module
      (import "h" "pair" (func $pair (param f64) (result i64 f32)))
      (import "h" "none" (func $none))
      (func (export "run") (param f64) (result i64 f32) (call $none) (call $pair (local.get 0)))
    )
    """
    calls: list[str] = []
    pair = store.host_func(["f64"], ["i64", "f32"], lambda x: (int(x) * 2, x / 2))
    none = store.host_func([], [], lambda: calls.append("none"))
    ex = instantiate(store, wat, [pair, none])
    run = store.raw_func(ex["run"], ["f64"], ["i64", "f32"])
    assert run(3.0) == (6, 1.5)
    assert calls == ["none"]


def test_host_function_with_wrong_result_shape(store: Store) -> None:
    ex = hosted(store, lambda x: "nope", lambda x: 5)
    call_f = store.raw_func(ex["call_f"], ["i32"], ["i32"])
    call_g = store.raw_func(ex["call_g"], ["i32"], [])
    with pytest.raises(TypeError):
        call_f(1)
    with pytest.raises(TypeError, match="must return None"):
        call_g(1)


def test_exception_from_host_comes_out_of_the_outer_call(store: Store) -> None:
    error = ValueError("boom")

    def f(x: int) -> int:
        raise error

    ex = hosted(store, f)
    twice_f = store.raw_func(ex["twice_f"], ["i32"], ["i32"])
    with pytest.raises(ValueError) as info:
        twice_f(1)
    assert info.value is error
    # The tunnel was emptied: a plain trap afterwards is a plain Trap.
    trap_ex = instantiate(store, ARITH)
    with pytest.raises(Trap):
        store.raw_func(trap_ex["unreachable"], [], [])()


def test_trap_raised_by_host_reaches_the_outermost_call(store: Store) -> None:
    trap = Trap("guest misbehaved")

    def f(x: int) -> int:
        raise trap

    ex = hosted(store, f)
    with pytest.raises(Trap) as info:
        store.raw_func(ex["call_f"], ["i32"], ["i32"])(0)
    assert info.value is trap


def test_nested_host_wasm_host_calls(store: Store) -> None:
    # f(n) calls back into wasm for n - 1 until 0: a recursion that crosses the
    # host/wasm boundary 2 * depth times.
    raw: dict[str, RawFunc] = {}

    def f(n: int) -> int:
        if n == 0:
            return 0
        return n + int(raw["call_f"](n - 1))

    ex = hosted(store, f)
    raw["call_f"] = store.raw_func(ex["call_f"], ["i32"], ["i32"])
    assert raw["call_f"](50) == sum(range(51))


def test_nested_exception_is_raised_in_the_deepest_call_first(store: Store) -> None:
    raw: dict[str, RawFunc] = {}
    raised_at: list[int] = []

    def f(n: int) -> int:
        if n == 0:
            raised_at.append(n)
            raise KeyError("deep")
        return int(raw["call_f"](n - 1))

    ex = hosted(store, f)
    raw["call_f"] = store.raw_func(ex["call_f"], ["i32"], ["i32"])
    with pytest.raises(KeyError, match="deep"):
        raw["call_f"](5)
    assert raised_at == [0]


def test_exception_caught_by_an_intermediate_host_function(store: Store) -> None:
    raw: dict[str, RawFunc] = {}
    caught: list[BaseException] = []

    def f(n: int) -> int:
        if n == 0:
            raise RuntimeError("inner")
        try:
            return int(raw["call_f"](0))
        except RuntimeError as exc:
            caught.append(exc)
            return 99

    ex = hosted(store, f)
    raw["call_f"] = store.raw_func(ex["call_f"], ["i32"], ["i32"])
    assert raw["call_f"](1) == 99
    assert [str(exc) for exc in caught] == ["inner"]
    # Nothing stays parked in the tunnel.
    assert raw["call_f"](1) == 99


def test_exception_seen_by_another_caller_is_not_reraised_later(store: Store) -> None:
    def f(x: int) -> int:
        raise ValueError("stale")

    ex = hosted(store, f)
    # wasmtime-py's generic call observes the trap; the parked exception must
    # not resurface on the next, unrelated trap.
    with pytest.raises((wasmtime.Trap, wasmtime.WasmtimeError), match="ValueError: stale"):
        ex["call_f"](store.wasmtime_store, 1)
    unrelated = instantiate(store, ARITH)
    with pytest.raises(Trap, match="unreachable"):
        store.raw_func(unrelated["unreachable"], [], [])()


def test_base_exceptions_also_travel_through_the_tunnel(store: Store) -> None:
    class Interrupt(BaseException):
        pass

    def f(x: int) -> int:
        raise Interrupt

    ex = hosted(store, f)
    with pytest.raises(Interrupt):
        store.raw_func(ex["call_f"], ["i32"], ["i32"])(0)


def test_tunnels_are_per_store(engine: Engine) -> None:
    with Store(engine) as one, Store(engine) as two:
        ex_two = instantiate(two, ARITH)
        unreachable_two = two.raw_func(ex_two["unreachable"], [], [])

        def f(x: int) -> int:
            # A trap in another store while this store's call is live must not
            # pick up an exception parked for this store, and vice versa.
            with pytest.raises(Trap):
                unreachable_two()
            raise ValueError("mine")

        ex_one = hosted(one, f)
        with pytest.raises(ValueError, match="mine"):
            one.raw_func(ex_one["call_f"], ["i32"], ["i32"])(0)


def test_calls_from_another_thread(store: Store) -> None:
    # Store threads (ARCHITECTURE.md section 4) call wasm, and receive host
    # callbacks, on a thread other than the one that built the store.
    seen: list[str] = []

    def f(x: int) -> int:
        seen.append(threading.current_thread().name)
        return x * 2

    ex = hosted(store, f)
    call_f = store.raw_func(ex["call_f"], ["i32"], ["i32"])
    results: list[int] = []
    worker = threading.Thread(target=lambda: results.append(call_f(21)), name="store-thread")
    worker.start()
    worker.join()
    assert results == [42]
    assert seen == ["store-thread"]


# -- instantiation ---------------------------------------------------------------


def test_link_errors_and_start_traps(store: Store) -> None:
    module = store.engine.compile(bytes(wasmtime.wat2wasm(HOSTED)))
    with pytest.raises(LinkError):
        store.instantiate(module, [])
    wrong = store.host_func([], [], lambda: None)
    with pytest.raises(LinkError):
        store.instantiate(module, [wrong, wrong])
    start_trap = store.engine.compile(
        bytes(wasmtime.wat2wasm("(module (func $s unreachable) (start $s))"))
    )
    with pytest.raises(Trap, match="unreachable"):
        store.instantiate(start_trap, [])


def test_start_function_host_exception(store: Store) -> None:
    start = """
    (module (import "h" "f" (func $f)) (start $f))
    """

    def f() -> None:
        raise LookupError("from start")

    module = store.engine.compile(bytes(wasmtime.wat2wasm(start)))
    with pytest.raises(LookupError, match="from start"):
        store.instantiate(module, [store.host_func([], [], f)])


# -- memory ------------------------------------------------------------------------


def test_memory_view_sees_wasm_writes_and_growth(store: Store) -> None:
    ex = instantiate(store, MEMORY)
    memory = store.memory(ex["mem"])
    assert isinstance(memory, LinearMemory)
    store8 = store.raw_func(ex["store8"], ["i32", "i32"], [])
    load8 = store.raw_func(ex["load8"], ["i32"], ["i32"])
    grow = store.raw_func(ex["grow"], ["i32"], ["i32"])

    base = memory.data_address
    view = memory.view()
    assert view.format == "B"
    assert not view.readonly
    assert len(view) == PAGE_SIZE
    assert memory.view() is view  # cached while the size is unchanged
    store8(100, 0xAB)
    assert view[100] == 0xAB
    view[200:203] = b"xyz"
    assert load8(201) == ord("y")

    assert grow(2) == 1
    grown = memory.view()
    assert len(grown) == 3 * PAGE_SIZE
    assert memory.size() == 3
    store8(2 * PAGE_SIZE + 5, 7)
    assert grown[2 * PAGE_SIZE + 5] == 7
    assert grown[100] == 0xAB

    assert memory.grow(1) == 3
    assert len(memory.view()) == 4 * PAGE_SIZE == memory.data_size()
    assert memory.data_address == base != 0  # memories never move in this engine
    assert grow(100) == 2**32 - 1  # beyond the maximum: memory.grow returns -1
    with pytest.raises(Exception, match="grow"):
        memory.grow(100)


# -- closing ------------------------------------------------------------------------


def test_closed_store_refuses_use(engine: Engine) -> None:
    store = Store(engine)
    ex = instantiate(store, MEMORY)
    load8 = store.raw_func(ex["load8"], ["i32"], ["i32"])
    memory = store.memory(ex["mem"])
    view = memory.view()
    assert load8(0) == 0
    store.close()
    store.close()  # idempotent
    assert store.closed
    with pytest.raises(StoreClosedError):
        load8(0)
    with pytest.raises(StoreClosedError):
        load8.call_args([0])
    with pytest.raises(StoreClosedError):
        memory.view()
    with pytest.raises(StoreClosedError):
        store.host_func([], [], lambda: None)
    with pytest.raises(ValueError):
        view[0]  # released with the store


# -- compile cache ------------------------------------------------------------------


def _add_module() -> bytes:
    return bytes(wasmtime.wat2wasm(ARITH))


def _check_add(engine: Engine, module: wasmtime.Module) -> None:
    ex: dict[str, Any]
    with Store(engine) as store:
        ex = dict(store.instantiate(module, []).exports(store.wasmtime_store))
        assert store.raw_func(ex["add32"], ["i32", "i32"], ["i32"])(20, 22) == 42


def test_cache_miss_writes_entry_and_hit_reads_it(tmp_path: Path, monkeypatch: Any) -> None:
    data = _add_module()
    first = Engine(tmp_path)
    path = first.cache_path(data)
    assert path is not None and not path.exists()
    module = first.compile(data)
    assert path.is_file()
    assert first.compile(data) is module  # in-process memo
    _check_add(first, module)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))

    second = Engine(tmp_path)

    def no_compiling(data: bytes) -> wasmtime.Module:
        raise AssertionError("a cache hit must not compile")

    monkeypatch.setattr(second, "_compile_bytes", no_compiling)
    _check_add(second, second.compile(data))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_cache_entry_is_recompiled_and_rewritten(tmp_path: Path, damage: str) -> None:
    data = _add_module()
    Engine(tmp_path).compile(data)
    engine = Engine(tmp_path)
    path = engine.cache_path(data)
    assert path is not None
    good = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x7fELF not really" * 10)
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 3])
    else:
        path.write_bytes(b"")
    module = engine.compile(data)
    _check_add(engine, module)
    rewritten = path.read_bytes()
    assert len(rewritten) == len(good)
    fresh = Engine(tmp_path)
    _check_add(fresh, fresh.compile(data))


def test_unwritable_cache_dir_falls_back_to_no_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    engine = Engine(blocker / "cache")
    module = engine.compile(_add_module())
    _check_add(engine, module)
    assert engine.cache_dir is None


def test_cache_disabled(tmp_path: Path) -> None:
    engine = Engine(tmp_path, use_cache=False)
    assert engine.cache_dir is None and engine.cache_path(_add_module()) is None
    _check_add(engine, engine.compile(_add_module()))
    assert list(tmp_path.iterdir()) == []


def test_compile_many_keeps_order(tmp_path: Path) -> None:
    engine = Engine(tmp_path)
    modules = [
        bytes(wasmtime.wat2wasm(f'(module (func (export "k") (result i32) (i32.const {i})))'))
        for i in range(6)
    ]
    engine.compile(modules[2])  # one hit among misses
    compiled = engine.compile_many(modules)
    assert len(compiled) == 6
    ex: dict[str, Any]
    with Store(engine) as store:
        for i, module in enumerate(compiled):
            ex = dict(store.instantiate(module, []).exports(store.wasmtime_store))
            assert store.raw_func(ex["k"], [], ["i32"])() == i
    assert len(list(tmp_path.glob("*.cwasm"))) == 6
    assert Engine(tmp_path).compile_many(modules[:2])[0].exports[0].name == "k"


def test_compile_many_finds_a_known_source_without_hashing_its_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules = [
        bytes(wasmtime.wat2wasm(f'(module (func (export "k{i}") (result i32) (i32.const {i})))'))
        for i in range(3)
    ]
    source = hashlib.sha256(b"".join(modules)).digest()
    first = Engine(tmp_path).compile_many(modules, source=source)
    assert [m.exports[0].name for m in first] == ["k0", "k1", "k2"]

    def no_hashing(self: Engine, data: bytes) -> str:
        raise AssertionError("a module was hashed although its source is known")

    with monkeypatch.context() as patch:
        patch.setattr(Engine, "_key", no_hashing)
        again = Engine(tmp_path).compile_many(modules, source=source)
    assert [m.exports[0].name for m in again] == ["k0", "k1", "k2"]
    # A record that does not fit (here: fewer modules) is not trusted.
    fewer = Engine(tmp_path).compile_many(modules[:2], source=source)
    assert [m.exports[0].name for m in fewer] == ["k0", "k1"]


def test_a_preloaded_source_is_loaded_once_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules = [
        bytes(wasmtime.wat2wasm(f'(module (func (export "p{i}") (result i32) (i32.const {i})))'))
        for i in range(3)
    ]
    source = hashlib.sha256(b"".join(modules)).digest()
    Engine(tmp_path).compile_many(modules, source=source)
    engine = Engine(tmp_path)
    loads: list[str] = []
    real_load = Engine._load

    def counting_load(self: Engine, key: str) -> Any:
        loads.append(key)
        return real_load(self, key)

    monkeypatch.setattr(Engine, "_load", counting_load)
    engine._preload_source(source)
    engine._wait_for_preload()
    assert len(loads) == 3
    again = engine.compile_many(modules, source=source)
    assert [m.exports[0].name for m in again] == ["p0", "p1", "p2"]
    assert len(loads) == 3  # compile_many found them in the memo
    # An unknown source, or no disk cache, preloads nothing and breaks nothing.
    engine._preload_source(b"\0" * 32)
    Engine(use_cache=False)._preload_source(source)
    assert [m.exports[0].name for m in engine.compile_many(modules)] == ["p0", "p1", "p2"]
    assert len(loads) == 3


def test_names_of_a_compiled_module_come_from_the_cache_the_second_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trio_wasi._engine import _compile, module_names

    data = bytes(
        wasmtime.wat2wasm(
            '(module (import "env" "f" (func)) (import "env" "g" (func))'
            ' (func (export "x")) (memory (export "mem") 1))'
        )
    )
    first = Engine(tmp_path)
    expected = (("env", "f"), ("env", "g")), frozenset({"x", "mem"})
    assert first.names_of(first.compile(data)) == expected == module_names(first.compile(data))

    def from_wasmtime(module: Any) -> Any:
        raise AssertionError("names were read from wasmtime despite the cache")

    again = Engine(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(_compile, "module_names", from_wasmtime)
        assert again.names_of(again.compile(data)) == expected
    # A damaged entry is read from wasmtime again (and rewritten).
    for entry in tmp_path.glob("*.names"):
        entry.write_bytes(b"not marshal data")
    third = Engine(tmp_path)
    assert third.names_of(third.compile(data)) == expected
    assert all(entry.read_bytes() != b"not marshal data" for entry in tmp_path.glob("*.names"))


def test_invalid_module_is_a_validation_error(engine: Engine) -> None:
    with pytest.raises(ValidationError, match="invalid core module"):
        engine.compile(b"\0asm\x01\0\0\0\x01\x01")
    with pytest.raises(ValidationError, match="type mismatch"):
        engine.compile(bytes(wasmtime.wat2wasm("(module (func (result i32) (i64.const 1)))")))
    with pytest.raises(ValidationError):
        engine.compile(b"not wasm at all")


def test_default_cache_dir(monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.setenv("TRIO_WASI_CACHE_DIR", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("TRIO_WASI_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "trio_wasi"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "trio_wasi"


# -- benchmark helpers -------------------------------------------------------------


def test_benchmark_helpers_report_positive_timings() -> None:
    results = run_all(iterations=200)
    assert set(results) == {"generic_call", "raw_call", "host_callback", "memory_copy_64k"}
    for entry in results.values():
        assert entry["us_per_call"] > 0
