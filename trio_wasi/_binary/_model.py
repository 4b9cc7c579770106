"""Decoded component binaries as frozen data.

Every class here mirrors one production of the Component Model binary format
(design/mvp/Binary.md). Indices stay indices: resolving them against index
spaces is the linker's job, so the decoder never needs to know what an index
points at and a decoded component can be inspected, compared and cached.

A :class:`DecodedComponent` is the flat, ordered list of its definitions, exactly as
the binary's sections give them; the order matters because index spaces are
built incrementally.
"""

from __future__ import annotations

import enum
from typing import Literal

from .._frozen import frozen

# ---------------------------------------------------------------------------
# Sorts


class Sort(enum.Enum):
    """The sort of an index space (Binary.md ``sort`` and ``core:sort``)."""

    CORE_FUNC = "core func"
    CORE_TABLE = "core table"
    CORE_MEMORY = "core memory"
    CORE_GLOBAL = "core global"
    CORE_TAG = "core tag"
    CORE_TYPE = "core type"
    CORE_MODULE = "core module"
    CORE_INSTANCE = "core instance"
    FUNC = "func"
    VALUE = "value"
    TYPE = "type"
    COMPONENT = "component"
    INSTANCE = "instance"

    @property
    def is_core(self) -> bool:
        return self.value.startswith("core ")


# ---------------------------------------------------------------------------
# Value types


class Prim(enum.Enum):
    """Primitive value types (``primvaltype``)."""

    BOOL = "bool"
    S8 = "s8"
    U8 = "u8"
    S16 = "s16"
    U16 = "u16"
    S32 = "s32"
    U32 = "u32"
    S64 = "s64"
    U64 = "u64"
    F32 = "f32"
    F64 = "f64"
    CHAR = "char"
    STRING = "string"
    ERROR_CONTEXT = "error-context"


@frozen
class TypeIndex:
    """A ``valtype`` that refers to an entry of the type index space."""

    index: int


# A ``valtype``: a primitive or a reference to a defined type.
ValType = Prim | TypeIndex


@frozen
class Record:
    fields: tuple[tuple[str, ValType], ...]


@frozen
class VariantDef:
    cases: tuple[tuple[str, ValType | None], ...]


@frozen
class List:
    """``list<t>``; ``length`` is set for fixed-length lists (``list<t, n>``)."""

    element: ValType
    length: int | None = None


@frozen
class Tuple:
    types: tuple[ValType, ...]


@frozen
class Flags:
    labels: tuple[str, ...]


@frozen
class Enum:
    labels: tuple[str, ...]


@frozen
class Option:
    type: ValType


@frozen
class Result:
    ok: ValType | None
    error: ValType | None


@frozen
class Own:
    type_index: int


@frozen
class Borrow:
    type_index: int


@frozen
class Stream:
    element: ValType | None


@frozen
class Future:
    element: ValType | None


@frozen
class Map:
    key: ValType
    value: ValType


# A ``defvaltype``. A bare ``Prim`` is also a valid defvaltype.
DefValType = (
    Prim
    | Record
    | VariantDef
    | List
    | Tuple
    | Flags
    | Enum
    | Option
    | Result
    | Own
    | Borrow
    | Stream
    | Future
    | Map
)


# ---------------------------------------------------------------------------
# Function, component, instance and resource types


@frozen
class FuncTypeDef:
    """``functype``: named params, at most one result, and the async flag (0x43)."""

    params: tuple[tuple[str, ValType], ...]
    result: ValType | None
    is_async: bool = False


@frozen
class ResourceTypeDef:
    """``resourcetype``: representation (always i32 today) and optional destructor.

    ``dtor`` is a core func index. ``callback`` is set by the async destructor
    form when a binary carries one.
    """

    rep: CoreValType
    dtor: int | None
    is_async: bool = False
    callback: int | None = None


@frozen
class ComponentType:
    """``componenttype``: a list of declarators (imports, exports, types, aliases)."""

    decls: tuple[Decl, ...]


@frozen
class InstanceType:
    """``instancetype``: a list of declarators (exports, types, aliases)."""

    decls: tuple[Decl, ...]


DefType = DefValType | FuncTypeDef | ComponentType | InstanceType | ResourceTypeDef


# ---------------------------------------------------------------------------
# Extern types and names


@frozen
class SortType:
    """``externtype`` for module/func/component/instance: the sort and a type index.

    For ``Sort.CORE_MODULE`` the index is a *core* type index.
    """

    sort: Sort
    type_index: int


