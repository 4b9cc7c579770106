"""Decoding of the core WebAssembly types a component can declare.

Components declare core function types and core module types (Binary.md, Type
Definitions: ``core:type``). GC forms (rec groups, sub types, struct, array
and continuation types) are parsed only far enough to find where they end and
are kept as raw bytes in :class:`CoreOtherType`.
"""

from __future__ import annotations

from typing import Final

from trio_wasi._binary._model import (
    CoreAliasDecl,
    CoreDefType,
    CoreExportDecl,
    CoreExternType,
    CoreFuncType,
    CoreImportDecl,
    CoreModuleType,
    CoreOtherType,
    CoreTypeDecl,
    CoreValType,
)
from trio_wasi._binary._reader import Reader

__all__ = ["core_deftype", "core_valtype"]

_NUMERIC: Final = {
    0x7F: CoreValType.I32,
    0x7E: CoreValType.I64,
    0x7D: CoreValType.F32,
    0x7C: CoreValType.F64,
    0x7B: CoreValType.V128,
}

# Abstract heap types: func, extern, any, none, noextern, nofunc, eq, struct,
# array, i31, exn, noexn, cont, nocont.
_ABSTRACT_HEAP: Final = frozenset(
    {0x70, 0x6F, 0x6E, 0x71, 0x72, 0x73, 0x6D, 0x6B, 0x6A, 0x6C, 0x69, 0x74, 0x68, 0x75}
)
_SHARED: Final = 0x65
_EXACT: Final = 0x62


def core_valtype(r: Reader) -> CoreValType:
    """``core:valtype`` (Core spec 5.3.4 Value Types, with the GC reference forms)."""
    start = r.pos
    b = r.u8()
    numeric = _NUMERIC.get(b)
    if numeric is not None:
        return numeric
    if b == 0x70:
        return CoreValType.FUNCREF
    if b == 0x6F:
        return CoreValType.EXTERNREF
    if b in _ABSTRACT_HEAP:
        return CoreValType.OTHER_REF
    if b == _SHARED:
        _abstract_heap(r)
        return CoreValType.OTHER_REF
    if b in (0x63, 0x64):
        heap = r.peek()
        abstract = _heap_type(r)
        # ``(ref null func)`` and ``(ref null extern)`` are funcref and externref.
        if b == 0x63 and abstract and heap == 0x70:
            return CoreValType.FUNCREF
        if b == 0x63 and abstract and heap == 0x6F:
            return CoreValType.EXTERNREF
        return CoreValType.OTHER_REF
    raise r.invalid_byte(b, "value type", start)


def _abstract_heap(r: Reader) -> None:
    start = r.pos
    b = r.u8()
    if b not in _ABSTRACT_HEAP:
        raise r.invalid_byte(b, "heap type", start)


def _heap_type(r: Reader) -> bool:
    """Skip a ``heaptype``; true when it is an unshared abstract one."""
    b = r.peek()
    if b in _ABSTRACT_HEAP:
        r.u8()
        return True
    if b == _SHARED:
        r.u8()
        _abstract_heap(r)
        return False
    if b == _EXACT:
        r.u8()
        r.u32()
        return False
    start = r.pos
    if r.s33() < 0:
        raise r.invalid_byte(b, "heap type", start)
    return False


def _storage_type(r: Reader) -> None:
    if r.peek() in (0x78, 0x77):  # packed i8 / i16
        r.u8()
    else:
        core_valtype(r)


def _field_type(r: Reader) -> None:
    _storage_type(r)
    start = r.pos
    if r.u8() > 1:
        raise r.error("malformed mutability byte for field type", start)


def _skip_composite(r: Reader, opcode: int) -> None:
    """Skip a ``comptype`` whose first byte was ``opcode`` (GC, shared, descriptors)."""
    start = r.pos - 1
    if opcode == _SHARED:
        start = r.pos
        opcode = r.u8()
    if opcode == 0x4C:  # describes
        r.u32()
        start = r.pos
        opcode = r.u8()
    if opcode == 0x4D:  # descriptor
        r.u32()
        start = r.pos
        opcode = r.u8()
    if opcode == 0x60:
        for _ in range(r.count()):
            core_valtype(r)
        for _ in range(r.count()):
            core_valtype(r)
    elif opcode == 0x5E:
        _field_type(r)
    elif opcode == 0x5F:
        for _ in range(r.count()):
            _field_type(r)
    elif opcode == 0x5D:
        if r.s33() < 0:
            raise r.error("invalid continuation type", start)
    else:
        raise r.invalid_byte(opcode, "type", start)


