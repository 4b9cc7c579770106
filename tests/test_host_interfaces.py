"""Host interfaces defined from Python objects and classes, checked against WIT.

The guest below imports ``local:demo/host`` (a resource with a constructor,
a plain and an ``async def`` method, a method returning ``stream<u8>``, a
static function) and exercises it through its exports. The host side is one
class per resource plus a module-like object, registered with one
``define_interface`` call.
"""

from __future__ import annotations

import collections
from typing import Any

import pytest
import trio

import trio_wasi

WIT = """
package local:demo;

interface host {
  resource thing {
    constructor(n: u32);
    frob: func(x: u32) -> u32;
    slow-frob: async func(x: u32) -> u32;
    bytes: func() -> stream<u8>;
    make: static func(n: u32) -> thing;
  }
  count: func() -> u32;
}

world guest {
  import host;
}
"""

_INSTANCE_TYPE = """
  (type $host-t (instance
    (export "thing" (type (sub resource)))
    (type $own (own 0))
    (type $borrow (borrow 0))
    (export "[constructor]thing" (func (param "n" u32) (result $own)))
    (export "[method]thing.frob" (func (param "self" $borrow) (param "x" u32) (result u32)))
    {slow_type}
    (type $s (stream u8))
    (export "[method]thing.bytes" (func (param "self" $borrow) (result $s)))
    (export "[static]thing.make" (func (param "n" u32) (result $own)))
    (export "count" (func (result u32)))
  ))
  (import "local:demo/host" (instance $host (type $host-t)))
  (alias export $host "thing" (type $thing))
"""

_SLOW_TYPE = (
    '(export "[method]thing.slow-frob" '
    '(func async (param "self" $borrow) (param "x" u32) (result u32)))'
)


def guest_wat(*, with_async: bool) -> str:
    """The guest; ``with_async`` adds an async method and a stackful export (store threads)."""
    slow_import = '(import "h" "slow-frob" (func $slow (param i32 i32) (result i32)))'
    slow_core = """
    (func (export "frob-all") (param $n i32)
      (local $t i32) (local $r i32)
      (local.set $t (call $ctor (local.get $n)))
      (local.set $r (i32.add (call $frob (local.get $t) (i32.const 1))
                             (call $slow (local.get $t) (i32.const 2))))
      (call $drop (local.get $t))
      (call $ret (local.get $r)))
    """
    slow_lower = """
  (core func $slow (canon lower (func $host "[method]thing.slow-frob")))
  (core func $ret (canon task.return (result u32)))
    """
    slow_export = """
  (func (export "frob-all") async (param "n" u32) (result u32)
    (canon lift (core func $i "frob-all") async))
    """
    return f"""
(component
  {_INSTANCE_TYPE.format(slow_type=_SLOW_TYPE if with_async else "")}
  (core module $m
    (import "h" "ctor" (func $ctor (param i32) (result i32)))
    (import "h" "frob" (func $frob (param i32 i32) (result i32)))
    {slow_import if with_async else ""}
    (import "h" "bytes" (func $bytes (param i32) (result i32)))
    (import "h" "make" (func $make (param i32) (result i32)))
    (import "h" "count" (func $count (result i32)))
    (import "h" "drop" (func $drop (param i32)))
    {'(import "h" "ret" (func $ret (param i32)))' if with_async else ""}
    {slow_core if with_async else ""}
    (func (export "frob-one") (param $n i32) (param $x i32) (result i32)
      (local $t i32) (local $r i32)
      (local.set $t (call $ctor (local.get $n)))
      (local.set $r (call $frob (local.get $t) (local.get $x)))
      (call $drop (local.get $t))
      (local.get $r))
    (func (export "make-and-drop") (param $n i32)
      (call $drop (call $make (local.get $n))))
    (func (export "keep") (param $n i32)
      (drop (call $ctor (local.get $n))))
    (func (export "count") (result i32) (call $count))
    (func (export "pipe") (param $n i32) (result i32)
      (local $t i32) (local $s i32)
      (local.set $t (call $ctor (local.get $n)))
      (local.set $s (call $bytes (local.get $t)))
      (call $drop (local.get $t))
      (local.get $s))
  )
  (core func $ctor (canon lower (func $host "[constructor]thing")))
  (core func $frob (canon lower (func $host "[method]thing.frob")))
  (core func $bytes (canon lower (func $host "[method]thing.bytes")))
  (core func $make (canon lower (func $host "[static]thing.make")))
  (core func $count (canon lower (func $host "count")))
  (core func $drop (canon resource.drop $thing))
  {slow_lower if with_async else ""}
  (core instance $i (instantiate $m (with "h" (instance
    (export "ctor" (func $ctor))
    (export "frob" (func $frob))
    {'(export "slow-frob" (func $slow))' if with_async else ""}
    (export "bytes" (func $bytes))
    (export "make" (func $make))
    (export "count" (func $count))
    (export "drop" (func $drop))
    {'(export "ret" (func $ret))' if with_async else ""}
  ))))
  {slow_export if with_async else ""}
  (func (export "frob-one") (param "n" u32) (param "x" u32) (result u32)
    (canon lift (core func $i "frob-one")))
  (func (export "make-and-drop") (param "n" u32) (canon lift (core func $i "make-and-drop")))
  (func (export "keep") (param "n" u32) (canon lift (core func $i "keep")))
  (func (export "count") (result u32) (canon lift (core func $i "count")))
  (func (export "pipe") (param "n" u32) (result (stream u8))
    (canon lift (core func $i "pipe")))
)
"""


