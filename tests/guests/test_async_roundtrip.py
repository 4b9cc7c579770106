"""The async round-trip matrix: ``local:roundtrip/baz`` through async and sync guests.

``foo: async func(s: string) -> string`` is imported and exported by every component
here.  A guest's export appends " - entered guest", calls its import with that, and
appends " - exited guest" to what came back; the host's import sleeps briefly and appends
" - entered host - exited host".  There are two guests:

* async: componentize-py (``tests/guests/async_roundtrip``), export lifted ``async`` with
  a callback, import lowered ``async``;
* sync: WAT (``tests/wat/sync_roundtrip.wat``), export lifted and import lowered without
  ``async``, so the guest blocks in its import call;

and the four compositions of one into the other (outer->inner), where the outer guest's
import is satisfied by the inner guest's export and the inner's import by the host.
The kinds made of the WAT guest only (``sync``, ``sync->sync``) need only wasm-tools,
so they run when componentize-py is not installed; the others skip then.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing

import trio_wasi

BAZ = "local:roundtrip/baz"
FOO = f"{BAZ}#foo"
HELLO = "hello, world!"
WAT = Path(__file__).resolve().parent.parent / "wat" / "sync_roundtrip.wat"

# The component kinds: a single guest, or outer->inner.
SINGLES = ["async", "sync"]
COMPOSED = ["sync->sync", "sync->async", "async->sync", "async->async"]
KINDS = SINGLES + COMPOSED


def _load_compose_module() -> ModuleType:
    # Loaded by path under a unique name, like the guest build module in conftest.
    name = "_trio_wasi_tests_guest_compose"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_compose.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


guest_compose = _load_compose_module()


def expected(text: str, kind: str) -> str:
    """What the export returns for ``text``: one enter/exit pair per guest on the path."""
    depth = kind.count("->") + 1
    return (
        text
        + " - entered guest" * depth
        + " - entered host - exited host"
        + " - exited guest" * depth
    )


RoundtripPath = Callable[[str], Path]


@pytest.fixture(scope="session")
def roundtrip_components(
    build_guest: Callable[..., Path], guest_build_module: ModuleType
) -> RoundtripPath:
    """``path_of(kind)``: the round-trip component of ``kind``, built or composed on demand.

    Lazily, so the WAT-only kinds (``sync``, ``sync->sync``) need only wasm-tools
    and run when componentize-py is missing; a kind that contains the async guest
    skips then (``build_guest`` says why).

    Built with (paths abbreviated; the outputs are cached next to the guest builds under
    content-hash keys):

    * async: ``componentize-py -q -d async_roundtrip/wit -w roundtrip componentize app
      -p async_roundtrip -o async.wasm -s``
    * sync: ``wasm-tools parse tests/wat/sync_roundtrip.wat -o sync.wasm``
    * OUTER->INNER, for OUTER and INNER each of async and sync:
      ``cp INNER.wasm DIR/inner.wasm`` (wasm-tools names the definition's instance after
      the file stem, which must be kebab-case), then
      ``wasm-tools compose -q OUTER.wasm -d DIR/inner.wasm -o composed.wasm`` and
      ``wasm-tools validate --features all composed.wasm``.
    """
    built: dict[str, Path] = {}

    def path_of(kind: str) -> Path:
        if kind in built:
            return built[kind]
        try:
            guest_compose.wasm_tools_version()
        except guest_compose.ComposeError as exc:
            pytest.skip(str(exc))
        cache: Path = guest_build_module.cache_dir()
        if kind == "async":
            path = build_guest("async_roundtrip", "roundtrip", stub_wasi=True)
        elif kind == "sync":
            path = guest_compose.parse_wat(WAT, cache=cache)
        else:
            outer, inner = kind.split("->")
            path = guest_compose.compose(
                path_of(outer), path_of(inner), name=f"{outer}-{inner}", cache=cache
            )
        built[kind] = path
        return path

    return path_of


@pytest.fixture(autouse=True)
def _kind_built_during_setup(
    request: pytest.FixtureRequest, roundtrip_components: RoundtripPath
) -> None:
    # Build the test's kind here rather than in the test body, so a missing
    # tool skips the test at setup with its reason.
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "kind" in callspec.params:
        roundtrip_components(callspec.params["kind"])


@pytest.fixture(scope="module")
def engine() -> Any:
    return trio_wasi.Engine()


@pytest.fixture(scope="module")
def component_of(roundtrip_components: RoundtripPath, engine: Any) -> Callable[[str], Any]:
    """``component_of(kind)``: the decoded component, decoded at most once per module."""
    decoded: dict[str, Any] = {}

    def get(kind: str) -> Any:
        # Lazily, so a test of one kind never waits for the others to compile.
        if kind not in decoded:
            decoded[kind] = trio_wasi.Component.from_file(roundtrip_components(kind), engine=engine)
        return decoded[kind]

    return get


class Host:
    """The host's ``local:roundtrip/baz`` import: sleeps, appends, and records overlap."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.seen: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def foo(self, s: str) -> str:
        self.seen.append(s)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await trio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        return s + " - entered host - exited host"


