"""Tests of the component binary decoder (trio_wasi._binary)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime

from trio_wasi._binary import DecodeError, decode_component
from trio_wasi._binary._model import (
    AliasCoreExport,
    AliasDecl,
    AliasInstanceExport,
    AliasOuter,
    Borrow,
    CanonBuiltin,
    CanonLift,
    CanonLower,
    CanonOptionList,
    ComponentType,
    CoreAliasDecl,
    CoreExportDecl,
    CoreExternType,
    CoreFuncType,
    CoreImportDecl,
    CoreInlineExport,
    CoreInlineInstance,
    CoreInstantiate,
    CoreModule,
    CoreModuleType,
    CoreOtherType,
    CoreTypeDecl,
    CoreTypeDef,
    CoreValType,
    CustomSection,
    DecodedComponent,
    Enum,
    Export,
    ExportDecl,
    Flags,
    FuncTypeDef,
    Future,
    Import,
    ImportDecl,
    InlineExport,
    InlineInstance,
    InstanceType,
    Instantiate,
    InstantiateArg,
    List,
    Map,
    Name,
    NestedComponent,
    Option,
    Own,
    Prim,
    Record,
    ResourceTypeDef,
    Result,
    Sort,
    SortType,
    Start,
    Stream,
    Tuple,
    TypeBound,
    TypeDecl,
    TypeDef,
    TypeIndex,
    Value,
    VariantDef,
)
from trio_wasi._binary._reader import Reader

REPO = Path(__file__).resolve().parent.parent
PREAMBLE = b"\x00asm\x0d\x00\x01\x00"
CORE_PREAMBLE = b"\x00asm\x01\x00\x00\x00"


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def section(section_id: int, body: bytes) -> bytes:
    return bytes([section_id]) + uleb(len(body)) + body


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def name(text: str) -> bytes:
    data = text.encode()
    return uleb(len(data)) + data


def defs_of(data: bytes) -> tuple[object, ...]:
    """The definitions of a component, without its custom sections."""
    return tuple(d for d in decode_component(data).definitions if not isinstance(d, CustomSection))


# ---------------------------------------------------------------------------
# Reader


@pytest.mark.parametrize(
    ("encoded", "value"),
    [
        (b"\x00", 0),
        (b"\x7f", 127),
        (b"\x80\x01", 128),
        (b"\xff\xff\xff\xff\x0f", 0xFFFFFFFF),
        (b"\x81\x80\x80\x80\x00", 1),  # over-long but zero-padded: allowed
    ],
)
def test_u32_values(encoded: bytes, value: int) -> None:
    r = Reader(encoded)
    assert r.u32() == value
    assert r.at_end()


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        (b"\xff\xff\xff\xff\x1f", "integer too large"),
        (b"\x80\x80\x80\x80\x80\x00", "integer representation too long"),
        (b"\x80\x80", "unexpected end-of-file"),
        (b"", "unexpected end-of-file"),
    ],
)
def test_u32_malformed(encoded: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        Reader(encoded).u32()


@pytest.mark.parametrize(
    ("encoded", "value"),
    [
        (b"\x7f", -1),
        (b"\x40", -64),
        (b"\x3f", 63),
        (b"\x80\x7f", -128),
        (b"\xff\xff\xff\xff\x0f", 0xFFFFFFFF),
        (b"\x80\x80\x80\x80\x70", -(1 << 32)),
    ],
)
def test_s33_values(encoded: bytes, value: int) -> None:
    r = Reader(encoded)
    assert r.s33() == value
    assert r.at_end()


def test_s33_and_s64_bounds() -> None:
    with pytest.raises(DecodeError, match="integer too large"):
        Reader(b"\xff\xff\xff\xff\x1f").s33()  # bit 33 set without sign extension
    assert Reader(b"\xff" * 9 + b"\x7f").s64() == -1
    assert Reader(b"\x80" * 9 + b"\x7f").s64() == -(1 << 63)
    with pytest.raises(DecodeError, match="integer too large"):
        Reader(b"\x80" * 9 + b"\x01").s64()
    assert Reader(b"\xff" * 9 + b"\x01").u64() == (1 << 64) - 1
    with pytest.raises(DecodeError, match="integer too large"):
        Reader(b"\xff" * 9 + b"\x03").u64()


def test_reader_offsets_are_absolute() -> None:
    data = b"\x00\x00\x00\x02\xff\xfe"
    r = Reader(data, 3)
    with pytest.raises(DecodeError, match="malformed UTF-8") as info:
        r.name()
    assert info.value.offset == 4
    sub = Reader(data).sub(2)
    sub.u8()
    sub.u8()
    with pytest.raises(DecodeError) as info:
        sub.u8()
    assert info.value.offset == 2


def test_vector_count_is_checked_against_the_input() -> None:
    r = Reader(b"\xff\xff\xff\xff\x0f\x00")
    with pytest.raises(DecodeError, match="exceeds the input") as info:
        r.vec(Reader.u8)
    assert info.value.offset == 0


# ---------------------------------------------------------------------------
# Preamble and sections


def test_empty_component() -> None:
    assert decode_component(PREAMBLE) == DecodedComponent((), 0)
    assert decode_component(memoryview(PREAMBLE)) == DecodedComponent((), 0)
    assert decode_component(bytearray(PREAMBLE)) == DecodedComponent((), 0)


def test_core_module_where_a_component_is_expected() -> None:
    with pytest.raises(DecodeError, match="core WebAssembly module, not a component") as info:
        decode_component(wat("(module)"))
    assert info.value.offset == 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "end-of-file"),
        (b"\x00as", "end-of-file"),
        (b"\x00asm\x0d\x00", "end-of-file"),
        (b"\x00ASM\x0d\x00\x01\x00", "magic header"),
        (b"\x00asm\x0e\x00\x01\x00", "unknown binary version 0xe"),
        (b"\x00asm\x0d\x00\x02\x00", "unknown binary layer 0x2"),
    ],
)
def test_bad_preamble(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_component(data)


def test_section_size_must_match_contents() -> None:
    # One string type plus a stray byte inside the section.
    data = PREAMBLE + section(7, b"\x01\x73\x00")
    with pytest.raises(DecodeError, match="after the end of the section") as info:
        decode_component(data)
    assert info.value.offset == len(PREAMBLE) + 4
    with pytest.raises(DecodeError, match="end-of-file"):
        decode_component(PREAMBLE + b"\x07\x05\x01\x73")


def test_unknown_section_id() -> None:
    with pytest.raises(DecodeError, match="malformed section id") as info:
        decode_component(PREAMBLE + b"\x0d\x00")
    assert info.value.offset == 8


def test_custom_sections_keep_bytes_and_never_parse_them() -> None:
    data = (
        PREAMBLE
        + section(0, name("component-name") + b"\xff\xfe\x01")
        + section(0, name("other") + b"xyz")
    )
    assert decode_component(data).definitions == (
        CustomSection("component-name", b"\xff\xfe\x01"),
        CustomSection("other", b"xyz"),
    )


def test_start_and_value_sections() -> None:
    data = (
        PREAMBLE
        + section(12, b"\x02" + b"\x79\x01\x05" + b"\x73\x03\x02hi")
        + section(9, b"\x03\x02\x00\x01\x01")
    )
    assert decode_component(data).definitions == (
        Value(Prim.U32, b"\x05"),
        Value(Prim.STRING, b"\x02hi"),
        Start(3, (0, 1), 1),
    )


# ---------------------------------------------------------------------------
# Definitions built from WAT


def test_core_modules_are_views_of_the_binary_not_copies() -> None:
    data = wat('(component (core module (func (export "f"))))')
    (module,) = [d for d in decode_component(data).definitions if isinstance(d, CoreModule)]
    assert module.data.readonly
    assert module.data.obj is data  # a view of the caller's bytes
    assert module.data == data[module.offset : module.offset + len(module.data)]
    # A writable buffer is copied: changing it later leaves the model alone.
    buffer = bytearray(data)
    (copied,) = [
        d for d in decode_component(memoryview(buffer)).definitions if isinstance(d, CoreModule)
    ]
    before = bytes(copied.data)
    buffer[copied.offset + 8 :] = bytes(len(buffer) - copied.offset - 8)
    assert copied.data.readonly
    assert bytes(copied.data) == before


def test_core_modules_are_slices_with_absolute_offsets() -> None:
    data = wat(
        """
        (component
          (core module $a (func (export "f")))
          (component $inner
            (core module $b (memory (export "m") 1))
          )
        )
        """
    )
    comp = decode_component(data)
    outer = [d for d in comp.definitions if isinstance(d, CoreModule)]
    nested = [d for d in comp.definitions if isinstance(d, NestedComponent)]
    assert len(outer) == 1
    assert len(nested) == 1
    inner_modules = [d for d in nested[0].component.definitions if isinstance(d, CoreModule)]
    assert len(inner_modules) == 1
    for module in outer + inner_modules:
        assert bytes(module.data).startswith(CORE_PREAMBLE)
        assert data[module.offset : module.offset + len(module.data)] == module.data
    assert nested[0].component.offset > 0
    assert data[nested[0].component.offset :].startswith(PREAMBLE)
    assert inner_modules[0].offset > nested[0].component.offset


def test_core_instances_and_aliases() -> None:
    defs = defs_of(
        wat(
            """
            (component
              (core module $m
                (func (export "f"))
                (memory (export "mem") 1)
                (table (export "t") 1 funcref)
                (global (export "g") i32 (i32.const 0)))
              (core module $n (import "i" "f" (func)))
              (core instance $i (instantiate $m))
              (alias core export $i "f" (core func $f))
              (alias core export $i "mem" (core memory $mem))
              (alias core export $i "t" (core table $t))
              (alias core export $i "g" (core global $g))
              (core instance $x (export "f2" (func $f)) (export "m2" (memory $mem)))
              (core instance (instantiate $n (with "i" (instance $x))))
            )
            """
        )
    )
    assert defs[2:] == (
        CoreInstantiate(0, ()),
        AliasCoreExport(Sort.CORE_FUNC, 0, "f"),
        AliasCoreExport(Sort.CORE_MEMORY, 0, "mem"),
        AliasCoreExport(Sort.CORE_TABLE, 0, "t"),
        AliasCoreExport(Sort.CORE_GLOBAL, 0, "g"),
        CoreInlineInstance(
            (
                CoreInlineExport("f2", Sort.CORE_FUNC, 0),
                CoreInlineExport("m2", Sort.CORE_MEMORY, 0),
            )
        ),
        CoreInstantiate(1, (("i", 1),)),
    )


def test_defined_value_types() -> None:
    defs = defs_of(
        wat(
            """
            (component
              (type $r (record (field "a" u8) (field "b" string)))
              (type (variant (case "x" s64) (case "y")))
              (type (list $r))
              (type (list u8 4))
              (type (tuple bool char))
              (type (flags "p" "q"))
              (type (enum "e1" "e2"))
              (type (option f32))
              (type (result u32 (error string)))
              (type (result))
              (type (stream u8))
              (type (stream))
              (type (future string))
              (type (map string u64))
              (type error-context)
              (type f64)
            )
            """
        )
    )
    assert [d.type for d in defs if isinstance(d, TypeDef)] == [
        Record((("a", Prim.U8), ("b", Prim.STRING))),
        VariantDef((("x", Prim.S64), ("y", None))),
        List(TypeIndex(0)),
        List(Prim.U8, 4),
        Tuple((Prim.BOOL, Prim.CHAR)),
        Flags(("p", "q")),
        Enum(("e1", "e2")),
        Option(Prim.F32),
        Result(Prim.U32, Prim.STRING),
        Result(None, None),
        Stream(Prim.U8),
        Stream(None),
        Future(Prim.STRING),
        Map(Prim.STRING, Prim.U64),
        Prim.ERROR_CONTEXT,
        Prim.F64,
    ]


def test_resources_and_handles() -> None:
    defs = defs_of(
        wat(
            """
            (component
              (core module $m (func (export "dtor") (param i32)))
              (core instance $i (instantiate $m))
              (alias core export $i "dtor" (core func $dtor))
              (type $r (resource (rep i32) (dtor (core func $dtor))))
              (type $s (resource (rep i32)))
              (type (own $r))
              (type (borrow $s))
              (core func (canon resource.new $r))
              (core func (canon resource.drop $s))
              (core func (canon resource.rep $r))
              (export "r" (type $r))
            )
            """
        )
    )
    assert defs[3:] == (
        TypeDef(ResourceTypeDef(CoreValType.I32, 0)),
        TypeDef(ResourceTypeDef(CoreValType.I32, None)),
        TypeDef(Own(0)),
        TypeDef(Borrow(1)),
        CanonBuiltin("resource.new", type_index=0),
        CanonBuiltin("resource.drop", type_index=1),
        CanonBuiltin("resource.rep", type_index=0),
        Export(Name("r"), Sort.TYPE, 0, None),
    )


def test_function_component_and_instance_types() -> None:
    defs = defs_of(
        wat(
            """
            (component
              (type $f (func (param "a" u32) (param "b" string) (result bool)))
              (type $g (func async))
              (type $i (instance
                (type $t (record (field "x" u8)))
                (export "t" (type (eq $t)))
                (export "res" (type (sub resource)))
                (export "f" (func (param "v" $t)))
              ))
              (type $c (component
                (import "in" (instance (type $i)))
                (alias outer 1 $f (type $ff))
                (export "out" (func (type $ff)))
              ))
              (import "host" (instance (type $i)))
              (import "g" (func (type $g)))
              (alias export 0 "f" (func $hf))
            )
            """
        )
    )
    assert defs[0] == TypeDef(FuncTypeDef((("a", Prim.U32), ("b", Prim.STRING)), Prim.BOOL))
    assert defs[1] == TypeDef(FuncTypeDef((), None, is_async=True))
    instance_type = defs[2]
    assert isinstance(instance_type, TypeDef)
    assert instance_type.type == InstanceType(
        (
            TypeDecl(Record((("x", Prim.U8),))),
            ExportDecl(Name("t"), TypeBound(0)),
            ExportDecl(Name("res"), TypeBound(None)),
            TypeDecl(FuncTypeDef((("v", TypeIndex(0)),), None)),
            ExportDecl(Name("f"), SortType(Sort.FUNC, 3)),
        )
    )
    assert defs[3] == TypeDef(
        ComponentType(
            (
                AliasDecl(AliasOuter(Sort.TYPE, 1, 2)),
                ImportDecl(Name("in"), SortType(Sort.INSTANCE, 0)),
                AliasDecl(AliasOuter(Sort.TYPE, 1, 0)),
                ExportDecl(Name("out"), SortType(Sort.FUNC, 1)),
            )
        )
    )
    assert defs[4] == Import(Name("host"), SortType(Sort.INSTANCE, 2))
    assert defs[5] == Import(Name("g"), SortType(Sort.FUNC, 1))
    assert defs[6] == AliasInstanceExport(Sort.FUNC, 0, "f")


def test_core_types_and_module_types() -> None:
    defs = defs_of(
        wat(
            """
            (component
              (core type $ft (func (param i32 i64) (result f32)))
              (core type (module
                (type $t (func (param externref) (result funcref)))
                (import "env" "f" (func (type $t)))
                (import "env" "mem" (memory 1 2))
                (import "env" "tbl" (table 3 funcref))
                (import "env" "g" (global (mut i64)))
                (alias outer 1 $ft (type $outer))
                (export "run" (func (type $outer)))
              ))
              (core type (struct (field i32)))
            )
            """
        )
    )
    assert defs[0] == CoreTypeDef(
        CoreFuncType((CoreValType.I32, CoreValType.I64), (CoreValType.F32,))
    )
    assert defs[1] == CoreTypeDef(
        CoreModuleType(
            (
                CoreTypeDecl(CoreFuncType((CoreValType.EXTERNREF,), (CoreValType.FUNCREF,))),
                CoreImportDecl("env", "f", CoreExternType("func", type_index=0)),
                CoreImportDecl("env", "mem", CoreExternType("memory", minimum=1, maximum=2)),
                CoreImportDecl(
                    "env", "tbl", CoreExternType("table", valtype=CoreValType.FUNCREF, minimum=3)
                ),
                CoreImportDecl(
                    "env", "g", CoreExternType("global", valtype=CoreValType.I64, mutable=True)
                ),
                CoreAliasDecl(1, 0),
                CoreExportDecl("run", CoreExternType("func", type_index=1)),
            )
        )
    )
    gc_type = defs[2]
    assert isinstance(gc_type, CoreTypeDef)
    assert gc_type.type == CoreOtherType(b"\x5f\x01\x7f\x00")


def test_gc_rec_group_is_kept_raw_and_skipped_exactly() -> None:
    # (rec (type (sub (struct (field (mut i8)) (field (ref null 0))))) (type (array i16)))
    rec = b"\x4e\x02" + b"\x50\x00\x5f\x02\x78\x01\x63\x00\x00" + b"\x5e\x77\x00"
    sub = b"\x00\x50\x00\x60\x00\x00"
    data = PREAMBLE + section(3, b"\x03" + rec + sub + b"\x60\x00\x00")
    assert decode_component(data).definitions == (
        CoreTypeDef(CoreOtherType(rec)),
        CoreTypeDef(CoreOtherType(sub)),
        CoreTypeDef(CoreFuncType((), ())),
    )


def test_instances_and_nested_components() -> None:
    defs = defs_of(
        wat(
            """
            (component
              (import "f" (func $f))
              (component $c
                (import "x" (func))
                (export "y" (func 0))
              )
              (instance $i (instantiate $c (with "x" (func $f))))
              (instance (export "a" (func $f)) (export "i" (instance $i)))
              (alias export $i "y" (func))
              (export "c" (component $c))
            )
            """
        )
    )
    assert defs[:2] == (
        TypeDef(FuncTypeDef((), None)),
        Import(Name("f"), SortType(Sort.FUNC, 0)),
    )
    nested = defs[2]
    assert isinstance(nested, NestedComponent)
    inner = tuple(d for d in nested.component.definitions if not isinstance(d, CustomSection))
    assert inner == (
        TypeDef(FuncTypeDef((), None)),
        Import(Name("x"), SortType(Sort.FUNC, 0)),
        Export(Name("y"), Sort.FUNC, 0, None),
    )
    assert defs[3:] == (
        Instantiate(0, (InstantiateArg("x", Sort.FUNC, 0),)),
        InlineInstance(
            (InlineExport(Name("a"), Sort.FUNC, 0), InlineExport(Name("i"), Sort.INSTANCE, 0))
        ),
        AliasInstanceExport(Sort.FUNC, 0, "y"),
        Export(Name("c"), Sort.COMPONENT, 0, None),
    )


def test_canon_lift_lower_and_builtins() -> None:
    defs = defs_of(
        wat(
            """
            (component
              (type $s (stream u8))
              (type $fu (future string))
              (core module $m
                (memory (export "mem") 1)
                (table (export "tbl") 1 funcref)
                (func (export "run") (param i32 i32) (result i32) unreachable)
                (func (export "cb") (param i32 i32 i32) (result i32) unreachable)
                (func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable)
                (func (export "post") (param i32)))
              (core instance $i (instantiate $m))
              (alias core export $i "mem" (core memory $mem))
              (alias core export $i "tbl" (core table $tbl))
              (alias core export $i "run" (core func $run))
              (alias core export $i "cb" (core func $cb))
              (alias core export $i "realloc" (core func $realloc))
              (alias core export $i "post" (core func $post))
              (core type $ft (func (param i32)))
              (type $f (func async (param "x" string) (result u32)))
              (type $g (func (param "x" string) (result string)))
              (func $lifted (type $f) (canon lift (core func $run) async
                (callback (core func $cb)) (memory (core memory $mem))
                (realloc (core func $realloc))))
              (func (type $g) (canon lift (core func $run) string-encoding=utf16
                (memory (core memory $mem)) (realloc (core func $realloc))
                (post-return (core func $post))))
              (core func (canon lower (func $lifted) async (memory (core memory $mem))))
              (core func (canon task.return (result u32) (memory (core memory $mem))))
              (core func (canon task.cancel))
              (core func (canon context.get i32 0))
              (core func (canon context.set i32 1))
              (core func (canon backpressure.inc))
              (core func (canon waitable-set.new))
              (core func (canon waitable-set.wait (memory (core memory $mem))))
              (core func (canon waitable.join))
              (core func (canon stream.new $s))
              (core func (canon stream.read $s async (memory (core memory $mem))))
              (core func (canon stream.cancel-write $s async))
              (core func (canon future.drop-readable $fu))
              (core func (canon subtask.cancel async))
              (core func (canon subtask.drop))
              (core func (canon thread.yield))
              (core func (canon thread.index))
              (core func (canon thread.new-indirect $ft (core table $tbl)))
              (core func (canon error-context.new (memory (core memory $mem))
                string-encoding=latin1+utf16))
              (core func (canon error-context.drop))
            )
            """
        )
    )
    canons = [d for d in defs if isinstance(d, CanonLift | CanonLower | CanonBuiltin)]
    memory0 = CanonOptionList(memory=0)
    assert canons == [
        CanonLift(0, CanonOptionList(memory=0, realloc=2, is_async=True, callback=1), 2),
        CanonLift(
            0,
            CanonOptionList(
                string_encoding="utf16",
                string_encoding_given=True,
                memory=0,
                realloc=2,
                post_return=3,
            ),
            3,
        ),
        CanonLower(0, CanonOptionList(memory=0, is_async=True)),
        CanonBuiltin("task.return", result=Prim.U32, options=memory0),
        CanonBuiltin("task.cancel"),
        CanonBuiltin("context.get", core_valtype=CoreValType.I32, index=0),
        CanonBuiltin("context.set", core_valtype=CoreValType.I32, index=1),
        CanonBuiltin("backpressure.inc"),
        CanonBuiltin("waitable-set.new"),
        CanonBuiltin("waitable-set.wait", memory=0),
        CanonBuiltin("waitable.join"),
        CanonBuiltin("stream.new", type_index=0),
        CanonBuiltin("stream.read", type_index=0, options=CanonOptionList(memory=0, is_async=True)),
        CanonBuiltin("stream.cancel-write", type_index=0, is_async=True),
        CanonBuiltin("future.drop-readable", type_index=1),
        CanonBuiltin("subtask.cancel", is_async=True),
        CanonBuiltin("subtask.drop"),
        CanonBuiltin("thread.yield"),
        CanonBuiltin("thread.index"),
        CanonBuiltin("thread.new-indirect", type_index=0, table=0),
        CanonBuiltin(
            "error-context.new",
            options=CanonOptionList(
                string_encoding="latin1+utf16", string_encoding_given=True, memory=0
            ),
        ),
        CanonBuiltin("error-context.drop"),
    ]


def test_canon_flags_and_threads_from_bytes() -> None:
    body = (
        b"\x07"
        + b"\x0c\x01"  # thread.yield cancellable
        + b"\x20\x01\x02"  # waitable-set.wait cancellable (memory 2)
        + b"\x21\x00\x00"  # waitable-set.poll (memory 0)
        + b"\x2d\x01"  # thread.yield-then-promote cancellable
        + b"\x40\x03"  # thread.spawn-ref (core type 3)
        + b"\x41\x01\x02"  # thread.spawn-indirect (core type 1) (table 2)
        + b"\x42"  # thread.available-parallelism
    )
    assert decode_component(PREAMBLE + section(8, body)).definitions == (
        CanonBuiltin("thread.yield", cancellable=True),
        CanonBuiltin("waitable-set.wait", cancellable=True, memory=2),
        CanonBuiltin("waitable-set.poll", memory=0),
        CanonBuiltin("thread.yield-then-promote", cancellable=True),
        CanonBuiltin("thread.spawn-ref", type_index=3),
        CanonBuiltin("thread.spawn-indirect", type_index=1, table=2),
        CanonBuiltin("thread.available-parallelism"),
    )


def test_repeated_canon_options_are_recorded() -> None:
    # lower func 0 with utf8, utf16, (memory 0), (memory 1)
    body = b"\x01" + b"\x01\x00\x00" + b"\x04\x00\x01\x03\x00\x03\x01"
    (lower,) = decode_component(PREAMBLE + section(8, body)).definitions
    assert lower == CanonLower(
        0,
        CanonOptionList(
            string_encoding="utf16",
            string_encoding_given=True,
            memory=1,
            repeated=("string-encoding", "memory"),
        ),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x01\x07", "invalid leading byte (0x7) for canonical function"),
        (b"\x01\x0c\x02", "invalid boolean value"),
        (b"\x01\x01\x00\x00\x01\x0a", "invalid leading byte (0xa) for canonical option"),
        (b"\x01\x00\x01\x00\x00\x00", "canonical function lift"),
    ],
)
def test_malformed_canon(body: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode_component(PREAMBLE + section(8, body))


def test_name_attributes() -> None:
    imports = (
        b"\x03"
        + b"\x00"
        + name("a")
        + b"\x01\x00"
        + b"\x01"
        + name("b")
        + b"\x01\x00"
        + b"\x02"
        + name("c:d/e@1.2.3")
        + b"\x03"
        + b"\x00"
        + name("c:d/e")
        + b"\x01"
        + name("-rc.1")
        + b"\x02"
        + name("ext")
        + b"\x05\x01"
    )
    assert decode_component(PREAMBLE + section(10, imports)).definitions == (
        Import(Name("a"), SortType(Sort.FUNC, 0)),
        Import(Name("b"), SortType(Sort.FUNC, 0)),
        Import(
            Name("c:d/e@1.2.3", implements="c:d/e", version_suffix="-rc.1", external_id="ext"),
            SortType(Sort.INSTANCE, 1),
        ),
    )
    with pytest.raises(DecodeError, match="name option"):
        decode_component(PREAMBLE + section(10, b"\x01\x02" + name("a") + b"\x01\x03"))
    with pytest.raises(DecodeError, match="component name"):
        decode_component(PREAMBLE + section(10, b"\x01\x03" + name("a") + b"\x01\x00"))


def test_export_with_ascribed_type_and_core_module_sort() -> None:
    exports = (
        b"\x02"
        + b"\x00"
        + name("e")
        + b"\x01\x00"
        + b"\x01\x01\x00"
        + b"\x00"
        + name("m")
        + b"\x00\x11\x00"
        + b"\x00"
    )
    assert decode_component(PREAMBLE + section(11, exports)).definitions == (
        Export(Name("e"), Sort.FUNC, 0, SortType(Sort.FUNC, 0)),
        Export(Name("m"), Sort.CORE_MODULE, 0, None),
    )


def test_deep_nesting_is_a_decode_error() -> None:
    # 5000 instance types each containing the next: far beyond any real binary.
    depth = 5000
    body = b"\x42\x01\x01" * depth + b"\x73"
    data = PREAMBLE + section(7, b"\x01" + body)
    with pytest.raises(DecodeError, match="nested too deeply"):
        decode_component(data)
    inner = PREAMBLE
    for _ in range(300):
        inner = PREAMBLE + section(4, inner)
    with pytest.raises(DecodeError, match="nested too deeply"):
        decode_component(inner)


def test_nested_component_error_offsets_are_absolute() -> None:
    inner = PREAMBLE + section(7, b"\x01\x62")
    data = PREAMBLE + section(0, name("pad") + b"12345") + section(4, inner)
    with pytest.raises(DecodeError, match="0x62") as info:
        decode_component(data)
    assert info.value.offset == len(data) - 1


# ---------------------------------------------------------------------------
# The shared conformance suite


def _conformance_dir() -> Path | None:
    for candidate in (Path("/work/shared/conformance"), REPO.parent / "shared" / "conformance"):
        if candidate.is_dir():
            return candidate
    return None


def _wasm_tools() -> str | None:
    local = Path(sys.executable).parent / "wasm-tools"
    if local.exists():
        return str(local)
    return shutil.which("wasm-tools")


CONFORMANCE = _conformance_dir()
WAST_FILES = sorted(CONFORMANCE.rglob("*.wast")) if CONFORMANCE else []

# assert_malformed cases whose fault lies inside an embedded core module; core
# modules are kept as bytes here and rejected later by the core engine.
CORE_MODULE_LEVEL = {"section out of order"}


@pytest.mark.skipif(CONFORMANCE is None, reason="no shared conformance suite next to the repo")
@pytest.mark.parametrize("wast", WAST_FILES, ids=lambda p: p.name)
def test_conformance_binaries(wast: Path, tmp_path: Path) -> None:
    tool = _wasm_tools()
    if tool is None:
        pytest.skip("wasm-tools is not installed")
    out = tmp_path / "out.json"
    converted = subprocess.run(
        [tool, "json-from-wast", str(wast), "-o", str(out), "--wasm-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    if converted.returncode != 0:
        # Some vectors use text syntax newer or older than the installed wasm-tools.
        reason = (converted.stderr.strip().splitlines() or ["(no message)"])[0]
        pytest.skip(f"wasm-tools cannot convert {wast.name}: {reason}")
    checked = 0
    for command in json.loads(out.read_text())["commands"]:
        filename = command.get("filename")
        if command.get("module_type") != "binary" or not filename:
            continue
        data = (tmp_path / filename).read_bytes()
        kind = command["type"]
        if kind in ("module", "module_definition", "assert_uninstantiable"):
            assert isinstance(decode_component(data), DecodedComponent)
        elif kind == "assert_malformed" and command["text"] not in CORE_MODULE_LEVEL:
            with pytest.raises(DecodeError):
                decode_component(data)
        elif kind == "assert_invalid":
            # Invalid is not malformed: most decode, the rest fail cleanly.
            try:
                decode_component(data)
            except DecodeError:
                pass
        else:
            continue
        checked += 1
    assert checked > 0
