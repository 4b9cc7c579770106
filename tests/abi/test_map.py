"""``map<K, V>``: laid out as ``list<tuple<K, V>>``, lifted to a dict.

Covers the layout, round trips through memory and flat core values, duplicate
keys (last value wins in the dict, every pair survives a lift followed by a
lower), the accepted host values, type resolution, and one component whose
exports and imports carry maps.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

import trio_wasi
from trio_wasi._abi import (
    BOOL,
    CHAR,
    F32,
    S8,
    S64,
    STRING,
    U8,
    U32,
    U64,
    BorrowScope,
    BytesMemory,
    CanonOptions,
    CoreValueIter,
    DuplicateKeyMap,
    InstanceState,
    LiftLowerContext,
    ListType,
    MapType,
    OptionType,
    RecordType,
    TupleType,
    ValueType,
    alignment,
    elem_size,
    flatten_type,
    lift_flat,
    lift_flat_values,
    load,
    lower_flat,
    lower_flat_values,
    store,
)
from trio_wasi._binary import _model as M
from trio_wasi._errors import LinkError, Trap
from trio_wasi._resolve import TypeSpace, describe, resolve_deftype


class Env:
    """A memory with a bump allocator standing in for the guest's realloc."""

    def __init__(self) -> None:
        self.memory = BytesMemory(65536)
        self.top = 16
        self.cx = LiftLowerContext(
            CanonOptions(memory=self.memory, realloc=self.realloc), InstanceState(), BorrowScope()
        )

    def realloc(self, old: int, old_size: int, align: int, new_size: int) -> int:
        ptr = (self.top + align - 1) & -align
        self.top = ptr + new_size
        return ptr


def roundtrip_memory(env: Env, v: Any, t: ValueType) -> Any:
    ptr = env.realloc(0, 0, alignment(t), elem_size(t))
    store(env.cx, v, t, ptr)
    return load(env.cx, ptr, t)


def roundtrip_flat(env: Env, v: Any, t: ValueType) -> Any:
    vi = CoreValueIter(lower_flat(env.cx, v, t))
    out = lift_flat(env.cx, vi, t)
    assert vi.done()
    return out


MAPS: list[tuple[MapType, dict[Any, Any]]] = [
    (MapType(STRING, U32), {"a": 1, "b": 2, "": 0}),
    (MapType(U32, STRING), {10: "x", 20: "y"}),
    (MapType(CHAR, BOOL), {"A": True, "z": False}),
    (MapType(U8, U64), {255: 2**64 - 1, 0: 7}),
    (MapType(S8, F32), {-128: 1.5, 127: -0.25}),
    (MapType(BOOL, STRING), {True: "yes", False: "no"}),
    (MapType(S64, ListType(U8)), {-(2**63): b"\x00\xff", 5: b""}),
    (MapType(STRING, ListType(U32)), {"p": [1, 2], "q": [], "r": [3]}),
    (MapType(STRING, MapType(STRING, ListType(U8))), {"a": {"x": b"\x01", "y": b""}, "b": {}}),
    (MapType(STRING, RecordType((("n", U32), ("s", STRING)))), {"k": {"n": 1, "s": "v"}}),
    (MapType(U32, OptionType(STRING)), {1: None, 2: "two"}),
]


def test_layout_is_the_list_of_pairs_layout() -> None:
    for t, _ in MAPS:
        pairs = ListType(TupleType((t.key, t.value)))
        assert t.as_list() == pairs
        assert alignment(t) == alignment(pairs) == 4
        assert elem_size(t) == elem_size(pairs) == 8
        assert flatten_type(t) == flatten_type(pairs) == ["i32", "i32"]


def test_map_types_are_values() -> None:
    assert MapType(STRING, U32) == MapType(STRING, U32)
    assert hash(MapType(STRING, U32)) == hash(MapType(STRING, U32))
    assert MapType(STRING, U32) != MapType(U32, STRING)
    # A map type is not type-equal to the list it despecialises to.
    pairs: object = ListType(TupleType((STRING, U32)))
    assert MapType(STRING, U32) != pairs