class Host:
    """The interface's functions and its resource class, as one object."""

    def __init__(self) -> None:
        self.closed: collections.Counter[int] = collections.Counter()
        self.made: list[Host.Thing] = []
        host = self

        class Thing:
            def __init__(self, n: int) -> None:
                self.n = n
                host.made.append(self)

            def frob(self, x: int) -> int:
                return self.n + x

            async def slow_frob(self, x: int) -> int:
                await trio.lowlevel.checkpoint()
                return self.n * 100 + x

            @trio_wasi.with_context
            def bytes(self, ctx: trio_wasi.HostContext) -> trio.MemoryReceiveChannel[bytes]:
                # An endless producer: nothing but the instance's closing ends it.
                send, receive = trio.open_memory_channel[bytes](0)

                async def produce() -> None:
                    async with send:
                        while True:
                            await send.send(b"x" * 16)

                ctx.start_soon(produce)
                return receive

            @staticmethod
            def make(n: int) -> Thing:
                return Thing(n)

            def close(self) -> None:
                host.closed[id(self)] += 1

        self.Thing = Thing

    def count(self) -> int:
        return len(self.made)


def make_linker(host: Host) -> trio_wasi.Linker:
    linker = trio_wasi.Linker()
    linker.define_interface("local:demo/host", host, wit=WIT)
    return linker


@pytest.fixture(scope="module")
def threaded_component() -> trio_wasi.Component:
    return trio_wasi.Component.from_wat(guest_wat(with_async=True))


@pytest.fixture(scope="module")
def inline_component() -> trio_wasi.Component:
    return trio_wasi.Component.from_wat(guest_wat(with_async=False))