@frozen
class TypeBound:
    """``externtype`` of sort type: ``(eq i)`` when ``eq`` is set, else ``(sub resource)``."""

    eq: int | None


@frozen
class ValueBound:
    """``externtype`` of sort value (gated): ``(eq i)`` or a value type."""

    eq: int | None
    type: ValType | None


ExternType = SortType | TypeBound | ValueBound


@frozen
class Name:
    """An extern name with its attributes (``nameattributes``).

    ``name`` is the plain ``externname`` text (``local:demo/iface@1.2.3``,
    ``[method]r.m``, ``foo``). The attributes are kept for diagnostics and
    round-tripping; matching ignores them.
    """

    name: str
    implements: str | None = None
    version_suffix: str | None = None
    external_id: str | None = None


# ---------------------------------------------------------------------------
# Core types (only what components declare: function and module types)


class CoreValType(enum.Enum):
    I32 = "i32"
    I64 = "i64"
    F32 = "f32"
    F64 = "f64"
    V128 = "v128"
    FUNCREF = "funcref"
    EXTERNREF = "externref"
    # Any other reference type (GC proposal) is kept opaque by its encoding.
    OTHER_REF = "ref"


@frozen
class CoreFuncType:
    params: tuple[CoreValType, ...]
    results: tuple[CoreValType, ...]


@frozen
class CoreOtherType:
    """A core type the host does not interpret (GC struct/array, rec groups).

    ``raw`` holds its encoded bytes so validation messages can still refer to it.
    """

    raw: bytes


@frozen
class CoreImportDecl:
    module: str
    name: str
    type: CoreExternType


@frozen
class CoreExportDecl:
    name: str
    type: CoreExternType


@frozen
class CoreAliasDecl:
    """``(alias outer ct idx (type))`` inside a module type."""

    count: int
    index: int


@frozen
class CoreTypeDecl:
    type: CoreDefType


@frozen
class CoreModuleType:
    decls: tuple[CoreImportDecl | CoreExportDecl | CoreAliasDecl | CoreTypeDecl, ...]


@frozen
class CoreExternType:
    """``core:externtype``: kind is one of func/table/memory/global/tag.

    For func and tag, ``type_index`` is a core type index. For the others the
    remaining fields describe limits (table/memory) or value type (global).
    For a table, ``valtype`` is the element reference type and ``memory64``
    means a 64-bit table index; ``page_size_log2`` is a memory's custom page
    size when one is given.
    """

    kind: str
    type_index: int | None = None
    valtype: CoreValType | None = None
    mutable: bool = False
    minimum: int = 0
    maximum: int | None = None
    shared: bool = False
    memory64: bool = False
    page_size_log2: int | None = None


CoreDefType = CoreFuncType | CoreModuleType | CoreOtherType


# ---------------------------------------------------------------------------
# Declarators (inside component and instance types)


@frozen
class ImportDecl:
    name: Name
    type: ExternType


@frozen
class ExportDecl:
    name: Name
    type: ExternType


@frozen
class TypeDecl:
    type: DefType


@frozen
class CoreTypeDeclarator:
    type: CoreDefType


@frozen
class AliasDecl:
    alias: Alias


Decl = ImportDecl | ExportDecl | TypeDecl | CoreTypeDeclarator | AliasDecl


# ---------------------------------------------------------------------------
# Aliases


@frozen
class AliasInstanceExport:
    """``(alias export i "n" (sort))``: ``sort`` is never a core sort."""

    sort: Sort
    instance: int
    name: str


@frozen
class AliasCoreExport:
    """``(alias core export i "n" (core sort))``."""

    sort: Sort
    instance: int
    name: str


@frozen
class AliasOuter:
    """``(alias outer ct idx (sort))``: ``count`` enclosing scopes out."""

    sort: Sort
    count: int
    index: int


Alias = AliasInstanceExport | AliasCoreExport | AliasOuter


# ---------------------------------------------------------------------------
# Canonical definitions


# The ``string-encoding`` canonopt values.
StringEncoding = Literal["utf8", "utf16", "latin1+utf16"]


@frozen
class CanonOptionList:
    """``canonopt*``. ``string_encoding`` is ``utf8``, ``utf16`` or ``latin1+utf16``.

    ``string_encoding_given`` tells whether the option was written (validation
    rejects duplicates; the default is utf8). ``repeated`` names every option
    kind written more than once (``string-encoding``, ``memory``, ...), which
    validation rejects; the decoder keeps the last value. ``core_type`` and
    ``gc`` are the GC-ABI options (opcodes 0x08 and 0x09) that wasm-tools emits.
    """

    string_encoding: StringEncoding = "utf8"
    memory: int | None = None
    realloc: int | None = None
    post_return: int | None = None
    is_async: bool = False
    callback: int | None = None
    string_encoding_given: bool = False
    core_type: int | None = None
    gc: bool = False
    repeated: tuple[str, ...] = ()