@pytest.mark.parametrize("key", [F32, ListType(U8), TupleType((U8,)), OptionType(U8)])
def test_only_key_types_may_be_keys(key: ValueType) -> None:
    with pytest.raises(ValueError, match="cannot be a map key"):
        MapType(key, U8)


@pytest.mark.parametrize(
    ("t", "v"), MAPS, ids=lambda x: describe(x) if isinstance(x, MapType) else ""
)
def test_roundtrip_memory(t: MapType, v: dict[Any, Any]) -> None:
    out = roundtrip_memory(Env(), v, t)
    assert type(out) is dict
    assert out == v
    assert list(out) == list(v)


@pytest.mark.parametrize(
    ("t", "v"), MAPS, ids=lambda x: describe(x) if isinstance(x, MapType) else ""
)
def test_roundtrip_flat(t: MapType, v: dict[Any, Any]) -> None:
    out = roundtrip_flat(Env(), v, t)
    assert type(out) is dict
    assert out == v
    assert list(out) == list(v)


def test_empty_maps() -> None:
    env = Env()
    t = MapType(STRING, U32)
    assert roundtrip_memory(env, {}, t) == {}
    assert roundtrip_flat(env, {}, t) == {}
    assert roundtrip_flat(env, [], t) == {}
    # An empty map is a (pointer, 0) list like any other empty list.
    assert lower_flat(env.cx, {}, t)[1] == 0


def test_memory_bytes_equal_the_list_of_pairs() -> None:
    t = MapType(STRING, U32)
    env_map, env_list = Env(), Env()
    store(env_map.cx, {"ab": 7, "c": 9}, t, 0)
    store(env_list.cx, [("ab", 7), ("c", 9)], t.as_list(), 0)
    assert bytes(env_map.memory.view()) == bytes(env_list.memory.view())
    # And a list of pairs written by the guest loads as the map.
    assert load(env_list.cx, 0, t) == {"ab": 7, "c": 9}


def test_lowering_accepts_mappings_and_pair_iterables() -> None:
    env = Env()
    t = MapType(U32, STRING)
    expected = {1: "a", 2: "b"}
    assert roundtrip_flat(env, [(1, "a"), (2, "b")], t) == expected
    assert roundtrip_flat(env, [[1, "a"], [2, "b"]], t) == expected
    assert roundtrip_flat(env, ((k, v) for k, v in expected.items()), t) == expected
    assert roundtrip_memory(env, iter(expected.items()), t) == expected


@pytest.mark.parametrize(
    "v", ["ab", b"ab", 5, None, [(1,)], [(1, "a", 2)], {"not-u32": "a"}, {1: 2}, {2**32: "a"}]
)
def test_bad_host_values_raise_value_error(v: Any) -> None:
    t = MapType(U32, STRING)
    with pytest.raises(ValueError):
        lower_flat(Env().cx, v, t)
    with pytest.raises(ValueError):
        store(Env().cx, v, t, 0)


def store_pairs(env: Env, pairs: list[tuple[Any, Any]], t: MapType) -> list[int]:
    """Lower ``pairs`` as the list a guest would write; the flat (pointer, length)."""
    return [int(x) for x in lower_flat(env.cx, pairs, t.as_list())]


def test_duplicate_keys_last_value_wins() -> None:
    env = Env()
    t = MapType(STRING, U32)
    pairs = [("z", 26), ("k", 1), ("k", 2), ("a", 0)]
    out = lift_flat(env.cx, CoreValueIter(store_pairs(env, pairs, t)), t)
    assert type(out) is DuplicateKeyMap
    assert isinstance(out, dict)
    assert out == {"z": 26, "k": 2, "a": 0}
    assert list(out) == ["z", "k", "a"]
    assert out.pairs == tuple(pairs)
    assert "DuplicateKeyMap" in repr(out)


