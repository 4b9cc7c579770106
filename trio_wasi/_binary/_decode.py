"""The component binary decoder: ``bytes`` in, a :class:`Component` out.

It implements the productions of Binary.md and only the rules that make a
binary *malformed*: bad preambles, unknown section ids and opcodes, sizes that
do not match their contents, bad LEB128 or UTF-8, vectors longer than the
input. Everything else (index bounds, type checking, name rules) is validation
and happens later, so a decoded component may still be invalid.

Where the binary format text and wasm-tools (the encoder behind every real
toolchain) disagree, the decoder follows wasm-tools so that whatever it
produces and accepts decodes:

- an ``externtype`` of sort value carries a plain ``valtype``;
- ``thread.spawn-ref``/``thread.spawn-indirect``/``thread.available-parallelism``
  carry no ``shared`` byte;
- ``stream.forward`` (0x2e) and ``future.forward`` (0x2f), and the canonopts
  ``core-type`` (0x08) and ``gc`` (0x09), are accepted;
- inside a core module type, a type declarator is a plain ``core:rectype``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from trio_wasi._binary._core import core_deftype, core_valtype
from trio_wasi._binary._model import (
    Alias,
    AliasCoreExport,
    AliasDecl,
    AliasInstanceExport,
    AliasOuter,
    Borrow,
    Canon,
    CanonBuiltin,
    CanonLift,
    CanonLower,
    CanonOptionList,
    ComponentType,
    CoreInlineExport,
    CoreInlineInstance,
    CoreInstantiate,
    CoreModule,
    CoreTypeDeclarator,
    CoreTypeDef,
    CustomSection,
    Decl,
    DecodedComponent,
    Definition,
    DefType,
    Enum,
    Export,
    ExportDecl,
    ExternType,
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
    StringEncoding,
    Tuple,
    TypeBound,
    TypeDecl,
    TypeDef,
    TypeIndex,
    ValType,
    Value,
    ValueBound,
    VariantDef,
)
from trio_wasi._binary._reader import EOF, Reader
from trio_wasi._errors import DecodeError

__all__ = ["decode_component"]

MAGIC: Final = b"\x00asm"
COMPONENT_VERSION: Final = 0x0D
COMPONENT_LAYER: Final = 0x01
CORE_MODULE_PREAMBLE: Final = b"\x00asm\x01\x00\x00\x00"

# Nested components and nested component/instance types recurse; real
# binaries nest a handful of levels, so this only stops hostile input from
# exhausting the Python stack.
MAX_NESTING: Final = 100


def decode_component(data: bytes | bytearray | memoryview) -> DecodedComponent:
    """Decode a component binary (Binary.md, Component Definitions).

    Raises :class:`~trio_wasi.DecodeError` with the byte offset of the first
    malformed construct. Core modules are kept as bytes, not parsed.
    """
    if isinstance(data, memoryview):
        if not data.c_contiguous:
            data = data.tobytes()
        elif data.format != "B" or data.ndim != 1:
            data = data.cast("B")
    elif not isinstance(data, bytes):
        # A mutable buffer could change under the decoder: take a snapshot.
        data = bytes(data)
    try:
        return _component(Reader(data), 0)
    except RecursionError:
        # MAX_NESTING keeps the decoder's own depth to a few hundred frames;
        # this only happens when the caller was already deep in its stack.
        raise DecodeError(
            "definitions nested too deeply for the remaining Python stack", 0
        ) from None


# ---------------------------------------------------------------------------
# Component Definitions


def _preamble(r: Reader) -> None:
    """``preamble ::= magic version layer``, with a clear word for core modules."""
    start = r.pos
    head = bytes(r.data[start : min(start + 8, r.end)])
    if head[:4] != MAGIC[: len(head)]:
        raise DecodeError("magic header not detected: not a WebAssembly binary", start)
    if len(head) < 8:
        raise DecodeError(EOF, r.end)
    version = head[4] | head[5] << 8
    layer = head[6] | head[7] << 8
    if layer == 0 and version == 1:
        raise DecodeError(
            "expected a version header for a component: this is a core WebAssembly "
            "module, not a component",
            start + 4,
        )
    if layer != COMPONENT_LAYER:
        raise DecodeError(f"unknown binary layer 0x{layer:x}", start + 6)
    if version != COMPONENT_VERSION:
        raise DecodeError(f"unknown binary version 0x{version:x}", start + 4)
    r.pos = start + 8


def _component(r: Reader, depth: int) -> DecodedComponent:
    if depth > MAX_NESTING:
        raise r.error("components nested too deeply")
    offset = r.pos
    _preamble(r)
    defs: list[Definition] = []
    while not r.at_end():
        section_start = r.pos
        handler = _SECTIONS.get(r.u8())
        if handler is None:
            raise r.error("malformed section id", section_start)
        body = r.sub(r.u32())
        handler(body, defs, depth)
        body.expect_end("section")
    return DecodedComponent(tuple(defs), offset)


def _custom_section(r: Reader, defs: list[Definition], depth: int) -> None:
    # The contents are never interpreted: an invalid name section is not an error.
    name = r.name()
    defs.append(CustomSection(name, r.read_bytes(r.remaining)))


def _module_section(r: Reader, defs: list[Definition], depth: int) -> None:
    start = r.pos
    head = bytes(r.data[start : min(start + 8, r.end)])
    if head != CORE_MODULE_PREAMBLE:
        if CORE_MODULE_PREAMBLE.startswith(head):
            raise DecodeError(EOF, r.end)
        raise DecodeError("expected a version header for a module", start)
    _core_section_order(Reader(r.data, start + len(CORE_MODULE_PREAMBLE), r.end))
    defs.append(CoreModule(r.read_view(r.remaining), start))


# The rank of each known core section id in the order a module must list them
# (core spec, Binary Format, Modules; the tag section sits after memories).
# Custom sections (0) may appear anywhere, unknown ids are left to the engine.
_CORE_SECTION_RANK: Final = {
    sid: rank for rank, sid in enumerate((1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11))
}


def _core_section_order(r: Reader) -> None:
    """An embedded core module lists each known section at most once and in order.

    The module's contents stay opaque (the core engine decodes them); only the
    section framing is walked, and a framing that ends early is also left to
    the engine, which reports it in its own words.
    """
    last = -1
    while not r.at_end():
        at = r.pos
        try:
            sid = r.u8()
            size = r.u32()
            r.sub(size)
        except DecodeError:
            return
        rank = _CORE_SECTION_RANK.get(sid)
        if rank is None:
            continue
        if rank <= last:
            raise DecodeError("section out of order", at)
        last = rank


def _component_section(r: Reader, defs: list[Definition], depth: int) -> None:
    defs.append(NestedComponent(_component(r, depth + 1)))


def _vec_section(
    item: Callable[[Reader], Definition],
) -> Callable[[Reader, list[Definition], int], None]:
    def section(r: Reader, defs: list[Definition], depth: int) -> None:
        for _ in range(r.count()):
            defs.append(item(r))

    return section


def _type_section(r: Reader, defs: list[Definition], depth: int) -> None:
    for _ in range(r.count()):
        defs.append(TypeDef(_deftype(r, depth)))


# ---------------------------------------------------------------------------
# Instance Definitions


def _core_instance(r: Reader) -> Definition:
    """``core:instance`` (Binary.md, Instance Definitions)."""
    start = r.pos
    b = r.u8()
    if b == 0x00:
        module = r.u32()
        return CoreInstantiate(module, r.vec(_core_instantiate_arg))
    if b == 0x01:
        return CoreInlineInstance(r.vec(_core_inline_export))
    raise r.invalid_byte(b, "core instance", start)


def _core_instantiate_arg(r: Reader) -> tuple[str, int]:
    name = r.name()
    at = r.pos
    kind = r.u8()
    if kind != 0x12:
        raise r.invalid_byte(kind, "instantiation arg kind", at)
    return name, r.u32()


_V = TypeVar("_V")


def _lookup(r: Reader, table: Mapping[int, _V], b: int, production: str, at: int) -> _V:
    """``table[b]`` for byte ``b`` read at ``at``; the invalid-byte error if it has none."""
    value = table.get(b)
    if value is None:
        raise r.invalid_byte(b, production, at)
    return value


_CORE_EXTERNAL_SORTS: Final = {
    0x00: Sort.CORE_FUNC,
    0x01: Sort.CORE_TABLE,
    0x02: Sort.CORE_MEMORY,
    0x03: Sort.CORE_GLOBAL,
    0x04: Sort.CORE_TAG,
}


def _core_external_sort(r: Reader) -> Sort:
    """The ``core:sort``s a core instance can export: func, table, memory, global, tag."""
    at = r.pos
    return _lookup(r, _CORE_EXTERNAL_SORTS, r.u8(), "external kind", at)


def _core_inline_export(r: Reader) -> CoreInlineExport:
    name = r.name()
    sort = _core_external_sort(r)
    return CoreInlineExport(name, sort, r.u32())


_SORTS: Final = {
    0x01: Sort.FUNC,
    0x02: Sort.VALUE,
    0x03: Sort.TYPE,
    0x04: Sort.COMPONENT,
    0x05: Sort.INSTANCE,
}


def _sort(r: Reader) -> Sort:
    """The ``sort`` of a ``sortidx``: the component sorts plus ``core module``."""
    at = r.pos
    b1 = r.u8()
    b2 = r.u8() if b1 == 0x00 else None
    return _sort_of(r, b1, b2, at)


def _instance(r: Reader) -> Definition:
    """``instance`` (Binary.md, Instance Definitions)."""
    start = r.pos
    b = r.u8()
    if b == 0x00:
        component = r.u32()
        return Instantiate(component, r.vec(_instantiate_arg))
    if b == 0x01:
        return InlineInstance(r.vec(_inline_export))
    raise r.invalid_byte(b, "instance", start)


def _instantiate_arg(r: Reader) -> InstantiateArg:
    name = r.name()
    sort = _sort(r)
    return InstantiateArg(name, sort, r.u32())


def _inline_export(r: Reader) -> InlineExport:
    name = _extern_name(r)
    sort = _sort(r)
    return InlineExport(name, sort, r.u32())


# ---------------------------------------------------------------------------
# Alias Definitions


def _alias(r: Reader) -> Alias:
    """``alias`` (Binary.md, Alias Definitions)."""
    start = r.pos
    b1 = r.u8()
    b2 = r.u8() if b1 == 0x00 else None
    target_at = r.pos
    target = r.u8()
    if target == 0x00:
        sort = _sort_of(r, b1, b2, start)
        instance = r.u32()
        return AliasInstanceExport(sort, instance, r.name())
    if target == 0x01:
        if b2 is None:
            raise r.invalid_byte(b1, "core instance export kind", start)
        core_sort = _lookup(r, _CORE_EXTERNAL_SORTS, b2, "external kind", start + 1)
        instance = r.u32()
        return AliasCoreExport(core_sort, instance, r.name())
    if target == 0x02:
        outer = _outer_alias_sort(r, b1, b2, start)
        count = r.u32()
        return AliasOuter(outer, count, r.u32())
    raise r.invalid_byte(target, "alias", target_at)


def _sort_of(r: Reader, b1: int, b2: int | None, at: int) -> Sort:
    """The ``sort`` whose bytes ``b1`` (and ``b2`` after 0x00) were read at ``at``."""
    if b2 is not None:
        if b2 != 0x11:
            raise r.invalid_byte(b2, "component external kind", at + 1)
        return Sort.CORE_MODULE
    return _lookup(r, _SORTS, b1, "component external kind", at)


_OUTER_SORTS: Final = {0x03: Sort.TYPE, 0x04: Sort.COMPONENT}
_OUTER_CORE_SORTS: Final = {0x10: Sort.CORE_TYPE, 0x11: Sort.CORE_MODULE}


def _outer_alias_sort(r: Reader, b1: int, b2: int | None, at: int) -> Sort:
    """Only types, modules and components can be aliased from an outer scope."""
    if b2 is not None:
        return _lookup(r, _OUTER_CORE_SORTS, b2, "component outer alias kind", at + 1)
    return _lookup(r, _OUTER_SORTS, b1, "component outer alias kind", at)


def _alias_definition(r: Reader) -> Definition:
    return _alias(r)


# ---------------------------------------------------------------------------
# Type Definitions

_PRIMS: Final = {
    0x7F: Prim.BOOL,
    0x7E: Prim.S8,
    0x7D: Prim.U8,
    0x7C: Prim.S16,
    0x7B: Prim.U16,
    0x7A: Prim.S32,
    0x79: Prim.U32,
    0x78: Prim.S64,
    0x77: Prim.U64,
    0x76: Prim.F32,
    0x75: Prim.F64,
    0x74: Prim.CHAR,
    0x73: Prim.STRING,
    0x64: Prim.ERROR_CONTEXT,
}


def _valtype(r: Reader) -> ValType:
    """``valtype ::= typeidx | primvaltype`` (negative SLEB128 codes are primitives)."""
    start = r.pos
    b = r.peek()
    prim = _PRIMS.get(b)
    if prim is not None:
        r.pos = start + 1
        return prim
    index = r.s33()
    if index < 0:
        raise r.invalid_byte(b, "component value type", start)
    return TypeIndex(index)


def _optional_valtype(r: Reader) -> ValType | None:
    at = r.pos
    b = r.u8()
    if b == 0x00:
        return None
    if b == 0x01:
        return _valtype(r)
    raise r.invalid_byte(b, "optional component value type", at)


def _label_valtype(r: Reader) -> tuple[str, ValType]:
    label = r.name()
    return label, _valtype(r)


def _case(r: Reader) -> tuple[str, ValType | None]:
    label = r.name()
    payload = _optional_valtype(r)
    at = r.pos
    b = r.u8()
    if b != 0x00:
        raise r.invalid_byte(b, "zero byte required", at)
    return label, payload


def _name(r: Reader) -> str:
    return r.name()


def _defvaltype(r: Reader, b: int, start: int) -> DefType:
    """``defvaltype`` after its opcode ``b`` (Binary.md, Type Definitions)."""
    if b == 0x72:
        return Record(r.vec(_label_valtype))
    if b == 0x71:
        return VariantDef(r.vec(_case))
    if b == 0x70:
        return List(_valtype(r))
    if b == 0x67:
        element = _valtype(r)
        return List(element, r.u32())
    if b == 0x6F:
        return Tuple(r.vec(_valtype))
    if b == 0x6E:
        return Flags(r.vec(_name))
    if b == 0x6D:
        return Enum(r.vec(_name))
    if b == 0x6B:
        return Option(_valtype(r))
    if b == 0x6A:
        ok = _optional_valtype(r)
        return Result(ok, _optional_valtype(r))
    if b == 0x69:
        return Own(r.u32())
    if b == 0x68:
        return Borrow(r.u32())
    if b == 0x66:
        return Stream(_optional_valtype(r))
    if b == 0x65:
        return Future(_optional_valtype(r))
    if b == 0x63:
        key = _valtype(r)
        return Map(key, _valtype(r))
    raise r.invalid_byte(b, "component defined type", start)


def _resultlist(r: Reader) -> ValType | None:
    at = r.pos
    b = r.u8()
    if b == 0x00:
        return _valtype(r)
    if b == 0x01:
        at = r.pos
        b = r.u8()
        if b != 0x00:
            raise r.invalid_byte(b, "number of results", at)
        return None
    raise r.invalid_byte(b, "component function results", at)


def _deftype(r: Reader, depth: int) -> DefType:
    """``deftype`` (Binary.md, Type Definitions)."""
    start = r.pos
    b = r.u8()
    prim = _PRIMS.get(b)
    if prim is not None:
        return prim
    if b == 0x3F:
        rep = core_valtype(r)
        at = r.pos
        flag = r.u8()
        if flag == 0x00:
            return ResourceTypeDef(rep, None)
        if flag == 0x01:
            return ResourceTypeDef(rep, r.u32())
        raise r.invalid_byte(flag, "resource destructor", at)
    if b == 0x40 or b == 0x43:
        params = r.vec(_label_valtype)
        return FuncTypeDef(params, _resultlist(r), is_async=b == 0x43)
    if b == 0x41 or b == 0x42:
        if depth >= MAX_NESTING:
            raise r.error("component types nested too deeply", start)
        component = b == 0x41
        # A plain loop, not ``r.vec``: each level of type nesting then costs
        # two Python frames (this one and ``_decl``), which keeps the deepest
        # accepted nesting far from the interpreter's recursion limit.
        decls: list[Decl] = []
        for _ in range(r.count()):
            decls.append(_decl(r, depth + 1, component))
        return ComponentType(tuple(decls)) if component else InstanceType(tuple(decls))
    return _defvaltype(r, b, start)


def _decl(r: Reader, depth: int, component: bool) -> Decl:
    """``componentdecl`` / ``instancedecl``; imports only in component types."""
    start = r.pos
    b = r.u8()
    if b == 0x03 and component:
        name = _extern_name(r)
        return ImportDecl(name, _externtype(r))
    if b == 0x00:
        return CoreTypeDeclarator(core_deftype(r))
    if b == 0x01:
        return TypeDecl(_deftype(r, depth))
    if b == 0x02:
        return AliasDecl(_alias(r))
    if b == 0x04:
        name = _extern_name(r)
        return ExportDecl(name, _externtype(r))
    raise r.invalid_byte(b, "component or instance type declaration", start)


def _externtype(r: Reader) -> ExternType:
    """``externtype`` (Binary.md, Type Definitions)."""
    at = r.pos
    b = r.u8()
    if b == 0x00:
        b2 = r.u8()
        if b2 != 0x11:
            raise r.invalid_byte(b2, "component external kind", at + 1)
        return SortType(Sort.CORE_MODULE, r.u32())
    if b == 0x01:
        return SortType(Sort.FUNC, r.u32())
    if b == 0x02:
        # wasm-tools writes the value type itself here, without a bound byte.
        return ValueBound(None, _valtype(r))
    if b == 0x03:
        bound_at = r.pos
        bound = r.u8()
        if bound == 0x00:
            return TypeBound(r.u32())
        if bound == 0x01:
            return TypeBound(None)
        raise r.invalid_byte(bound, "type bound", bound_at)
    if b == 0x04:
        return SortType(Sort.COMPONENT, r.u32())
    if b == 0x05:
        return SortType(Sort.INSTANCE, r.u32())
    raise r.invalid_byte(b, "component external kind", at)


# ---------------------------------------------------------------------------
# Canonical Definitions

_STRING_ENCODINGS: Final[dict[int, StringEncoding]] = {
    0x00: "utf8",
    0x01: "utf16",
    0x02: "latin1+utf16",
}
_OPTION_NAMES: Final = {
    0x03: "memory",
    0x04: "realloc",
    0x05: "post-return",
    0x06: "async",
    0x07: "callback",
    0x08: "core-type",
    0x09: "gc",
}


def _opts(r: Reader) -> CanonOptionList:
    """``opts ::= vec(canonopt)``, folded into one record."""
    encoding: StringEncoding = "utf8"
    encoding_given = False
    values: dict[str, int | None] = {}
    repeated: list[str] = []
    for _ in range(r.count()):
        at = r.pos
        b = r.u8()
        enc = _STRING_ENCODINGS.get(b)
        if enc is not None:
            if encoding_given and "string-encoding" not in repeated:
                repeated.append("string-encoding")
            encoding = enc
            encoding_given = True
            continue
        option = _lookup(r, _OPTION_NAMES, b, "canonical option", at)
        if option in values and option not in repeated:
            repeated.append(option)
        values[option] = r.u32() if b in (0x03, 0x04, 0x05, 0x07, 0x08) else None
    if not values and not encoding_given:
        return _NO_OPTIONS
    return CanonOptionList(
        string_encoding=encoding,
        memory=values.get("memory"),
        realloc=values.get("realloc"),
        post_return=values.get("post-return"),
        is_async="async" in values,
        callback=values.get("callback"),
        string_encoding_given=encoding_given,
        core_type=values.get("core-type"),
        gc="gc" in values,
        repeated=tuple(repeated),
    )


_NO_OPTIONS: Final = CanonOptionList()

# Built-ins whose only immediate is a type index (resource, stream, future).
_TYPED: Final = {
    0x02: "resource.new",
    0x03: "resource.drop",
    0x04: "resource.rep",
    0x0E: "stream.new",
    0x13: "stream.drop-readable",
    0x14: "stream.drop-writable",
    0x15: "future.new",
    0x1A: "future.drop-readable",
    0x1B: "future.drop-writable",
    0x2E: "stream.forward",
    0x2F: "future.forward",
}
# Built-ins with a type index and canonopts.
_TYPED_OPTS: Final = {
    0x0F: "stream.read",
    0x10: "stream.write",
    0x16: "future.read",
    0x17: "future.write",
}
# Built-ins with a type index and an ``async?`` flag.
_TYPED_ASYNC: Final = {
    0x11: "stream.cancel-read",
    0x12: "stream.cancel-write",
    0x18: "future.cancel-read",
    0x19: "future.cancel-write",
}
# Built-ins with no immediates at all.
_BARE: Final = {
    0x05: "task.cancel",
    0x0D: "subtask.drop",
    0x1E: "error-context.drop",
    0x1F: "waitable-set.new",
    0x22: "waitable-set.drop",
    0x23: "waitable.join",
    0x24: "backpressure.inc",
    0x25: "backpressure.dec",
    0x26: "thread.index",
    0x28: "thread.resume-later",
    0x42: "thread.available-parallelism",
}
# Built-ins with a ``cancel?`` flag only.
_CANCELLABLE: Final = {
    0x0C: "thread.yield",
    0x29: "thread.suspend",
    0x2A: "thread.suspend-then-resume",
    0x2B: "thread.yield-then-resume",
    0x2C: "thread.suspend-then-promote",
    0x2D: "thread.yield-then-promote",
}


def _canon(r: Reader) -> Canon:
    """``canon`` (Binary.md, Canonical Definitions)."""
    start = r.pos
    b = r.u8()
    if b == 0x00:
        at = r.pos
        sort = r.u8()
        if sort != 0x00:
            raise r.invalid_byte(sort, "canonical function lift", at)
        core_func = r.u32()
        options = _opts(r)
        return CanonLift(core_func, options, r.u32())
    if b == 0x01:
        at = r.pos
        sort = r.u8()
        if sort != 0x00:
            raise r.invalid_byte(sort, "canonical function lower", at)
        func = r.u32()
        return CanonLower(func, _opts(r))
    name = _TYPED.get(b)
    if name is not None:
        return CanonBuiltin(name, type_index=r.u32())
    name = _BARE.get(b)
    if name is not None:
        return CanonBuiltin(name)
    name = _TYPED_OPTS.get(b)
    if name is not None:
        type_index = r.u32()
        return CanonBuiltin(name, type_index=type_index, options=_opts(r))
    name = _TYPED_ASYNC.get(b)
    if name is not None:
        type_index = r.u32()
        return CanonBuiltin(name, type_index=type_index, is_async=r.flag())
    name = _CANCELLABLE.get(b)
    if name is not None:
        return CanonBuiltin(name, cancellable=r.flag())
    if b == 0x09:
        result = _resultlist(r)
        return CanonBuiltin("task.return", result=result, options=_opts(r))
    if b == 0x0A or b == 0x0B:
        valtype = core_valtype(r)
        name = "context.get" if b == 0x0A else "context.set"
        return CanonBuiltin(name, core_valtype=valtype, index=r.u32())
    if b == 0x06:
        return CanonBuiltin("subtask.cancel", is_async=r.flag())
    if b == 0x1C or b == 0x1D:
        name = "error-context.new" if b == 0x1C else "error-context.debug-message"
        return CanonBuiltin(name, options=_opts(r))
    if b == 0x20 or b == 0x21:
        cancellable = r.flag()
        name = "waitable-set.wait" if b == 0x20 else "waitable-set.poll"
        return CanonBuiltin(name, cancellable=cancellable, memory=r.u32())
    if b == 0x27:
        type_index = r.u32()
        return CanonBuiltin("thread.new-indirect", type_index=type_index, table=r.u32())
    if b == 0x40:
        return CanonBuiltin("thread.spawn-ref", type_index=r.u32())
    if b == 0x41:
        type_index = r.u32()
        return CanonBuiltin("thread.spawn-indirect", type_index=type_index, table=r.u32())
    raise r.invalid_byte(b, "canonical function", start)


def _canon_definition(r: Reader) -> Definition:
    return _canon(r)


# ---------------------------------------------------------------------------
# Start, Import and Export, Value Definitions


def _start_section(r: Reader, defs: list[Definition], depth: int) -> None:
    """``start`` (Binary.md, Start Definitions): one function, not a vector."""
    func = r.u32()
    args = r.vec(Reader.u32)
    defs.append(Start(func, args, r.u32()))


def _extern_name(r: Reader) -> Name:
    """``nameattributes`` (Binary.md, Import and Export Definitions)."""
    at = r.pos
    b = r.u8()
    if b == 0x00 or b == 0x01:
        return Name(r.name())
    if b != 0x02:
        raise r.invalid_byte(b, "component name", at)
    name = r.name()
    attributes: dict[int, str] = {}
    for _ in range(r.count()):
        attr_at = r.pos
        kind = r.u8()
        if kind > 0x02:
            raise r.invalid_byte(kind, "name option", attr_at)
        # A repeated option is well-formed; rejecting it is a name rule, so
        # validation's job. The first one is kept.
        attributes.setdefault(kind, r.name())
    return Name(
        name,
        implements=attributes.get(0x00),
        version_suffix=attributes.get(0x01),
        external_id=attributes.get(0x02),
    )


def _import(r: Reader) -> Definition:
    name = _extern_name(r)
    return Import(name, _externtype(r))


def _export(r: Reader) -> Definition:
    name = _extern_name(r)
    sort = _sort(r)
    index = r.u32()
    at = r.pos
    b = r.u8()
    if b == 0x00:
        return Export(name, sort, index, None)
    if b == 0x01:
        return Export(name, sort, index, _externtype(r))
    raise r.invalid_byte(b, "optional component export type", at)


def _value(r: Reader) -> Definition:
    """``value ::= t:valtype len:u32 v:val(t)``; the encoded value is kept as bytes."""
    valtype = _valtype(r)
    size = r.u32()
    return Value(valtype, r.read_bytes(size))


_SectionHandler = Callable[[Reader, list[Definition], int], None]

_SECTIONS: Final[dict[int, _SectionHandler]] = {
    0: _custom_section,
    1: _module_section,
    2: _vec_section(_core_instance),
    3: _vec_section(lambda r: CoreTypeDef(core_deftype(r))),
    4: _component_section,
    5: _vec_section(_instance),
    6: _vec_section(_alias_definition),
    7: _type_section,
    8: _vec_section(_canon_definition),
    9: _start_section,
    10: _vec_section(_import),
    11: _vec_section(_export),
    12: _vec_section(_value),
}
