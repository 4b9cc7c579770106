"""Round trips through a real componentize-py guest with synchronous imports and exports.

The guest (``tests/guests/sync_roundtrip``) is built with WASI stubbed out, so the only
imports it has are the ``local:roundtrip/host`` functions defined here.  Each export
crosses into the host at least once, so strings, lists and records are checked both as
export arguments/results and as import arguments/results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

import trio_wasi

HOST = "local:roundtrip/host"
GUEST = "local:roundtrip/guest"

STRINGS = [
    "",
    "hello",
    "héllo wörld",
    "日本語のテキスト",
    "emoji outside the BMP: 🎉🐍",
    "nul\x00inside",
    "x" * 70_000,
]


@pytest.fixture(scope="module")
def engine() -> Any:
    return trio_wasi.Engine()


@pytest.fixture(scope="module")
def component(sync_roundtrip_wasm: Path, engine: Any) -> Any:
    # Decoded once per module: the guest is ~18 MB and compiling it is the slow part.
    return trio_wasi.Component.from_file(sync_roundtrip_wasm, engine=engine)


class Host:
    """Host side of ``local:roundtrip/host`` that records every call it receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def log(self, msg: str) -> None:
        self.calls.append(("log", msg))

    def transform(self, s: str) -> str:
        self.calls.append(("transform", s))
        # Not the identity, so the result proves the host's value came back.
        return f"{s[::-1]}|{len(s)}"

    def describe(self, p: dict[str, Any]) -> str:
        self.calls.append(("describe", p))
        return f"{p['name']} aged {p['age']} [{','.join(p['tags'])}]"


def make_linker(engine: Any, host: Host) -> Any:
    linker = trio_wasi.Linker(engine)
    linker.define_function(HOST, "log", host.log)
    linker.define_function(HOST, "transform", host.transform)
    linker.define_function(HOST, "describe", host.describe)
    return linker


@pytest.mark.parametrize("text", STRINGS, ids=lambda s: f"len{len(s)}-{s[:12]!r}")
async def test_echo_round_trips_string_through_host(engine: Any, component: Any, text: str) -> None:
    host = Host()
    async with make_linker(engine, host).instantiate(component) as instance:
        result = await instance.call(f"{GUEST}#echo", text)
    assert result == f"echo({text[::-1]}|{len(text)})"
    assert host.calls == [("transform", text)]


@pytest.mark.parametrize(
    "values",
    [[], [7], [0, 1, 2**32 - 1, 42], list(range(5000))],
    ids=["empty", "one", "extremes", "5000"],
)
async def test_reverse_list(engine: Any, component: Any, values: list[int]) -> None:
    host = Host()
    async with make_linker(engine, host).instantiate(component) as instance:
        result = await instance.call(f"{GUEST}#reverse-list", values)
    assert result == values[::-1]
    assert host.calls == []


@pytest.mark.parametrize(
    ("name", "age"),
    [("Zoë", 42), ("", 0), ("Ωmega 🎉", 2**32 - 1)],
    ids=["non-ascii", "empty", "max-age"],
)
async def test_make_person_returns_record(engine: Any, component: Any, name: str, age: int) -> None:
    host = Host()
    async with make_linker(engine, host).instantiate(component) as instance:
        person = await instance.call(f"{GUEST}#make-person", name, age)
    assert person == {"name": name, "age": age, "tags": [name.upper(), f"age:{age}", ""]}


@pytest.mark.parametrize(
    "person",
    [
        {"name": "Zoë", "age": 42, "tags": ["admin", "ünïcode", ""]},
        {"name": "", "age": 0, "tags": []},
        {"name": "日本", "age": 2**32 - 1, "tags": ["t"] * 300},
    ],
    ids=["three-tags", "empty", "many-tags"],
)
async def test_greet_passes_record_to_host(
    engine: Any, component: Any, person: dict[str, Any]
) -> None:
    host = Host()
    async with make_linker(engine, host).instantiate(component) as instance:
        result = await instance.call(f"{GUEST}#greet", person)
    described = f"{person['name']} aged {person['age']} [{','.join(person['tags'])}]"
    assert result == f"Hello, {described}!"
    assert host.calls == [
        ("describe", person),
        ("log", f"greeting {person['name']} ({len(person['tags'])} tags)"),
    ]


async def test_record_from_export_feeds_back_into_export(engine: Any, component: Any) -> None:
    host = Host()
    async with make_linker(engine, host).instantiate(component) as instance:
        person = await instance.call(f"{GUEST}#make-person", "Ada", 36)
        result = await instance.call(f"{GUEST}#greet", person)
    assert result == "Hello, Ada aged 36 [ADA,age:36,]!"
    assert host.calls == [
        ("describe", {"name": "Ada", "age": 36, "tags": ["ADA", "age:36", ""]}),
        ("log", "greeting Ada (3 tags)"),
    ]


async def test_many_calls_on_one_instance(engine: Any, component: Any) -> None:
    # Repeated calls check that post-return and the guest's allocator leave the
    # instance reusable.
    host = Host()
    async with make_linker(engine, host).instantiate(component) as instance:
        for i in range(200):
            text = f"call {i} ✓"
            assert await instance.call(f"{GUEST}#echo", text) == f"echo({text[::-1]}|{len(text)})"
            assert await instance.call(f"{GUEST}#reverse-list", [i, i + 1]) == [i + 1, i]
    assert [arg for _, arg in host.calls] == [f"call {i} ✓" for i in range(200)]


async def test_async_host_import(engine: Any, component: Any) -> None:
    # A host import written as ``async def`` is awaited on trio while the guest waits in
    # its synchronous call.
    seen: list[str] = []

    async def transform(s: str) -> str:
        await trio.sleep(0.01)
        seen.append(s)
        return s.upper()

    host = Host()
    linker = trio_wasi.Linker(engine)
    linker.define_function(HOST, "log", host.log)
    linker.define_function(HOST, "transform", transform)
    linker.define_function(HOST, "describe", host.describe)
    async with linker.instantiate(component) as instance:
        assert await instance.call(f"{GUEST}#echo", "ünï") == "echo(ÜNÏ)"
    assert seen == ["ünï"]


async def test_two_instances_are_independent(engine: Any, component: Any) -> None:
    first, second = Host(), Host()
    async with (
        make_linker(engine, first).instantiate(component) as a,
        make_linker(engine, second).instantiate(component) as b,
    ):
        assert await a.call(f"{GUEST}#echo", "a") == "echo(a|1)"
        assert await b.call(f"{GUEST}#echo", "bb") == "echo(bb|2)"
    assert first.calls == [("transform", "a")]
    assert second.calls == [("transform", "bb")]


async def test_missing_host_import_is_link_error(engine: Any, component: Any) -> None:
    linker = trio_wasi.Linker(engine)
    host = Host()
    linker.define_function(HOST, "log", host.log)
    linker.define_function(HOST, "describe", host.describe)
    with pytest.raises(trio_wasi.LinkError, match="transform"):
        async with linker.instantiate(component):
            pass
