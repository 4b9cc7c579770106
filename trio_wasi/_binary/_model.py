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

import attrs


class _Data:
    """The shared ``repr`` of the classes below.

    attrs would generate and compile one per class when the module is
    imported (a third of building each class); a repr is only ever read by
    people, so one generic method serves them all, in the same format.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{a.name}={getattr(self, a.name)!r}"
            for a in self.__attrs_attrs__  # type: ignore[attr-defined]
        )
        return f"{type(self).__name__}({fields})"


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


@attrs.frozen(repr=False)
class TypeIndex(_Data):
    """A ``valtype`` that refers to an entry of the type index space."""

    index: int


# A ``valtype``: a primitive or a reference to a defined type.
ValType = Prim | TypeIndex


@attrs.frozen(repr=False)
class Record(_Data):
    fields: tuple[tuple[str, ValType], ...]


@attrs.frozen(repr=False)
class VariantDef(_Data):
    cases: tuple[tuple[str, ValType | None], ...]


@attrs.frozen(repr=False)
class List(_Data):
    """``list<t>``; ``length`` is set for fixed-length lists (``list<t, n>``)."""

    element: ValType
    length: int | None = None


@attrs.frozen(repr=False)
class Tuple(_Data):
    types: tuple[ValType, ...]


@attrs.frozen(repr=False)
class Flags(_Data):
    labels: tuple[str, ...]


@attrs.frozen(repr=False)
class Enum(_Data):
    labels: tuple[str, ...]


@attrs.frozen(repr=False)
class Option(_Data):
    type: ValType


@attrs.frozen(repr=False)
class Result(_Data):
    ok: ValType | None
    error: ValType | None


@attrs.frozen(repr=False)
class Own(_Data):
    type_index: int


@attrs.frozen(repr=False)
class Borrow(_Data):
    type_index: int


@attrs.frozen(repr=False)
class Stream(_Data):
    element: ValType | None


@attrs.frozen(repr=False)
class Future(_Data):
    element: ValType | None


@attrs.frozen(repr=False)
class Map(_Data):
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


@attrs.frozen(repr=False)
class FuncTypeDef(_Data):
    """``functype``: named params, at most one result, and the async flag (0x43)."""

    params: tuple[tuple[str, ValType], ...]
    result: ValType | None
    is_async: bool = False


@attrs.frozen(repr=False)
class ResourceTypeDef(_Data):
    """``resourcetype``: representation (always i32 today) and optional destructor.

    ``dtor`` is a core func index. ``callback`` is set by the async destructor
    form when a binary carries one.
    """

    rep: CoreValType
    dtor: int | None
    is_async: bool = False
    callback: int | None = None


@attrs.frozen(repr=False)
class ComponentType(_Data):
    """``componenttype``: a list of declarators (imports, exports, types, aliases)."""

    decls: tuple[Decl, ...]


@attrs.frozen(repr=False)
class InstanceType(_Data):
    """``instancetype``: a list of declarators (exports, types, aliases)."""

    decls: tuple[Decl, ...]


DefType = DefValType | FuncTypeDef | ComponentType | InstanceType | ResourceTypeDef


# ---------------------------------------------------------------------------
# Extern types and names


@attrs.frozen(repr=False)
class SortType(_Data):
    """``externtype`` for module/func/component/instance: the sort and a type index.

    For ``Sort.CORE_MODULE`` the index is a *core* type index.
    """

    sort: Sort
    type_index: int


@attrs.frozen(repr=False)
class TypeBound(_Data):
    """``externtype`` of sort type: ``(eq i)`` when ``eq`` is set, else ``(sub resource)``."""

    eq: int | None


@attrs.frozen(repr=False)
class ValueBound(_Data):
    """``externtype`` of sort value (gated): ``(eq i)`` or a value type."""

    eq: int | None
    type: ValType | None


ExternType = SortType | TypeBound | ValueBound


@attrs.frozen(repr=False)
class Name(_Data):
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


@attrs.frozen(repr=False)
class CoreFuncType(_Data):
    params: tuple[CoreValType, ...]
    results: tuple[CoreValType, ...]


@attrs.frozen(repr=False)
class CoreOtherType(_Data):
    """A core type the host does not interpret (GC struct/array, rec groups).

    ``raw`` holds its encoded bytes so validation messages can still refer to it.
    """

    raw: bytes


@attrs.frozen(repr=False)
class CoreImportDecl(_Data):
    module: str
    name: str
    type: CoreExternType


@attrs.frozen(repr=False)
class CoreExportDecl(_Data):
    name: str
    type: CoreExternType


@attrs.frozen(repr=False)
class CoreAliasDecl(_Data):
    """``(alias outer ct idx (type))`` inside a module type."""

    count: int
    index: int


@attrs.frozen(repr=False)
class CoreTypeDecl(_Data):
    type: CoreDefType


@attrs.frozen(repr=False)
class CoreModuleType(_Data):
    decls: tuple[CoreImportDecl | CoreExportDecl | CoreAliasDecl | CoreTypeDecl, ...]


@attrs.frozen(repr=False)
class CoreExternType(_Data):
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


@attrs.frozen(repr=False)
class ImportDecl(_Data):
    name: Name
    type: ExternType


@attrs.frozen(repr=False)
class ExportDecl(_Data):
    name: Name
    type: ExternType


@attrs.frozen(repr=False)
class TypeDecl(_Data):
    type: DefType


@attrs.frozen(repr=False)
class CoreTypeDeclarator(_Data):
    type: CoreDefType


@attrs.frozen(repr=False)
class AliasDecl(_Data):
    alias: Alias


Decl = ImportDecl | ExportDecl | TypeDecl | CoreTypeDeclarator | AliasDecl


# ---------------------------------------------------------------------------
# Aliases


@attrs.frozen(repr=False)
class AliasInstanceExport(_Data):
    """``(alias export i "n" (sort))``: ``sort`` is never a core sort."""

    sort: Sort
    instance: int
    name: str


@attrs.frozen(repr=False)
class AliasCoreExport(_Data):
    """``(alias core export i "n" (core sort))``."""

    sort: Sort
    instance: int
    name: str


@attrs.frozen(repr=False)
class AliasOuter(_Data):
    """``(alias outer ct idx (sort))``: ``count`` enclosing scopes out."""

    sort: Sort
    count: int
    index: int


Alias = AliasInstanceExport | AliasCoreExport | AliasOuter


# ---------------------------------------------------------------------------
# Canonical definitions


# The ``string-encoding`` canonopt values.
StringEncoding = Literal["utf8", "utf16", "latin1+utf16"]


@attrs.frozen(repr=False)
class CanonOptionList(_Data):
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


@attrs.frozen(repr=False)
class CanonLift(_Data):
    """``(canon lift f opts (type ft))``: makes a component function."""

    core_func: int
    options: CanonOptionList
    type_index: int


@attrs.frozen(repr=False)
class CanonLower(_Data):
    """``(canon lower f opts)``: makes a core function."""

    func: int
    options: CanonOptionList


@attrs.frozen(repr=False)
class CanonBuiltin(_Data):
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


@attrs.frozen(repr=False)
class CoreModule(_Data):
    """An embedded core module, kept as its bytes; wasmtime parses it.

    ``data`` is a read-only view of the module's bytes in the binary (not a
    copy); ``offset`` is where the module starts in the outermost binary.
    """

    data: memoryview
    offset: int


@attrs.frozen(repr=False)
class CoreInstantiate(_Data):
    """``(core instance (instantiate m (with "n" (instance i))*))``."""

    module: int
    args: tuple[tuple[str, int], ...]


@attrs.frozen(repr=False)
class CoreInlineExport(_Data):
    name: str
    sort: Sort
    index: int


@attrs.frozen(repr=False)
class CoreInlineInstance(_Data):
    """``(core instance (export "n" (sort idx))*)``."""

    exports: tuple[CoreInlineExport, ...]


@attrs.frozen(repr=False)
class CoreTypeDef(_Data):
    type: CoreDefType


@attrs.frozen(repr=False)
class NestedComponent(_Data):
    component: DecodedComponent


@attrs.frozen(repr=False)
class InstantiateArg(_Data):
    name: str
    sort: Sort
    index: int


@attrs.frozen(repr=False)
class Instantiate(_Data):
    """``(instance (instantiate c (with "n" (sort idx))*))``."""

    component: int
    args: tuple[InstantiateArg, ...]


@attrs.frozen(repr=False)
class InlineExport(_Data):
    name: Name
    sort: Sort
    index: int


@attrs.frozen(repr=False)
class InlineInstance(_Data):
    """``(instance (export "n" (sort idx))*)``."""

    exports: tuple[InlineExport, ...]


@attrs.frozen(repr=False)
class TypeDef(_Data):
    type: DefType


@attrs.frozen(repr=False)
class Start(_Data):
    """Gated value-based start function."""

    func: int
    args: tuple[int, ...]
    results: int


@attrs.frozen(repr=False)
class Import(_Data):
    name: Name
    type: ExternType


@attrs.frozen(repr=False)
class Export(_Data):
    name: Name
    sort: Sort
    index: int
    type: ExternType | None


@attrs.frozen(repr=False)
class Value(_Data):
    """Gated value definition: its type and encoded bytes."""

    type: ValType
    data: bytes


@attrs.frozen(repr=False)
class CustomSection(_Data):
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


@attrs.frozen(repr=False)
class DecodedComponent(_Data):
    """A decoded component: its definitions in binary order.

    ``offset`` is where the component starts in the outermost binary (0 for the
    top level), so errors found later can still point into the file.
    """

    definitions: tuple[Definition, ...]
    offset: int = 0
