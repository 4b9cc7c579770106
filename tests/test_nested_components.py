"""A hand-written component with two nested components wired together.

``tests/wat/nested_components.wat``: component A (utf8) implements the resource ``thing``
and string functions; component B (utf16, plus one latin1+utf16 path) imports A's
interface and the host's ``log`` and passes strings, own handles and borrowed handles
into A.  A's destructor counts drops, observable through the ``dropped`` export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import trio_wasi

WAT = (Path(__file__).parent / "wat" / "nested_components.wat").read_text()
HOST = "local:nested/host"
A = "local:nested/a"

STRINGS = [
    "",
    "hello",
    "héllo wörld",
    "ÿ latin-1 only ÿ",
    "日本語",
    "emoji 🎉 needs surrogates",
    "nul\x00inside",
    "x" * 100_000 + "é",
    "日" * 40_000,
]


def ids(text: str) -> str:
    return f"len{len(text)}-{text[:10]!r}"


@pytest.fixture(scope="module")
def engine() -> Any:
    return trio_wasi.Engine()


@pytest.fixture(scope="module")
def component(engine: Any) -> Any:
    return trio_wasi.Component.from_wat(WAT, engine=engine)


def linker_with_log(engine: Any, seen: list[str]) -> Any:
    linker = trio_wasi.Linker(engine)
    linker.define_function(HOST, "log", seen.append)
    return linker


@pytest.mark.parametrize("text", STRINGS, ids=ids)
async def test_utf16_component_calls_utf8_component(engine: Any, component: Any, text: str) -> None:
    seen: list[str] = []
    async with linker_with_log(engine, seen).instantiate(component) as instance:
        assert await instance.call("shout-utf16", text) == f"<{text}>"
    # B logged its utf16 argument through the host import before calling A.
    assert seen == [text]


@pytest.mark.parametrize("text", STRINGS, ids=ids)
async def test_latin1_utf16_component_calls_utf8_component(
    engine: Any, component: Any, text: str
) -> None:
    seen: list[str] = []
    async with linker_with_log(engine, seen).instantiate(component) as instance:
        assert await instance.call("shout-compact", text) == f"<{text}>"
    assert seen == []


async def test_borrow_lent_then_own_dropped_runs_destructor(engine: Any, component: Any) -> None:
    async with linker_with_log(engine, []).instantiate(component) as instance:
        assert await instance.call("created") == 0
        assert await instance.call("dropped") == 0
        assert await instance.call("label-then-drop", "ünï 🎉") == "ünï 🎉"
        assert await instance.call("created") == 1
        assert await instance.call("dropped") == 1


async def test_own_moved_to_implementer_is_dropped_there(engine: Any, component: Any) -> None:
    async with linker_with_log(engine, []).instantiate(component) as instance:
        assert await instance.call("consume", "abc") == "[abc]"
        assert await instance.call("consume", "日本") == "[日本]"
        assert await instance.call("created") == 2
        assert await instance.call("dropped") == 2


async def test_kept_handles_are_not_dropped(engine: Any, component: Any) -> None:
    async with linker_with_log(engine, []).instantiate(component) as instance:
        first = await instance.call("keep", "k1")
        second = await instance.call("keep", "k2")
        assert await instance.call("label-then-drop", "gone") == "gone"
        assert await instance.call("created") == 3
        assert await instance.call("dropped") == 1
    # Handle indices in B's table: never 0, and two live handles never share one.
    assert first != 0
    assert second != 0
    assert first != second


async def test_each_instance_has_its_own_state(engine: Any, component: Any) -> None:
    async with (
        linker_with_log(engine, []).instantiate(component) as one,
        linker_with_log(engine, []).instantiate(component) as two,
    ):
        await one.call("consume", "a")
        await one.call("consume", "b")
        await two.call("keep", "c")
        assert (await one.call("created"), await one.call("dropped")) == (2, 2)
        assert (await two.call("created"), await two.call("dropped")) == (1, 0)


async def test_handle_used_after_move_traps(engine: Any, component: Any) -> None:
    async with linker_with_log(engine, []).instantiate(component) as instance:
        with pytest.raises(trio_wasi.Trap):
            await instance.call("use-after-consume", "moved")
        # A trapped instance refuses to be entered again.
        with pytest.raises(trio_wasi.Error):
            await instance.call("created")


async def test_host_holds_guest_resource(engine: Any, component: Any) -> None:
    async with linker_with_log(engine, []).instantiate(component) as instance:
        thing = await instance.call(f"{A}#[constructor]thing", "host-made ✓")
        assert isinstance(thing, trio_wasi.GuestResource)
        assert await instance.call(f"{A}#[method]thing.label", thing) == "host-made ✓"
        assert await instance.call(f"{A}#[method]thing.label", thing) == "host-made ✓"
        assert await instance.call("dropped") == 0
        assert await instance.call(f"{A}#consume", thing) == "[host-made ✓]"
        assert await instance.call("created") == 1
        assert await instance.call("dropped") == 1


async def test_missing_host_interface_is_link_error(engine: Any, component: Any) -> None:
    with pytest.raises(trio_wasi.LinkError, match="local:nested/host"):
        async with trio_wasi.Linker(engine).instantiate(component):
            pass


async def test_missing_host_function_is_link_error(engine: Any, component: Any) -> None:
    linker = trio_wasi.Linker(engine)
    linker.define_function(HOST, "other", print)
    with pytest.raises(trio_wasi.LinkError, match="log"):
        async with linker.instantiate(component):
            pass


async def test_resource_given_for_function_import_is_link_error(
    engine: Any, component: Any
) -> None:
    class Log:
        pass

    linker = trio_wasi.Linker(engine)
    linker.define_resource(HOST, "log", Log)
    with pytest.raises(trio_wasi.LinkError, match="log"):
        async with linker.instantiate(component):
            pass


async def test_host_function_with_wrong_arity_is_link_error(engine: Any, component: Any) -> None:
    # ``log`` takes one parameter; a callable that needs two can never be called with it.
    def log(msg: str, level: int) -> None:
        raise AssertionError("never called")

    linker = trio_wasi.Linker(engine)
    linker.define_function(HOST, "log", log)
    with pytest.raises(trio_wasi.LinkError, match="log"):
        async with linker.instantiate(component):
            pass


# The inner component imports f: func(string) -> string; the outer one supplies a
# func(u32) -> u32 for it, which no instantiation can accept.
MISWIRED = """
(component
  (component $user
    (import "f" (func (param "s" string) (result string))))
  (component $provider
    (core module $m (func (export "f") (param i32) (result i32) (local.get 0)))
    (core instance $i (instantiate $m))
    (func $f (param "s" u32) (result u32) (canon lift (core func $i "f")))
    (export "f" (func $f)))
  (instance $p (instantiate $provider))
  (instance (instantiate $user (with "f" (func $p "f")))))
"""


def test_miswired_nested_instantiation_is_rejected(engine: Any) -> None:
    with pytest.raises(trio_wasi.ValidationError):
        trio_wasi.Component.from_wat(MISWIRED, engine=engine)