@frozen
class CanonLift:
    """``(canon lift f opts (type ft))``: makes a component function."""

    core_func: int
    options: CanonOptionList
    type_index: int


@frozen
class CanonLower:
    """``(canon lower f opts)``: makes a core function."""

    func: int
    options: CanonOptionList


@frozen
class CanonBuiltin:
    """Every other ``canon`` definition; each makes one core function.

    ``name`` is the built-in's text name (``resource.new``, ``task.return``,
    ``stream.read``, ``waitable-set.wait``, ``thread.yield`` ...). Only the
    immediates the built-in takes are set:

    - ``type_index``: the component type (resource.*, stream.*, future.*) or
      core type (thread.new-indirect, thread.spawn-*) it names;
    - ``options``: for task.return, stream/future read/write,
      error-context.new/debug-message;
    - ``result``/``has_result``: the result list of task.return;
    - ``is_async``: subtask.cancel, stream/future cancel-read/cancel-write;
    - ``cancellable``: waitable-set.wait/poll, thread.yield and friends;
    - ``memory``: waitable-set.wait/poll;
    - ``core_valtype`` and ``index``: context.get/set;
    - ``table``: thread.new-indirect, thread.spawn-indirect;
    - ``shared``: the shared-everything-threads forms.
    """

    name: str
    type_index: int | None = None
    options: CanonOptionList = CanonOptionList()
    result: ValType | None = None
    is_async: bool = False
    cancellable: bool = False
    memory: int | None = None
    core_valtype: CoreValType | None = None
    index: int | None = None
    table: int | None = None
    shared: bool = False


Canon = CanonLift | CanonLower | CanonBuiltin


# ---------------------------------------------------------------------------
# Top-level definitions of a component


@frozen
class CoreModule:
    """An embedded core module, kept as its bytes; wasmtime parses it.

    ``data`` is a read-only view of the module's bytes in the binary (not a
    copy); ``offset`` is where the module starts in the outermost binary.
    """

    data: memoryview
    offset: int


@frozen
class CoreInstantiate:
    """``(core instance (instantiate m (with "n" (instance i))*))``."""

    module: int
    args: tuple[tuple[str, int], ...]


@frozen
class CoreInlineExport:
    name: str
    sort: Sort
    index: int


@frozen
class CoreInlineInstance:
    """``(core instance (export "n" (sort idx))*)``."""

    exports: tuple[CoreInlineExport, ...]


@frozen
class CoreTypeDef:
    type: CoreDefType


@frozen
class NestedComponent:
    component: DecodedComponent


@frozen
class InstantiateArg:
    name: str
    sort: Sort
    index: int


@frozen
class Instantiate:
    """``(instance (instantiate c (with "n" (sort idx))*))``."""

    component: int
    args: tuple[InstantiateArg, ...]


@frozen
class InlineExport:
    name: Name
    sort: Sort
    index: int


@frozen
class InlineInstance:
    """``(instance (export "n" (sort idx))*)``."""

    exports: tuple[InlineExport, ...]


@frozen
class TypeDef:
    type: DefType


@frozen
class Start:
    """Gated value-based start function."""

    func: int
    args: tuple[int, ...]
    results: int


@frozen
class Import:
    name: Name
    type: ExternType


@frozen
class Export:
    name: Name
    sort: Sort
    index: int
    type: ExternType | None


@frozen
class Value:
    """Gated value definition: its type and encoded bytes."""

    type: ValType
    data: bytes


@frozen
class CustomSection:
    name: str
    data: bytes


Definition = (
    CoreModule
    | CoreInstantiate
    | CoreInlineInstance
    | CoreTypeDef
    | NestedComponent
    | Instantiate
    | InlineInstance
    | AliasInstanceExport
    | AliasCoreExport
    | AliasOuter
    | TypeDef
    | CanonLift
    | CanonLower
    | CanonBuiltin
    | Start
    | Import
    | Export
    | Value
    | CustomSection
)


@frozen
class DecodedComponent:
    """A decoded component: its definitions in binary order.

    ``offset`` is where the component starts in the outermost binary (0 for the
    top level), so errors found later can still point into the file.
    """

    definitions: tuple[Definition, ...]
    offset: int = 0