def test_duplicate_pairs_survive_lift_then_lower() -> None:
    # The path of a call between two components: lift from one memory, lower into another.
    src, dst = Env(), Env()
    t = MapType(STRING, MapType(STRING, ListType(U8)))
    inner = [("d", b"\x07\x08"), ("d", b"\x09")]
    pairs = [("k", [("d", b"\x00")]), ("k", inner)]
    value = load_via_list(src, pairs, t)
    assert value == {"k": {"d": b"\x09"}}
    for lowered in (lower_flat(dst.cx, value, t), lower_flat_values(dst.cx, 16, [value], [t])):
        back = lift_flat(dst.cx, CoreValueIter(lowered), t.as_list())
        assert back == [("k", {"d": b"\x00"}), ("k", {"d": b"\x09"})]
        assert back[1][1].pairs == tuple(inner)
    ptr = dst.realloc(0, 0, 4, 8)
    store(dst.cx, value, t, ptr)
    stored = load(dst.cx, ptr, t.as_list())
    assert [k for k, _ in stored] == ["k", "k"]
    assert stored[0][1] == {"d": b"\x00"}
    assert stored[1][1].pairs == tuple(inner)


def load_via_list(env: Env, pairs: list[tuple[Any, Any]], t: MapType) -> Any:
    ptr = env.realloc(0, 0, 4, 8)
    store(env.cx, pairs, t.as_list(), ptr)
    return load(env.cx, ptr, t)


def test_a_changed_duplicate_map_lowers_its_contents() -> None:
    env = Env()
    t = MapType(U32, U32)
    value = load_via_list(env, [(1, 10), (1, 11), (2, 20)], t)
    assert type(value) is DuplicateKeyMap
    value[2] = 21
    back = lift_flat(env.cx, CoreValueIter(lower_flat(env.cx, value, t)), t.as_list())
    assert back == [(1, 11), (2, 21)]

    # Copies keep the pairs (and so still lower them while unchanged).
    fresh = load_via_list(env, [(1, 10), (1, 11)], t)
    duplicate = copy.copy(fresh)
    assert type(duplicate) is DuplicateKeyMap
    assert duplicate.pairs == ((1, 10), (1, 11))
    back = lift_flat(env.cx, CoreValueIter(lower_flat(env.cx, duplicate, t)), t.as_list())
    assert back == [(1, 10), (1, 11)]


def test_spilled_parameters_with_maps() -> None:
    env = Env()
    t = MapType(CHAR, S64)
    ts = [t] * 9  # 18 flat values: past MAX_FLAT_PARAMS, so spilled to memory
    values = [{"a": i, "b": -i} for i in range(9)]
    flat = lower_flat_values(env.cx, 16, values, ts)
    assert len(flat) == 1
    assert lift_flat_values(env.cx, 16, flat, ts) == values


def test_lifting_checks_the_pair_list() -> None:
    env = Env()
    t = MapType(U8, U64)  # pairs of 16 bytes, aligned to 8
    with pytest.raises(Trap, match="unaligned pointer"):
        lift_flat(env.cx, CoreValueIter([4, 1]), t)
    with pytest.raises(Trap, match="list content out-of-bounds"):
        lift_flat(env.cx, CoreValueIter([65536 - 8, 1]), t)
    view = env.memory.view()
    view[0:4] = (0xD800).to_bytes(4, "little")
    with pytest.raises(Trap, match="invalid `char` bit pattern"):
        load(env.cx, 0, MapType(CHAR, U8).as_list().element)  # the pair loader traps
    view[16:24] = (0).to_bytes(4, "little") + (1).to_bytes(4, "little")
    with pytest.raises(Trap, match="invalid `char` bit pattern"):
        load(env.cx, 16, MapType(CHAR, U8))