# Generous: a hang guard for the tests that wait for calls to meet, not a timing claim.
HANG_GUARD_SECONDS = 120


class MeetingHost(Host):
    """A host import that holds every call until ``meet`` calls are inside it at once."""

    def __init__(self, meet: int) -> None:
        super().__init__(delay=0)
        self.meet = meet
        self.met = trio.Event()

    async def foo(self, s: str) -> str:
        self.seen.append(s)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.in_flight == self.meet:
            self.met.set()
        try:
            await self.met.wait()
        finally:
            self.in_flight -= 1
        return s + " - entered host - exited host"


class ContendedHost(Host):
    """A host import that lets every other task run before a call leaves it.

    Each call waits until ``issued`` is set (all calls were made) and every
    task is blocked, so any other call that could enter the host concurrently
    has had the chance to; ``max_in_flight`` then shows whether one did.
    """

    def __init__(self, issued: trio.Event) -> None:
        super().__init__(delay=0)
        self.issued = issued

    async def foo(self, s: str) -> str:
        self.seen.append(s)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.issued.wait()
            await trio.testing.wait_all_tasks_blocked()
        finally:
            self.in_flight -= 1
        return s + " - entered host - exited host"


def make_linker(engine: Any, foo: Callable[[str], Any]) -> Any:
    linker = trio_wasi.Linker(engine)
    linker.define_function(BAZ, "foo", foo)
    return linker


# --- the binaries themselves (need only the tools, not the runtime) ---


@pytest.mark.parametrize("kind", KINDS)
def test_component_validates(roundtrip_components: RoundtripPath, kind: str) -> None:
    path = str(roundtrip_components(kind))
    tool = str(guest_compose.wasm_tools_path())
    guest_compose.run_tool([tool, "validate", "--features", "all", path])
    wit = guest_compose.run_tool([tool, "component", "wit", path])
    # Every kind presents the same interface on both sides.
    assert "import local:roundtrip/baz;" in wit
    assert "export local:roundtrip/baz;" in wit
    assert "foo: async func(s: string) -> string;" in wit


@pytest.mark.parametrize("kind", COMPOSED)
def test_composition_nests_both_guests(roundtrip_components: RoundtripPath, kind: str) -> None:
    # The tool embeds both guests as nested components and instantiates each once (the
    # outer with the inner's export); the round-trip tests show the wiring.
    path = str(roundtrip_components(kind))
    tool = str(guest_compose.wasm_tools_path())
    dump = guest_compose.run_tool([tool, "objdump", path])
    # Top-level sections are indented by two spaces, nested ones by more.
    sections = [line.split("|")[0].strip() for line in dump.splitlines() if re.match(r"  \S", line)]
    assert sections.count("component") == 2
    assert sections.count("component instances") == 2
    assert "module" not in sections and "core instances" not in sections


# --- calls through the runtime ---


@pytest.mark.parametrize("kind", KINDS)
async def test_round_trip(engine: Any, component_of: Callable[[str], Any], kind: str) -> None:
    host = Host()
    async with make_linker(engine, host.foo).instantiate(component_of(kind)) as instance:
        result = await instance.call(FOO, HELLO)
    assert result == expected(HELLO, kind)
    # The host sees the string after every guest on the path has entered.
    assert host.seen == [HELLO + " - entered guest" * (kind.count("->") + 1)]


