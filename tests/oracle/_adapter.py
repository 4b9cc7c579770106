"""The specification's canonical ABI as a test oracle: loading it and speaking its language.

``definitions.py`` (the executable Canonical ABI of the Component Model
specification, in the shared reference material next to the repository) is
loaded by path. This module maps between trio_wasi's ``_abi`` vocabulary and
the specification's:

* types: our attrs classes in ``trio_wasi._abi._types`` to its dataclasses
  (resource types are mapped one to one, by identity);
* values: ours (see ``trio_wasi._abi._values``) to its conventions (records
  as dicts, tuples as dicts keyed ``"0"``, ``"1"``..., variant-like values as
  one-entry ``{label: payload}`` dicts, flags as dicts of bools, strings as
  ``(str, encoding, tagged code units)``, handles by representation);
* a *normal form* both sides' lifted values reduce to, so they compare with
  ``==`` (floats by bit pattern, every NaN one canonical NaN);
* environments: a memory with the same bump-allocating ``realloc`` on each
  side, recording every realloc call.

* hypothesis strategies for types (nested a few levels) and their values.

The loaded copy of the definitions (a private module, not shared with
anything else) is adjusted in two ways, neither of which changes a rule:
``DETERMINISTIC_PROFILE`` is set, so a stored NaN is the canonical NaN
(otherwise it picks random NaN bits, which no implementation can match byte
for byte); and ``LiftLowerContext.reallocate`` calls ``realloc`` directly
instead of lifting it as a core function on a thread of its own. Built-ins
that ask for the current thread run under a stand-in (:func:`spec_call`)
and so must not block.
"""

from __future__ import annotations

import importlib.util
import math
import random
import struct
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import strategies as st

from trio_wasi._abi import (
    BOOL,
    CHAR,
    F32,
    F64,
    GUEST_ASYNC_VALUES,
    KEY_TYPES,
    S8,
    S16,
    S32,
    S64,
    STRING,
    U8,
    U16,
    U32,
    U64,
    BoolType,
    BorrowScope,
    BorrowType,
    BytesMemory,
    CanonOptions,
    CharType,
    DuplicateKeyMap,
    EnumType,
    Err,
    ErrorContextType,
    F32Type,
    F64Type,
    FlagsType,
    FuncType,
    FutureType,
    GuestResource,
    InstanceState,
    LiftLowerContext,
    ListType,
    MapType,
    Ok,
    OptionType,
    OwnType,
    RecordType,
    ResourceType,
    ResultType,
    S8Type,
    S16Type,
    S32Type,
    S64Type,
    Some,
    StreamType,
    StringType,
    TupleType,
    U8Type,
    U16Type,
    U32Type,
    U64Type,
    ValueType,
    Variant,
    VariantType,
)
from trio_wasi._errors import Trap

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = REPO_ROOT.parent / "shared" / "reference" / "canonical-abi" / "definitions.py"
MISSING = (
    f"the specification's definitions.py is not at {DEFINITIONS}; the oracle tests need "
    "the shared reference material checked out next to the repository (../shared)"
)

_SPEC_NAME = "_trio_wasi_oracle_spec_definitions"