# ---------------------------------------------------------------------------
# Resolution


def test_resolve_map_deftype() -> None:
    space = TypeSpace()
    space.types.append(T_LIST_U8 := ListType(U8))
    t = resolve_deftype(space, M.Map(M.Prim.STRING, M.TypeIndex(0)))
    assert t == MapType(STRING, T_LIST_U8)
    assert describe(t) == "map<string, list<u8>>"
    nested = MapType(U32, MapType(CHAR, OptionType(BOOL)))
    assert describe(nested) == "map<u32, map<char, option<bool>>>"


def test_resolve_rejects_a_non_key_type() -> None:
    space = TypeSpace()
    space.types.append(ListType(U8))
    with pytest.raises(LinkError, match="list<u8> cannot be a map key"):
        resolve_deftype(space, M.Map(M.TypeIndex(0), M.Prim.U8))


# ---------------------------------------------------------------------------
# A component: maps from and to the host, and a guest list with a repeated key.

WAT = r"""
(component
  (import "take" (func $take (param "m" (map u32 string)) (result u32)))
  (core module $Mem
    (memory (export "mem") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $r i32)
      (global.set $next (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
      (local.set $r (global.get $next))
      (global.set $next (i32.add (global.get $next) (local.get 3)))
      (local.get $r))
    (data (i32.const 200) "abc")
    ;; (1, "a") (2, "b") (1, "c"): pairs of (u32, string), 12 bytes each
    (data (i32.const 256)
      "\01\00\00\00\c8\00\00\00\01\00\00\00"
      "\02\00\00\00\c9\00\00\00\01\00\00\00"
      "\01\00\00\00\ca\00\00\00\01\00\00\00")
    (func (export "echo") (param i32 i32) (result i32)
      (i32.store (i32.const 0) (local.get 0))
      (i32.store (i32.const 4) (local.get 1))
      (i32.const 0))
  )
  (core instance $mem (instantiate $Mem))
  (core func $take_lowered (canon lower (func $take) (memory (core memory $mem "mem"))))
  (core module $Caller
    (import "" "take" (func $take (param i32 i32) (result i32)))
    (func (export "send") (result i32) (call $take (i32.const 256) (i32.const 3))))
  (core instance $caller
    (instantiate $Caller (with "" (instance (export "take" (func $take_lowered))))))
  (func (export "echo") (param "m" (map string u32)) (result (map string u32))
    (canon lift (core func $mem "echo") (memory (core memory $mem "mem"))
      (realloc (core func $mem "realloc"))))
  (func (export "send") (result u32) (canon lift (core func $caller "send")))
)
"""


@pytest.fixture(scope="module")
def component() -> Any:
    engine = trio_wasi.Engine()
    return engine, trio_wasi.Component.from_wat(WAT, engine=engine)


async def test_component_echoes_a_map(component: Any) -> None:
    engine, comp = component
    linker = trio_wasi.Linker(engine)
    linker.define_function(None, "take", lambda m: len(m))
    async with linker.instantiate(comp) as instance:
        value = {"x": 1, "y": 2**32 - 1, "": 0}
        out = await instance.call("echo", value)
        assert out == value
        assert list(out) == ["x", "y", ""]
        assert await instance.call("echo", {}) == {}
        assert await instance.call("echo", [("k", 1), ("k", 2)]) == {"k": 2}


async def test_component_passes_a_repeated_key_to_the_host(component: Any) -> None:
    engine, comp = component
    seen: list[Any] = []

    def take(m: Any) -> int:
        seen.append(m)
        return len(m)

    linker = trio_wasi.Linker(engine)
    linker.define_function(None, "take", take)
    async with linker.instantiate(comp) as instance:
        assert await instance.call("send") == 2
    (m,) = seen
    assert m == {1: "c", 2: "b"}
    assert m.pairs == ((1, "a"), (2, "b"), (1, "c"))