def test_expected_strings_match_the_demo() -> None:
    # The literal strings of the original demo, so the helper cannot drift from them.
    assert expected(HELLO, "async") == (
        "hello, world! - entered guest - entered host - exited host - exited guest"
    )
    assert expected(HELLO, "async->async") == (
        "hello, world! - entered guest - entered guest - entered host - exited host"
        " - exited guest - exited guest"
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_round_trip_repeated_with_varied_strings(
    engine: Any, component_of: Callable[[str], Any], kind: str
) -> None:
    # Several calls on one instance: post-return and allocators leave it reusable, and
    # non-ASCII and long strings survive every boundary.
    texts = ["", "ünïcödé ✓", "日本語 🎉", "x" * 100_000, HELLO]
    host = Host(delay=0)
    async with make_linker(engine, host.foo).instantiate(component_of(kind)) as instance:
        for text in texts:
            assert await instance.call(FOO, text) == expected(text, kind)
    assert len(host.seen) == len(texts)


@pytest.mark.parametrize("kind", SINGLES)
async def test_plain_def_host_import(
    engine: Any, component_of: Callable[[str], Any], kind: str
) -> None:
    seen: list[str] = []

    def foo(s: str) -> str:
        seen.append(s)
        return s + " - entered host - exited host"

    async with make_linker(engine, foo).instantiate(component_of(kind)) as instance:
        assert await instance.call(FOO, HELLO) == expected(HELLO, kind)
        assert await instance.call(FOO, "again") == expected("again", kind)
    assert seen == [HELLO + " - entered guest", "again - entered guest"]


@pytest.mark.parametrize("kind", ["async"])
async def test_concurrent_calls_overlap_in_async_guest(
    engine: Any, component_of: Callable[[str], Any], kind: str
) -> None:
    # 50 calls on one instance whose host import holds each call until all 50
    # are inside it at once: the test finishes only if they really overlap.
    calls = 50
    host = MeetingHost(calls)
    results: dict[int, str] = {}
    with trio.fail_after(HANG_GUARD_SECONDS):
        async with make_linker(engine, host.foo).instantiate(component_of(kind)) as instance:

            async def one(i: int) -> None:
                results[i] = await instance.call(FOO, f"{HELLO} #{i}")

            async with trio.open_nursery() as nursery:
                for i in range(calls):
                    nursery.start_soon(one, i)
    assert results == {i: expected(f"{HELLO} #{i}", kind) for i in range(calls)}
    assert host.max_in_flight == calls
    assert sorted(host.seen) == sorted(f"{HELLO} #{i} - entered guest" for i in range(calls))


# Whether calls into the component can wait on the host at the same time: an export
# lifted without ``async`` holds its instance for the whole call (the Concurrency
# explainer's exclusive access), so any sync guest that every call passes through
# serializes the host calls; async guests only hold their instance while running.
OVERLAPS = {
    "async": True,
    "async->async": True,
    "sync": False,
    "sync->sync": False,
    "sync->async": False,
    "async->sync": False,
}


@pytest.mark.parametrize("kind", KINDS)
async def test_concurrent_calls(engine: Any, component_of: Callable[[str], Any], kind: str) -> None:
    calls = 6
    issued = trio.Event()
    # Overlapping kinds: each host call waits until all six are in the host.
    # Serial kinds: each host call waits until all six calls were issued and
    # every task is blocked, so the others are certainly waiting to get in.
    host = MeetingHost(calls) if OVERLAPS[kind] else ContendedHost(issued)
    results: dict[int, str] = {}
    started = 0
    with trio.fail_after(HANG_GUARD_SECONDS):
        async with make_linker(engine, host.foo).instantiate(component_of(kind)) as instance:

            async def one(i: int) -> None:
                nonlocal started
                started += 1
                if started == calls:
                    issued.set()
                results[i] = await instance.call(FOO, f"call {i}")

            async with trio.open_nursery() as nursery:
                for i in range(calls):
                    nursery.start_soon(one, i)
    assert results == {i: expected(f"call {i}", kind) for i in range(calls)}
    assert host.max_in_flight == (calls if OVERLAPS[kind] else 1)
    assert len(host.seen) == calls