def _skip_subtype(r: Reader) -> None:
    b = r.u8()
    if b in (0x4F, 0x50):
        for _ in range(r.count()):
            r.u32()
        b = r.u8()
    _skip_composite(r, b)


def _skip_rectype(r: Reader) -> None:
    if r.peek() == 0x4E:
        r.u8()
        for _ in range(r.count()):
            _skip_subtype(r)
    else:
        _skip_subtype(r)


def _func_type(r: Reader) -> CoreFuncType:
    params = r.vec(core_valtype)
    results = r.vec(core_valtype)
    return CoreFuncType(params, results)


def _rectype(r: Reader) -> CoreDefType:
    """A ``core:rectype``: plain function types are decoded, the rest kept raw."""
    start = r.pos
    if r.peek() == 0x60:
        r.u8()
        return _func_type(r)
    _skip_rectype(r)
    return CoreOtherType(bytes(r.data[start : r.pos]))


def core_deftype(r: Reader) -> CoreDefType:
    """``core:deftype`` (Binary.md, Type Definitions).

    A bare 0x50 is a module type here; a non-final GC ``sub`` must carry a
    0x00 prefix in this position to tell the two apart.
    """
    start = r.pos
    b = r.peek()
    if b == 0x50:
        r.u8()
        return CoreModuleType(r.vec(_module_decl))
    if b == 0x00:
        r.u8()
        b = r.peek()
        if b != 0x50:
            raise r.invalid_byte(b, "non-final sub type", r.pos)
        _skip_subtype(r)
        return CoreOtherType(bytes(r.data[start : r.pos]))
    return _rectype(r)


def _module_decl(r: Reader) -> CoreImportDecl | CoreExportDecl | CoreAliasDecl | CoreTypeDecl:
    """``core:moduledecl`` (Binary.md, Type Definitions)."""
    start = r.pos
    b = r.u8()
    if b == 0x00:
        module = r.name()
        name = r.name()
        return CoreImportDecl(module, name, core_externtype(r))
    if b == 0x01:
        # Inside a module type a type is a plain ``core:rectype`` (0x50 is a sub
        # type here), matching the encoder every toolchain uses.
        return CoreTypeDecl(_rectype(r))
    if b == 0x02:
        at = r.pos
        kind = r.u8()
        if kind != 0x10:
            raise r.invalid_byte(kind, "outer alias kind", at)
        at = r.pos
        target = r.u8()
        if target != 0x01:
            raise r.invalid_byte(target, "outer alias target", at)
        count = r.u32()
        return CoreAliasDecl(count, r.u32())
    if b == 0x03:
        name = r.name()
        return CoreExportDecl(name, core_externtype(r))
    raise r.invalid_byte(b, "type definition", start)


def _limits(r: Reader, flags_mask: int, what: str) -> tuple[int, int, int | None]:
    start = r.pos
    flags = r.u8()
    if flags & ~flags_mask:
        raise r.error(f"invalid {what} limits flags", start)
    # Limits are read as u64 whatever the flags say; range checks are validation.
    minimum = r.u64()
    maximum = r.u64() if flags & 0b1 else None
    return flags, minimum, maximum


def core_externtype(r: Reader) -> CoreExternType:
    """``core:externtype`` (Core spec 5.3.10 External Types)."""
    start = r.pos
    b = r.u8()
    if b == 0x00:
        return CoreExternType("func", type_index=r.u32())
    if b == 0x01:
        element = core_valtype(r)
        flags, minimum, maximum = _limits(r, 0b111, "table")
        return CoreExternType(
            "table",
            valtype=element,
            minimum=minimum,
            maximum=maximum,
            shared=bool(flags & 0b10),
            memory64=bool(flags & 0b100),
        )
    if b == 0x02:
        flags, minimum, maximum = _limits(r, 0b1111, "memory")
        page_size_log2 = None
        if flags & 0b1000:
            at = r.pos
            page_size_log2 = r.u32()
            if page_size_log2 >= 64:
                raise r.error("invalid custom page size", at)
        return CoreExternType(
            "memory",
            minimum=minimum,
            maximum=maximum,
            shared=bool(flags & 0b10),
            memory64=bool(flags & 0b100),
            page_size_log2=page_size_log2,
        )
    if b == 0x03:
        valtype = core_valtype(r)
        at = r.pos
        flags = r.u8()
        if flags > 0b11:
            raise r.error("malformed global flags", at)
        return CoreExternType(
            "global", valtype=valtype, mutable=bool(flags & 1), shared=bool(flags & 2)
        )
    if b == 0x04:
        at = r.pos
        if r.u8() != 0:
            raise r.error("invalid tag attributes", at)
        return CoreExternType("tag", type_index=r.u32())
    raise r.invalid_byte(b, "external kind", start)