def _load_spec() -> ModuleType | None:
    if _SPEC_NAME in sys.modules:
        return sys.modules[_SPEC_NAME]
    if not DEFINITIONS.is_file():
        return None
    spec = importlib.util.spec_from_file_location(_SPEC_NAME, DEFINITIONS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve the module's (postponed) annotations through sys.modules.
    sys.modules[_SPEC_NAME] = module
    spec.loader.exec_module(module)
    module.DETERMINISTIC_PROFILE = True  # type: ignore[attr-defined]
    return module


SPEC: Any = _load_spec()


def require_spec() -> Any:
    """The loaded definitions module; skips the calling test module when it is absent."""
    if SPEC is None:
        import pytest

        pytest.skip(MISSING, allow_module_level=True)
    return SPEC


ENCODINGS = ("utf8", "utf16", "latin1+utf16")
UTF16_TAG = 1 << 31
M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF

# ---------------------------------------------------------------------------
# Types

_PRIMS: dict[type, str] = {
    BoolType: "BoolType",
    S8Type: "S8Type",
    U8Type: "U8Type",
    S16Type: "S16Type",
    U16Type: "U16Type",
    S32Type: "S32Type",
    U32Type: "U32Type",
    S64Type: "S64Type",
    U64Type: "U64Type",
    F32Type: "F32Type",
    F64Type: "F64Type",
    CharType: "CharType",
    StringType: "StringType",
    ErrorContextType: "ErrorContextType",
}


class Resources:
    """Our resource types and the specification's counterparts, paired by identity."""

    def __init__(self) -> None:
        self._pairs: dict[int, tuple[ResourceType, Any]] = {}

    def pair(self, rt: ResourceType, impl: Any) -> Any:
        """The spec resource type for ``rt`` (made on first use, implemented by ``impl``)."""
        got = self._pairs.get(id(rt))
        if got is None:
            got = (rt, SPEC.ResourceType(impl))
            self._pairs[id(rt)] = got
        return got[1]

    def get(self, rt: ResourceType) -> Any:
        got = self._pairs.get(id(rt))
        if got is None:
            raise KeyError(f"no spec counterpart registered for {rt!r}")
        return got[1]


def spec_type(t: ValueType | None, resources: Resources | None = None) -> Any:
    """The specification's type for our type ``t`` (None stays None)."""
    S = SPEC
    if t is None:
        return None
    name = _PRIMS.get(type(t))
    if name is not None:
        return getattr(S, name)()
    if isinstance(t, ListType):
        return S.ListType(spec_type(t.element, resources), t.length)
    if isinstance(t, MapType):
        return S.MapType(spec_type(t.key, resources), spec_type(t.value, resources))
    if isinstance(t, RecordType):
        return S.RecordType(
            [S.FieldType(label, spec_type(ft, resources)) for label, ft in t.fields]
        )
    if isinstance(t, TupleType):
        return S.TupleType([spec_type(ft, resources) for ft in t.types])
    if isinstance(t, VariantType):
        return S.VariantType([S.CaseType(label, spec_type(ct, resources)) for label, ct in t.cases])
    if isinstance(t, EnumType):
        return S.EnumType(list(t.labels))
    if isinstance(t, OptionType):
        return S.OptionType(spec_type(t.type, resources))
    if isinstance(t, ResultType):
        return S.ResultType(spec_type(t.ok, resources), spec_type(t.error, resources))
    if isinstance(t, FlagsType):
        return S.FlagsType(list(t.labels))
    if isinstance(t, OwnType):
        assert resources is not None
        return S.OwnType(resources.get(t.resource))
    if isinstance(t, BorrowType):
        assert resources is not None
        return S.BorrowType(resources.get(t.resource))
    if isinstance(t, StreamType):
        return S.StreamType(spec_type(t.element, resources))
    if isinstance(t, FutureType):
        return S.FutureType(spec_type(t.element, resources))
    raise TypeError(f"no spec counterpart for {t!r}")


def spec_functype(ft: FuncType, resources: Resources | None = None) -> Any:
    """The specification's ``FuncType`` for ours."""
    params = [(name, spec_type(t, resources)) for name, t in ft.params]
    result = [] if ft.result is None else [spec_type(ft.result, resources)]
    return SPEC.FuncType(params, result, async_=ft.is_async)


# ---------------------------------------------------------------------------
# Values


def string_units(s: str, encoding: str) -> int:
    """The tagged code unit count a component using ``encoding`` gives ``s``.

    Under ``latin1+utf16`` a string that fits Latin-1 is Latin-1 (untagged),
    as trio_wasi stores host strings.
    """
    if encoding == "utf8":
        return len(s.encode("utf-8"))
    if encoding == "utf16":
        return len(s.encode("utf-16-le")) // 2
    if max(s, default="\0") < "\u0100":
        return len(s)
    return (len(s.encode("utf-16-le")) // 2) | UTF16_TAG


class Handles:
    """Our shared stream/future/error-context objects and the spec's, paired."""

    def __init__(self) -> None:
        self.ours_to_spec: dict[int, Any] = {}
        self.spec_to_key: dict[int, int] = {}
        self.ours_to_key: dict[int, int] = {}
        self._keep: list[Any] = []

    def pair(self, ours: object, spec: object) -> None:
        key = len(self._keep)
        self._keep += [ours, spec]
        self.ours_to_spec[id(ours)] = spec
        self.ours_to_key[id(ours)] = key
        self.spec_to_key[id(spec)] = key


def spec_value(t: ValueType | None, v: Any, encoding: str, handles: Handles | None = None) -> Any:
    """Our value ``v`` of type ``t`` as the specification represents it.

    Strings become ``(str, encoding, tagged code units)`` as if a component
    using ``encoding`` had lifted them.
    """
    if t is None:
        return None
    if isinstance(t, StringType):
        return (v, encoding, string_units(v, encoding))
    if isinstance(t, ListType):
        return [spec_value(t.element, e, encoding, handles) for e in v]
    if isinstance(t, MapType):
        pairs = v.pairs if type(v) is DuplicateKeyMap else (v.items() if isinstance(v, dict) else v)
        return [
            {
                "0": spec_value(t.key, k, encoding, handles),
                "1": spec_value(t.value, x, encoding, handles),
            }
            for k, x in pairs
        ]
    if isinstance(t, RecordType):
        return {label: spec_value(ft, v[label], encoding, handles) for label, ft in t.fields}
    if isinstance(t, TupleType):
        return {
            str(i): spec_value(ft, x, encoding, handles)
            for i, (ft, x) in enumerate(zip(t.types, v, strict=True))
        }
    if isinstance(t, VariantType):
        ct = dict(t.cases)[v.case]
        return {v.case: spec_value(ct, v.value, encoding, handles)}
    if isinstance(t, EnumType):
        return {v: None}
    if isinstance(t, OptionType):
        if v is None:
            return {"none": None}
        inner = v.value if type(v) is Some else v
        return {"some": spec_value(t.type, inner, encoding, handles)}
    if isinstance(t, ResultType):
        if type(v) is Ok:
            return {"ok": spec_value(t.ok, v.value, encoding, handles)}
        return {"error": spec_value(t.error, v.value, encoding, handles)}
    if isinstance(t, FlagsType):
        return {label: label in v for label in t.labels}
    if isinstance(t, OwnType | BorrowType):
        assert isinstance(v, GuestResource)
        return v.rep
    if isinstance(t, StreamType | FutureType | ErrorContextType):
        assert handles is not None
        return handles.ours_to_spec[id(v)]
    return v


def _float_norm(f: float, fmt: str) -> Any:
    if math.isnan(f):
        return "nan"
    return struct.pack(fmt, f)


def norm_ours(t: ValueType | None, v: Any, handles: Handles | None = None) -> Any:
    """A comparable normal form of our value ``v`` of type ``t``."""
    if t is None:
        return None
    if isinstance(t, F32Type):
        return _float_norm(v, "<f")
    if isinstance(t, F64Type):
        return _float_norm(v, "<d")
    if isinstance(t, BoolType):
        return bool(v)
    if isinstance(t, ListType):
        return tuple(norm_ours(t.element, e, handles) for e in v)
    if isinstance(t, MapType):
        pairs = v.pairs if type(v) is DuplicateKeyMap else (v.items() if isinstance(v, dict) else v)
        return tuple(
            (norm_ours(t.key, k, handles), norm_ours(t.value, x, handles)) for k, x in pairs
        )
    if isinstance(t, RecordType):
        return tuple((label, norm_ours(ft, v[label], handles)) for label, ft in t.fields)
    if isinstance(t, TupleType):
        return tuple(norm_ours(ft, x, handles) for ft, x in zip(t.types, v, strict=True))
    if isinstance(t, VariantType):
        return (v.case, norm_ours(dict(t.cases)[v.case], v.value, handles))
    if isinstance(t, EnumType):
        return (v, None)
    if isinstance(t, OptionType):
        if v is None:
            return ("none", None)
        inner = v.value if type(v) is Some else v
        return ("some", norm_ours(t.type, inner, handles))
    if isinstance(t, ResultType):
        if type(v) is Ok:
            return ("ok", norm_ours(t.ok, v.value, handles))
        assert type(v) is Err, v
        return ("error", norm_ours(t.error, v.value, handles))
    if isinstance(t, FlagsType):
        return frozenset(v)
    if isinstance(t, OwnType | BorrowType):
        assert isinstance(v, GuestResource)
        return ("rep", v.rep)
    if isinstance(t, StreamType | FutureType | ErrorContextType):
        assert handles is not None
        return ("handle", handles.ours_to_key[id(v)])
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    return v


def norm_spec(t: ValueType | None, v: Any, handles: Handles | None = None) -> Any:
    """The normal form of the specification's value ``v`` of (our) type ``t``."""
    if t is None:
        assert v is None, v
        return None
    if isinstance(t, F32Type):
        return _float_norm(v, "<f")
    if isinstance(t, F64Type):
        return _float_norm(v, "<d")
    if isinstance(t, BoolType):
        return bool(v)
    if isinstance(t, StringType):
        s, _encoding, _units = v
        return s
    if isinstance(t, ListType):
        return tuple(norm_spec(t.element, e, handles) for e in v)
    if isinstance(t, MapType):
        return tuple(
            (norm_spec(t.key, p["0"], handles), norm_spec(t.value, p["1"], handles)) for p in v
        )
    if isinstance(t, RecordType):
        return tuple((label, norm_spec(ft, v[label], handles)) for label, ft in t.fields)
    if isinstance(t, TupleType):
        return tuple(norm_spec(ft, v[str(i)], handles) for i, ft in enumerate(t.types))
    if isinstance(t, VariantType | OptionType | ResultType | EnumType):
        ((label, payload),) = v.items()
        cases: dict[str, ValueType | None]
        if isinstance(t, VariantType):
            cases = dict(t.cases)
        elif isinstance(t, OptionType):
            cases = {"none": None, "some": t.type}
        elif isinstance(t, ResultType):
            cases = {"ok": t.ok, "error": t.error}
        else:
            cases = dict.fromkeys(t.labels)
        return (label, norm_spec(cases[label], payload, handles))
    if isinstance(t, FlagsType):
        return frozenset(label for label, on in v.items() if on)
    if isinstance(t, OwnType | BorrowType):
        return ("rep", v)
    if isinstance(t, StreamType | FutureType | ErrorContextType):
        assert handles is not None
        return ("handle", handles.spec_to_key[id(v)])
    return v


def norm_core(types: Sequence[str], values: Sequence[Any]) -> list[Any]:
    """Core values in a comparable form: integers unsigned, floats by bit pattern."""
    assert len(types) == len(values), (types, values)
    out: list[Any] = []
    for ct, v in zip(types, values, strict=True):
        if ct == "i32":
            out.append(("i32", int(v) & M32))
        elif ct == "i64":
            out.append(("i64", int(v) & M64))
        else:
            out.append((ct, _float_norm(float(v), "<f" if ct == "f32" else "<d")))
    return out


# ---------------------------------------------------------------------------
# Environments


class BumpAllocator:
    """A ``realloc`` that hands out fresh, aligned space and logs each call.

    ``grow(n)`` is called to make the memory at least ``n`` bytes long; a
    reallocation copies the old contents, as a real allocator would.
    """

    def __init__(self, view: Callable[[], Any], grow: Callable[[int], None], top: int) -> None:
        self.view = view
        self.grow = grow
        self.top = top
        self.calls: list[tuple[int, int, int, int]] = []

    def __call__(self, old: int, old_size: int, align: int, new_size: int) -> int:
        self.calls.append((old, old_size, align, new_size))
        ptr = (self.top + align - 1) & -align
        self.top = ptr + new_size
        self.grow(self.top)
        if old:
            n = min(old_size, new_size)
            view = self.view()
            view[ptr : ptr + n] = bytes(view[old : old + n])
        return ptr


PAGE = 65536


class Ours:
    """One component instance on our side: memory, realloc, options and a context."""

    def __init__(self, encoding: str = "utf8", pages: int = 1, top: int = 16) -> None:
        self.memory = BytesMemory(pages * PAGE)
        self.alloc = BumpAllocator(self.memory.view, self._grow, top)
        self.inst = InstanceState()
        self.opts = CanonOptions(
            memory=self.memory,
            string_encoding=encoding,  # type: ignore[arg-type]
            realloc=self.alloc,
        )
        self.encoding = encoding

    def _grow(self, n: int) -> None:
        if n > len(self.memory):
            self.memory.grow((n - len(self.memory) + PAGE - 1) // PAGE)

    def cx(self, source_encoding: str | None = None) -> LiftLowerContext:
        return LiftLowerContext(
            self.opts,
            self.inst,
            BorrowScope(),
            source_encoding=source_encoding,  # type: ignore[arg-type]
            hooks=GUEST_ASYNC_VALUES,
        )

    def bytes(self) -> bytes:
        return bytes(self.memory.view())


class Spec:
    """The same instance on the specification's side."""

    def __init__(self, encoding: str = "utf8", pages: int = 1, top: int = 16) -> None:
        S = SPEC
        self.memory = S.MemInst(bytearray(pages * PAGE), "i32")
        self.alloc = BumpAllocator(lambda: self.memory.bytes, self._grow, top)
        self.inst = S.ComponentInstance(S.Store())
        self.opts = S.CanonicalOptions(
            string_encoding=encoding, memory=self.memory, realloc=self.alloc
        )
        self.encoding = encoding

    def _grow(self, n: int) -> None:
        data = self.memory.bytes
        if n > len(data):
            data.extend(bytes(((n - len(data) + PAGE - 1) // PAGE) * PAGE))

    def cx(self, borrow_scope: Any = None) -> Any:
        return spec_context(self.opts, self.inst, borrow_scope)

    def bytes(self) -> bytes:
        return bytes(self.memory.bytes)


def spec_context(opts: Any, inst: Any, borrow_scope: Any = None) -> Any:
    """A spec ``LiftLowerContext`` (its ``realloc`` is a plain call, see below)."""
    return SPEC.LiftLowerContext(opts, inst, borrow_scope)


def _direct_reallocate(self: Any, old: int, old_size: int, align: int, new_size: int) -> int:
    """``LiftLowerContext.reallocate`` as a plain call.

    The specification runs ``realloc`` as a lifted core function (a task on a
    thread of its own); the oracle compares the calls, not that machinery, so
    the call is direct, with the same ``may_leave`` bracketing.
    """
    assert self.inst.may_leave
    self.inst.may_leave = False
    ptr = self.opts.realloc(old, old_size, align, new_size)
    self.inst.may_leave = True
    return int(ptr)


if SPEC is not None:
    SPEC.LiftLowerContext.reallocate = _direct_reallocate


class _SpecTask:
    """Just enough of a spec ``Task`` for built-ins that never block."""

    def __init__(self, inst: Any) -> None:
        self.inst = inst

    def deliver_pending_cancel(self, cancellable: bool) -> bool:
        return False


class WouldBlock(Exception):
    """A synchronous built-in on either side tried to block its thread."""


class _SpecThread:
    def __init__(self, inst: Any) -> None:
        self.task = _SpecTask(inst)

    def wait_until(self, ready_func: Callable[[], bool], cancellable: bool = False) -> Any:
        raise WouldBlock


class _SpecHandler:
    def __init__(self, inst: Any) -> None:
        self.current_thread = _SpecThread(inst)


def spec_call(inst: Any, builtin: Callable[..., Any], *args: Any) -> Any:
    """Call a spec built-in as if a thread of ``inst`` called it.

    Only for calls that do not block: a blocking built-in would switch
    threads, which this stand-in thread cannot do.
    """
    SPEC.thread_local_handler.value = _SpecHandler(inst)
    try:
        return builtin(*args)
    finally:
        del SPEC.thread_local_handler.value


# ---------------------------------------------------------------------------
# Outcomes


def outcome(f: Callable[[], Any]) -> tuple[str, Any]:
    """``("ok", result)``, ``("trap", None)`` or ``("blocks", None)``.

    Our traps are :class:`trio_wasi.Trap`; the specification raises its own
    ``Trap`` (a BaseException). :class:`WouldBlock` is a synchronous built-in
    that would block. Anything else propagates (a bug either way).
    """
    try:
        return ("ok", f())
    except Trap:
        return ("trap", None)
    except WouldBlock:
        return ("blocks", None)
    except BaseException as exc:
        if SPEC is not None and isinstance(exc, SPEC.Trap):
            return ("trap", None)
        raise


# ---------------------------------------------------------------------------
# Hypothesis strategies: types (nested to a modest depth) and their values

PRIMITIVES: tuple[ValueType, ...] = (
    BOOL,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    CHAR,
    STRING,
)
KEYS: tuple[ValueType, ...] = tuple(t for t in PRIMITIVES if type(t) in KEY_TYPES)


def _labels(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(n))


def _flags() -> st.SearchStrategy[ValueType]:
    return st.integers(1, 32).map(lambda n: FlagsType(_labels("f", n)))


def _enum() -> st.SearchStrategy[ValueType]:
    # 257 and more cases need a u16 discriminant.
    return st.one_of(st.integers(1, 6), st.integers(250, 300)).map(
        lambda n: EnumType(_labels("e", n))
    )


def _leaf() -> st.SearchStrategy[ValueType]:
    return st.one_of(st.sampled_from(PRIMITIVES), _flags(), _enum())


def _compound(children: st.SearchStrategy[ValueType]) -> st.SearchStrategy[ValueType]:
    maybe = st.one_of(st.none(), children)
    return st.one_of(
        st.builds(ListType, children),
        st.builds(ListType, children, st.integers(1, 4)),
        st.lists(children, min_size=1, max_size=4).map(
            lambda ts: RecordType(tuple(zip(_labels("r", len(ts)), ts, strict=True)))
        ),
        st.lists(children, min_size=1, max_size=4).map(lambda ts: TupleType(tuple(ts))),
        st.lists(maybe, min_size=1, max_size=4).map(
            lambda ts: VariantType(tuple(zip(_labels("c", len(ts)), ts, strict=True)))
        ),
        # A variant with a u16 discriminant and one payload case.
        st.tuples(st.integers(257, 300), children).map(
            lambda nt: VariantType(
                tuple((f"c{i}", nt[1] if i == 0 else None) for i in range(nt[0]))
            )
        ),
        st.builds(OptionType, children),
        st.builds(ResultType, maybe, maybe),
        st.builds(MapType, st.sampled_from(KEYS), children),
    )


def value_types(
    max_leaves: int = 6, extra_leaves: st.SearchStrategy[ValueType] | None = None
) -> st.SearchStrategy[ValueType]:
    """Value types nested a few levels deep; handle types only from ``extra_leaves``."""
    leaf = _leaf() if extra_leaves is None else st.one_of(_leaf(), extra_leaves, extra_leaves)
    return st.recursive(leaf, _compound, max_leaves=max_leaves)


def _int(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([lo, hi, 0]), st.integers(lo, hi))


_SCALARS: dict[type, st.SearchStrategy[Any]] = {
    BoolType: st.booleans(),
    S8Type: _int(-(2**7), 2**7 - 1),
    U8Type: _int(0, 2**8 - 1),
    S16Type: _int(-(2**15), 2**15 - 1),
    U16Type: _int(0, 2**16 - 1),
    S32Type: _int(-(2**31), 2**31 - 1),
    U32Type: _int(0, 2**32 - 1),
    S64Type: _int(-(2**63), 2**63 - 1),
    U64Type: _int(0, 2**64 - 1),
    F32Type: st.floats(width=32),
    F64Type: st.floats(),
    CharType: st.characters(exclude_categories=("Cs",)),
    StringType: st.one_of(
        st.text(max_size=6),
        st.text(st.characters(max_codepoint=0xFF), max_size=6),
        st.text(st.characters(max_codepoint=0x7F), max_size=6),
    ),
}


HandleValues = Callable[[ValueType], st.SearchStrategy[Any]]


def values_of(t: ValueType | None, handle: HandleValues | None = None) -> st.SearchStrategy[Any]:
    """Our Python values of type ``t``; ``handle`` gives the values of handle types."""
    if t is None:
        return st.none()
    s = _SCALARS.get(type(t))
    if s is not None:
        return s
    if isinstance(t, ListType):
        if t.length is not None:
            return st.lists(values_of(t.element, handle), min_size=t.length, max_size=t.length)
        if isinstance(t.element, U8Type):
            return st.binary(max_size=6)
        return st.lists(values_of(t.element, handle), max_size=3)
    if isinstance(t, MapType):
        # A list of pairs may repeat a key; the pairs are lowered as given.
        pairs = st.lists(
            st.tuples(values_of(t.key, handle), values_of(t.value, handle)), max_size=3
        )
        return st.one_of(pairs, pairs.map(dict))
    if isinstance(t, RecordType):
        return st.fixed_dictionaries({label: values_of(ft, handle) for label, ft in t.fields})
    if isinstance(t, TupleType):
        return st.tuples(*(values_of(ft, handle) for ft in t.types))
    if isinstance(t, VariantType):
        return st.integers(0, len(t.cases) - 1).flatmap(
            lambda i: values_of(t.cases[i][1], handle).map(lambda v: Variant(t.cases[i][0], v))
        )
    if isinstance(t, EnumType):
        return st.sampled_from(t.labels)
    if isinstance(t, OptionType):
        inner = values_of(t.type, handle)
        if isinstance(t.type, OptionType):
            return st.one_of(st.none(), inner.map(Some))
        return st.one_of(st.none(), inner, inner.map(Some))
    if isinstance(t, ResultType):
        return st.one_of(values_of(t.ok, handle).map(Ok), values_of(t.error, handle).map(Err))
    if isinstance(t, FlagsType):
        return st.frozensets(st.sampled_from(t.labels))
    if handle is not None:
        return handle(t)
    raise TypeError(f"no value strategy for {t!r}")


@st.composite
def typed_values(
    draw: Any, types: st.SearchStrategy[ValueType] | None = None
) -> tuple[ValueType, Any]:
    """A type and a value of it."""
    t = draw(types if types is not None else value_types())
    return t, draw(values_of(t))


def memory_bytes(size: int) -> st.SearchStrategy[bytes]:
    """Memory contents biased to small bytes, so random discriminants, lengths and
    pointers are often valid (uniform bytes almost always trap early).

    Drawn from a seed: a list of ``size`` drawn bytes is slow to generate.
    """
    common = (0, 0, 0, 1, 2, 3, 4, 8, 16, 0x80, 0xFF)

    def fill(seed: int) -> bytes:
        rng = random.Random(seed)
        return bytes(
            rng.choice(common) if rng.random() < 0.6 else rng.randrange(256) for _ in range(size)
        )

    return st.integers(0, 2**32).map(fill)


def core_values_of(types: Sequence[str]) -> st.SearchStrategy[list[Any]]:
    """Arbitrary core values of the given core types (floats include every NaN)."""
    parts = []
    for ct in types:
        if ct == "i32":
            parts.append(st.one_of(st.integers(0, 40), _int(0, M32)))
        elif ct == "i64":
            parts.append(st.one_of(st.integers(0, 40), _int(0, M64)))
        elif ct == "f32":
            parts.append(st.floats(width=32))
        else:
            parts.append(st.floats())
    return st.tuples(*parts).map(list)