@pytest.fixture(params=["inline", "threaded"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def component_for(mode: str, inline: Any, threaded: Any) -> trio_wasi.Component:
    return threaded if mode == "threaded" else inline  # type: ignore[no-any-return]


async def test_methods_constructor_static_and_drops(
    mode: str, inline_component: Any, threaded_component: Any
) -> None:
    host = Host()
    linker = make_linker(host)
    component = component_for(mode, inline_component, threaded_component)
    async with linker.instantiate(component) as inst:
        assert inst.threaded == (mode == "threaded")
        assert await inst.call("frob-one", 5, 7) == 12
        assert await inst.call("make-and-drop", 3) is None
        assert await inst.call("count") == 2
        if mode == "threaded":
            assert await inst.call("frob-all", 4) == (4 + 1) + (4 * 100 + 2)
        # Every object the guest dropped was closed, each exactly once.
        assert [host.closed[id(t)] for t in host.made] == [1] * len(host.made)


async def test_objects_still_owned_are_closed_with_the_instance(
    mode: str, inline_component: Any, threaded_component: Any
) -> None:
    host = Host()
    linker = make_linker(host)
    async with linker.instantiate(component_for(mode, inline_component, threaded_component)) as i:
        await i.call("keep", 9)
        await i.call("keep", 10)
        assert sum(host.closed.values()) == 0
    assert [host.closed[id(t)] for t in host.made] == [1, 1]


async def test_explicit_drop_callback_and_aclose(inline_component: Any) -> None:
    dropped: list[int] = []
    acloses: list[int] = []
    host = Host()

    async def aclose(thing: Any) -> None:
        await trio.lowlevel.checkpoint()
        acloses.append(thing.n)

    host.Thing.aclose = aclose  # type: ignore[attr-defined]
    del host.Thing.close  # type: ignore[attr-defined]
    linker = make_linker(host)
    async with linker.instantiate(inline_component) as inst:
        await inst.call("make-and-drop", 1)
    # aclose ran in the instance's nursery, which the block waited for.
    assert acloses == [1]

    linker = trio_wasi.Linker()
    linker.define_interface(
        "local:demo/host", host, wit=WIT, drops={"thing": lambda t: dropped.append(t.n)}
    )
    async with linker.instantiate(inline_component) as inst:
        await inst.call("make-and-drop", 2)
        await inst.call("keep", 3)
    assert dropped == [2, 3]
    assert acloses == [1]


@pytest.mark.parametrize("read", [0, 3])
async def test_closing_with_unread_host_streams_is_prompt(
    mode: str, read: int, inline_component: Any, threaded_component: Any
) -> None:
    component = component_for(mode, inline_component, threaded_component)
    for _ in range(50):
        host = Host()
        with trio.fail_after(10):  # a hang guard, not a timing assertion
            async with make_linker(host).instantiate(component) as inst:
                stream = await inst.call("pipe", 1)
                got = 0
                async for chunk in stream:
                    got += len(chunk)
                    if got >= read * 16:
                        break
        assert sum(host.closed.values()) == 1


# ---------------------------------------------------------------------------
# Definition-time and link-time checks


def test_missing_and_misspelled_functions_are_named() -> None:
    class Partial:
        class Thing:
            def __init__(self, n: int) -> None:
                pass

            def frobb(self, x: int) -> int:
                return x

            def bytes(self) -> None:
                pass

            @staticmethod
            def make(n: int) -> None:
                pass

    with pytest.raises(trio_wasi.LinkError) as info:
        trio_wasi.Linker().define_interface("local:demo/host", Partial(), wit=WIT)
    message = str(info.value)
    assert "`[method]thing.frob`" in message and "'frobb'" in message
    assert "`[method]thing.slow-frob`" in message
    assert "`count`" in message


def test_wrong_arity_is_a_link_error() -> None:
    host = Host()
    host.count = lambda extra: 0  # type: ignore[assignment,method-assign]
    with pytest.raises(trio_wasi.LinkError, match=r"`count` \(count\) does not accept 0"):
        make_linker(host)


def test_missing_resource_class_is_named() -> None:
    class NoThing:
        def count(self) -> int:
            return 0

    with pytest.raises(trio_wasi.LinkError, match="resource `thing`: no class Thing"):
        trio_wasi.Linker().define_interface("local:demo/host", NoThing(), wit=WIT)


def test_unknown_interface_and_bad_wit() -> None:
    with pytest.raises(trio_wasi.LinkError, match="did you mean `local:demo/host`"):
        trio_wasi.Linker().define_interface("local:demo/hots", Host(), wit=WIT)
    with pytest.raises(trio_wasi.LinkError, match="cannot read WIT"):
        trio_wasi.Linker().define_interface("local:demo/host", Host(), wit="package x:y;\n oops")


async def test_import_of_another_type_is_a_link_error() -> None:
    # The host implements count: func() -> u32; this guest imports it as
    # returning a string: refused at instantiation, before any guest code.
    wat = """
    (component
      (import "local:demo/host" (instance $h (export "count" (func (result string)))))
    )
    """
    component = trio_wasi.Component.from_bytes(
        trio_wasi._engine.wat_to_wasm(wat),  # type: ignore[attr-defined]
        validate=False,
    )
    with pytest.raises(trio_wasi.LinkError, match=r"import `local:demo/host#count`.*string"):
        async with make_linker(Host()).instantiate(component):
            pass


async def test_factory_makes_one_object_per_instance(inline_component: Any) -> None:
    made: list[Any] = []
    shared = Host()

    class PerInstance:
        Thing = shared.Thing

        def __init__(self, ctx: trio_wasi.HostContext) -> None:
            self.ctx = ctx
            self.calls = 0
            made.append(self)

        def count(self) -> int:
            self.calls += 1
            return 100 * len(made) + self.calls

    linker = trio_wasi.Linker()
    linker.define_interface("local:demo/host", factory=PerInstance, wit=WIT)
    async with linker.instantiate(inline_component, data="first") as a:
        async with linker.instantiate(inline_component, data="second") as b:
            assert await a.call("count") == 201
            assert await a.call("count") == 202
            assert await b.call("count") == 201
    assert [m.ctx.data for m in made] == ["first", "second"]


# ---------------------------------------------------------------------------
# A host function that fails poisons the instance


async def test_a_host_exception_poisons_the_instance(
    mode: str, inline_component: Any, threaded_component: Any
) -> None:
    host = Host()

    def count() -> int:
        raise ValueError("the host broke")

    host.count = count  # type: ignore[method-assign]
    async with make_linker(host).instantiate(
        component_for(mode, inline_component, threaded_component)
    ) as inst:
        with pytest.raises(
            trio_wasi.Trap, match="`local:demo/host#count` raised ValueError"
        ) as info:
            await inst.call("count")
        # The original exception is chained, traceback and all.
        cause = info.value.__cause__
        while cause is not None and not isinstance(cause, ValueError):
            cause = cause.__cause__
        assert isinstance(cause, ValueError) and cause.__traceback__ is not None
        with pytest.raises(trio_wasi.Trap, match=r"poisoned by an earlier trap: .*the host broke"):
            await inst.call("frob-one", 1, 2)


async def test_an_out_of_range_result_poisons_the_instance(
    mode: str, inline_component: Any, threaded_component: Any
) -> None:
    host = Host()
    host.count = lambda: 2**33  # type: ignore[method-assign]
    async with make_linker(host).instantiate(
        component_for(mode, inline_component, threaded_component)
    ) as inst:
        with pytest.raises(trio_wasi.Trap, match="returned a value that does not match"):
            await inst.call("count")
        with pytest.raises(trio_wasi.Trap, match="poisoned by an earlier trap"):
            await inst.call("count")


async def test_an_async_host_exception_poisons_the_instance(threaded_component: Any) -> None:
    host = Host()

    async def slow_frob(self: Any, x: int) -> int:
        await trio.lowlevel.checkpoint()
        raise KeyError("gone")

    host.Thing.slow_frob = slow_frob  # type: ignore[attr-defined]
    async with make_linker(host).instantiate(threaded_component) as inst:
        with pytest.raises(trio_wasi.Trap, match="slow-frob` raised KeyError"):
            await inst.call("frob-all", 1)
        with pytest.raises(trio_wasi.Trap, match="poisoned by an earlier trap"):
            await inst.call("count")


# ---------------------------------------------------------------------------
# Where host code runs


async def test_plain_def_runs_on_the_guest_thread_and_async_def_on_trio(
    mode: str, inline_component: Any, threaded_component: Any
) -> None:
    import threading

    seen: dict[str, Any] = {}
    host = Host()

    def count() -> int:
        seen["plain"] = threading.current_thread()
        return 1

    async def slow_frob(self: Any, x: int) -> int:
        seen["async"] = threading.current_thread()
        await trio.lowlevel.checkpoint()
        return x

    host.count = count  # type: ignore[method-assign]
    host.Thing.slow_frob = slow_frob  # type: ignore[attr-defined]
    async with make_linker(host).instantiate(
        component_for(mode, inline_component, threaded_component)
    ) as inst:
        await inst.call("count")
        trio_thread = threading.current_thread()
        if mode == "threaded":
            assert seen["plain"] is not trio_thread
            await inst.call("frob-all", 1)
            assert seen["async"] is trio_thread
        else:
            assert seen["plain"] is trio_thread


async def test_a_plain_def_using_trio_on_a_store_thread_is_a_clear_error(
    threaded_component: Any,
) -> None:
    host = Host()

    def count() -> int:
        trio.lowlevel.current_task()
        return 0

    host.count = count  # type: ignore[method-assign]
    async with make_linker(host).instantiate(threaded_component) as inst:
        with pytest.raises(trio_wasi.Trap, match="cannot use trio: make it `async def`"):
            await inst.call("count")


# ---------------------------------------------------------------------------
# Nested host instances and host core modules


async def test_nested_host_instance() -> None:
    wat = """
    (component
      (type $inner (instance (export "twice" (func (param "x" u32) (result u32)))))
      (import "local:demo/outer" (instance $outer
        (export "inner" (instance (type $inner)))
        (export "base" (func (result u32)))))
      (alias export $outer "inner" (instance $in))
      (alias export $in "twice" (func $twice))
      (alias export $outer "base" (func $base))
      (core func $twice-core (canon lower (func $twice)))
      (core func $base-core (canon lower (func $base)))
      (core module $m
        (import "h" "twice" (func $twice (param i32) (result i32)))
        (import "h" "base" (func $base (result i32)))
        (func (export "run") (param i32) (result i32)
          (i32.add (call $base) (call $twice (local.get 0)))))
      (core instance $i (instantiate $m (with "h" (instance
        (export "twice" (func $twice-core)) (export "base" (func $base-core))))))
      (func (export "run") (param "x" u32) (result u32) (canon lift (core func $i "run")))
    )
    """
    component = trio_wasi.Component.from_wat(wat)
    linker = trio_wasi.Linker()
    linker.define_instance(
        "local:demo/outer", {"base": lambda: 100, "inner": {"twice": lambda x: 2 * x}}
    )
    async with linker.instantiate(component) as inst:
        assert await inst.call("run", 21) == 142
    with pytest.raises(trio_wasi.LinkError, match="local:demo/outer#inner#twice"):
        async with trio_wasi.Linker().instantiate(component):
            pass


_MODULE_IMPORTER = """
(component
  (import "host-module" (core module $m
    (export "answer" (func (result i32)))))
  (core instance $i (instantiate $m))
  (func (export "answer") (result u32) (canon lift (core func $i "answer")))
)
"""


async def test_host_core_module() -> None:
    component = trio_wasi.Component.from_wat(_MODULE_IMPORTER)
    linker = trio_wasi.Linker()
    linker.define_module(
        "host-module", '(module (func (export "answer") (result i32) i32.const 42))'
    )
    async with linker.instantiate(component) as inst:
        assert await inst.call("answer") == 42

    wrong = trio_wasi.Linker()
    wrong.define_module("host-module", '(module (func (export "other") (result i32) i32.const 1))')
    with pytest.raises(trio_wasi.LinkError, match="does not export 'answer'"):
        async with wrong.instantiate(component):
            pass
    with pytest.raises(trio_wasi.LinkError, match="missing import `host-module`"):
        async with trio_wasi.Linker().instantiate(component):
            pass
