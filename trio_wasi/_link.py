"""Instantiation: walking a decoded component and building its index spaces.

Explainer.md describes a component as a sequence of definitions, each of which
appends to one index space (core funcs, core instances, types, funcs,
instances ...). Instantiating is therefore one in-order walk: imports take
their values from the instantiation arguments (or, at the top level, from the
host's definitions), core modules are instantiated by wasmtime with imports
looked up in the named argument instances, ``canon`` definitions make
trampolines, aliases copy items between index spaces, nested components become
new scopes, and exports form the instance value handed to the parent.

Component instance values are plain dicts ``name -> (sort, item)``; core
instance values map export names to externs (dicts for inline instances,
:class:`_CoreExports` references for instantiated modules).

The walk runs twice per component and set of host definitions. :func:`prelink`
runs it *dry*, without wasmtime: core instances are stood in for by their
modules' export names, and every index, name, import and type is resolved and
checked (trio_wasi/_typecheck.py), so every LinkError is raised before any
wasm runs. The result, a :class:`LinkedComponent`, then instantiates with the
checks off: per instance only stores, core instances, trampolines and the
component-level values bound to them are made. The walk itself is replayed
rather than compiled to a flat list because resource types are generative
(Explainer.md, "Type Definitions"): each instance resolves its own types. The
thousands of core wiring definitions of a real component take a shortcut and
never fetch an export until it is used as an import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, final

import attrs

from ._abi import _errorctx
from ._abi import _resources as R
from ._abi import _stream_builtins as SB
from ._abi import _types as T
from ._abi._handles import InstanceState
from ._abi._layout import flatten_functype, task_return_sig
from ._abi._options import CanonOptions
from ._abi._stream_builtins import GUEST_ASYNC_VALUES as HOOKS
from ._binary import _model as M
from ._component import Component, CoreModuleInfo, core_module_info
from ._engine import Engine, ExportRef, Store
from ._errors import LinkError
from ._hostdefs import HostFunctionDef
from ._names import compatibility_key
from ._resolve import (
    DeclaredType,
    TypeSpace,
    declare,
    describe,
    resolve_deftype,
    resolve_valtype,
)
from ._run._builtins import BuiltinFactory
from ._run._executor import InlineExecutor
from ._run._runtime import InstanceRuntime, StoreHandle
from ._run._tasks import ComponentFunc, HostFunc, LiftedFunc, make_async_lower, make_sync_lower
from ._run._threads import ThreadBuiltins
from ._typecheck import check_extern, check_func_type

__all__ = [
    "HostDefinitions",
    "InstanceItems",
    "LinkedComponent",
    "prelink",
]


InstanceItems = dict[str, tuple[M.Sort, Any]]


@attrs.define
class HostDefinitions:
    """What the host offers to satisfy top-level imports.

    Keys are ``(compatibility_key(interface) or None, name)``: a versioned
    interface name collides with every semver-compatible version of itself.
    """

    functions: dict[tuple[str | None, str], HostFunctionDef] = attrs.field(factory=dict)
    resources: dict[tuple[str | None, str], T.ResourceType] = attrs.field(factory=dict)
    instances: dict[str, InstanceItems] = attrs.field(factory=dict)
    # Drop callbacks of host resource classes (``define_interface(drops=...)``).
    drops: dict[type, Callable[[Any], Any]] = attrs.field(factory=dict)
    # Core modules the host supplies, as binaries (compiled by the component's engine).
    modules: dict[str, bytes] = attrs.field(factory=dict)


@attrs.define(eq=False)
class _ComponentDef:
    """A component definition and the scope its outer aliases refer to."""

    model: M.DecodedComponent
    outer: _Scope | None


@attrs.define(eq=False)
class _Scope:
    """The index spaces of one component instance under construction."""

    state: InstanceState
    space: TypeSpace
    outer: _Scope | None
    # The wasmtime store of this component instance, made on first use: each
    # component instance has its own (see _run/_executor.py).
    handle: StoreHandle | None = None
    core_funcs: list[Any] = attrs.field(factory=list)
    core_tables: list[Any] = attrs.field(factory=list)
    core_memories: list[Any] = attrs.field(factory=list)
    core_globals: list[Any] = attrs.field(factory=list)
    core_tags: list[Any] = attrs.field(factory=list)
    core_modules: list[Any] = attrs.field(factory=list)
    # Each a dict (inline core instances) or a _CoreExports (instantiated modules).
    core_instances: list[Any] = attrs.field(factory=list)
    funcs: list[ComponentFunc] = attrs.field(factory=list)
    values: list[Any] = attrs.field(factory=list)
    components: list[_ComponentDef] = attrs.field(factory=list)
    instances: list[InstanceItems] = attrs.field(factory=list)
    _spaces: dict[M.Sort, list[Any]] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        # Built once per scope: the walk looks an index space up for nearly
        # every definition.
        self._spaces = {
            M.Sort.TYPE: self.space.types,
            M.Sort.CORE_TYPE: self.space.core_types,
            M.Sort.CORE_FUNC: self.core_funcs,
            M.Sort.CORE_TABLE: self.core_tables,
            M.Sort.CORE_MEMORY: self.core_memories,
            M.Sort.CORE_GLOBAL: self.core_globals,
            M.Sort.CORE_TAG: self.core_tags,
            M.Sort.CORE_MODULE: self.core_modules,
            M.Sort.CORE_INSTANCE: self.core_instances,
            M.Sort.FUNC: self.funcs,
            M.Sort.VALUE: self.values,
            M.Sort.COMPONENT: self.components,
            M.Sort.INSTANCE: self.instances,
        }

    def space_of(self, sort: M.Sort) -> list[Any]:
        return self._spaces[sort]

    def get(self, sort: M.Sort, index: int) -> Any:
        items = self.space_of(sort)
        if not 0 <= index < len(items):
            raise LinkError(f"{sort.value} index {index} is out of bounds ({len(items)} defined)")
        return items[index]


# The thread built-ins beyond thread.index and thread.yield (CanonicalABI.md "canon thread.*").
_THREAD_SWITCHING = frozenset(
    {
        "thread.new-indirect",
        "thread.resume-later",
        "thread.suspend",
        "thread.suspend-then-resume",
        "thread.yield-then-resume",
        "thread.suspend-then-promote",
        "thread.yield-then-promote",
    }
)


class _CoreExports:
    """The exports of a core instance, as references looked up where they are used.

    Every name was checked to exist by the dry walk (see prelink), so a
    reference is made without asking wasmtime.
    """

    __slots__ = ("_address", "_instance")

    def __init__(self, store: Store, instance: Any) -> None:
        self._instance = instance
        self._address = store.instance_address(instance)

    def get(self, name: str) -> ExportRef:
        return (self._instance, self._address, name.encode("utf-8"))


class _Linker:
    """One instantiation of a top-level component into one store."""

    def __init__(
        self,
        engine: Engine,
        modules: Mapping[int, CoreModuleInfo],
        host: HostDefinitions,
        root_state: InstanceState,
        rt: InstanceRuntime,
        *,
        checked: bool = False,
        wiring: dict[tuple[int, int], tuple[tuple[int, str], ...]] | None = None,
    ) -> None:
        self.engine = engine
        self.modules = modules
        self.host = host
        # True when a dry walk (see prelink) already checked every index, name
        # and import type.
        self.checked = checked
        # Per core instantiation: (argument position, name) of each import.
        self.wiring: dict[tuple[int, int], tuple[tuple[int, str], ...]] = (
            wiring if wiring is not None else {}
        )
        self.root_state = root_state
        self.rt = rt
        # Every instance state created, so the caller can poison or close them.
        self.states: list[InstanceState] = [root_state]
        # Set when anything in the store may block a wasm frame: then its wasm
        # must run on a store thread (see _run/_executor.py).
        self.may_block: list[str] = []

    # -- stores ----------------------------------------------------------------

    def _handle(self, scope: _Scope) -> StoreHandle:
        if scope.handle is None:
            scope.handle = self.rt.new_store(self.engine)
        return scope.handle

    def _store(self, scope: _Scope) -> Store:
        store: Store = self._handle(scope).store
        return store

    def _raw(self, scope: _Scope, func: Any, params: list[str], results: list[str]) -> Any:
        """A core function of ``scope``'s store, callable from any agent thread."""
        return self.rt.core_func(self._handle(scope), func, params, results)

    # -- entry ---------------------------------------------------------------

    def instantiate_root(self, component: M.DecodedComponent) -> InstanceItems:
        scope = _Scope(self.root_state, TypeSpace(), None)
        return self._run(component, scope, args=None)

    # -- the walk ------------------------------------------------------------

    def _run(
        self,
        component: M.DecodedComponent,
        scope: _Scope,
        args: Mapping[str, tuple[M.Sort, Any]] | None,
    ) -> InstanceItems:
        exports: InstanceItems = {}
        spaces = scope._spaces
        checked = self.checked
        for d in component.definitions:
            # The core wiring definitions come first and, once the dry walk has
            # checked every index and name, take a shortcut: a componentize-py
            # component has thousands of them and a hundred or so others.
            if checked and type(d) is M.AliasCoreExport:
                spaces[d.sort].append(scope.core_instances[d.instance].get(d.name))
            elif checked and type(d) is M.CoreInlineInstance:
                scope.core_instances.append({e.name: spaces[e.sort][e.index] for e in d.exports})
            elif isinstance(d, M.CustomSection):
                continue
            elif isinstance(d, M.CoreModule):
                module = self.modules.get(d.offset)
                if module is None:
                    raise LinkError(f"core module at offset {d.offset} was not compiled")
                scope.core_modules.append(module)
            elif isinstance(d, M.CoreInstantiate):
                scope.core_instances.append(self._core_instantiate(scope, d))
            elif isinstance(d, M.CoreInlineInstance):
                scope.core_instances.append({e.name: scope.get(e.sort, e.index) for e in d.exports})
            elif isinstance(d, M.CoreTypeDef):
                scope.space.core_types.append(d.type)
            elif isinstance(d, M.NestedComponent):
                scope.components.append(_ComponentDef(d.component, scope))
            elif isinstance(d, M.Instantiate):
                scope.instances.append(self._instantiate_nested(scope, d))
            elif isinstance(d, M.InlineInstance):
                scope.instances.append(
                    {e.name.name: (e.sort, scope.get(e.sort, e.index)) for e in d.exports}
                )
            elif isinstance(d, M.AliasInstanceExport):
                scope.space_of(d.sort).append(self._alias_export(scope, d))
            elif isinstance(d, M.AliasCoreExport):
                extern = scope.get(M.Sort.CORE_INSTANCE, d.instance).get(d.name)
                if extern is None:
                    raise LinkError(f"core instance {d.instance} has no export {d.name!r}")
                scope.space_of(d.sort).append(extern)
            elif isinstance(d, M.AliasOuter):
                target: _Scope | None = scope
                for _ in range(d.count):
                    target = target.outer if target is not None else None
                if target is None:
                    raise LinkError(f"outer alias count {d.count} reaches past the outermost scope")
                scope.space_of(d.sort).append(target.get(d.sort, d.index))
            elif isinstance(d, M.TypeDef):
                scope.space.types.append(self._define_type(scope, d.type))
            elif isinstance(d, M.CanonLift):
                scope.funcs.append(self._lift(scope, d))
            elif isinstance(d, M.CanonLower):
                scope.core_funcs.append(self._lower(scope, d))
            elif isinstance(d, M.CanonBuiltin):
                scope.core_funcs.append(self._builtin(scope, d))
            elif isinstance(d, M.Import):
                self._import(scope, d, args)
            elif isinstance(d, M.Export):
                item = scope.get(d.sort, d.index)
                if d.type is not None and not checked:
                    # An ascribed export type must describe the item
                    # (Explainer.md, "Import and Export Definitions").
                    check_extern(
                        scope.space,
                        d.type,
                        d.sort,
                        item,
                        f"export `{d.name.name}`",
                        func_type_of=_func_type_of,
                    )
                if isinstance(item, LiftedFunc) and not item.named:
                    item.name, item.named = d.name.name, True  # for messages
                exports[d.name.name] = (d.sort, item)
                # An export introduces a new index aliasing the item.
                scope.space_of(d.sort).append(item)
            elif isinstance(d, (M.Start, M.Value)):
                raise LinkError("value definitions and start functions are not supported")
            else:
                raise LinkError(f"unsupported definition {type(d).__name__}")
        return exports

    # -- core instances ----------------------------------------------------------

    def _core_instantiate(self, scope: _Scope, d: M.CoreInstantiate) -> Any:
        info: CoreModuleInfo = scope.get(M.Sort.CORE_MODULE, d.module)
        store = self._store(scope)
        return _CoreExports(store, store.instantiate(info.module, self._core_imports(scope, d)))

    def _core_imports(self, scope: _Scope, d: M.CoreInstantiate) -> list[Any]:
        """The externs of the imports of ``d``'s module, in import order."""
        info: CoreModuleInfo = scope.get(M.Sort.CORE_MODULE, d.module)
        if self.checked:
            # Which argument and name each import comes from, worked out once
            # per definition and module (the dry walk checked they exist).
            key = (id(d), id(info))
            wiring = self.wiring.get(key)
            if wiring is None:
                position = {name: n for n, (name, _) in enumerate(d.args)}
                wiring = tuple((position[m], name) for m, name in info.imports)
                self.wiring[key] = wiring
            sources = [scope.core_instances[idx] for _, idx in d.args]
            return [sources[n].get(name) for n, name in wiring]
        named = {name: scope.get(M.Sort.CORE_INSTANCE, idx) for name, idx in d.args}
        imports = []
        for imp_module, imp_name in info.imports:
            source = named.get(imp_module)
            if source is None:
                raise LinkError(f"core module import {imp_module!r} was not supplied")
            item = source.get(imp_name)
            if item is None:
                raise LinkError(f"core instance {imp_module!r} has no export {imp_name!r}")
            imports.append(item)
        return imports

    # -- components ----------------------------------------------------------

    def _instantiate_nested(self, scope: _Scope, d: M.Instantiate) -> InstanceItems:
        cdef: _ComponentDef = scope.get(M.Sort.COMPONENT, d.component)
        args = {a.name: (a.sort, scope.get(a.sort, a.index)) for a in d.args}
        state = InstanceState(parent=scope.state)
        self.states.append(state)
        self.rt.states.append(state)
        outer = cdef.outer
        child = _Scope(state, TypeSpace(outer=outer.space if outer else None), outer)
        return self._run(cdef.model, child, args)

    def _alias_export(self, scope: _Scope, d: M.AliasInstanceExport) -> Any:
        inst = scope.get(M.Sort.INSTANCE, d.instance)
        if d.name not in inst:
            raise LinkError(f"instance {d.instance} has no export {d.name!r}")
        sort, item = inst[d.name]
        if sort is not d.sort:
            raise LinkError(f"export {d.name!r} is a {sort.value}, not a {d.sort.value}")
        return item

    # -- types ---------------------------------------------------------------

    def _define_type(self, scope: _Scope, d: M.DefType) -> Any:
        if isinstance(d, M.ResourceTypeDef):
            rt = T.ResourceType(name="", instance=scope.state)
            if d.dtor is not None:
                dtor_core = scope.get(M.Sort.CORE_FUNC, d.dtor)
                rt.dtor = self._raw(scope, dtor_core, ["i32"], [])
            return rt
        return resolve_deftype(scope.space, d)

    # -- canon ---------------------------------------------------------------

    def _options(self, scope: _Scope, opts: M.CanonOptionList, results: list[str]) -> CanonOptions:
        memory = None
        if opts.memory is not None:
            memory = self._store(scope).memory(scope.get(M.Sort.CORE_MEMORY, opts.memory))
        realloc = None
        if opts.realloc is not None:
            realloc = self._raw(
                scope, scope.get(M.Sort.CORE_FUNC, opts.realloc), ["i32"] * 4, ["i32"]
            )
        post_return = None
        if opts.post_return is not None:
            post_return = self._raw(
                scope, scope.get(M.Sort.CORE_FUNC, opts.post_return), results, []
            )
        callback = None
        if opts.callback is not None:
            callback = self._raw(
                scope, scope.get(M.Sort.CORE_FUNC, opts.callback), ["i32"] * 3, ["i32"]
            )
        return CanonOptions(
            memory=memory,
            string_encoding=opts.string_encoding,
            realloc=realloc,
            post_return=post_return,
            is_async=opts.is_async,
            callback=callback,
        )

    def _lift(self, scope: _Scope, d: M.CanonLift) -> ComponentFunc:
        ft = scope.space.type_at(d.type_index)
        if not isinstance(ft, T.FuncType):
            raise LinkError(f"canon lift: type index {d.type_index} is not a function type")
        sig = flatten_functype(ft, d.options, "lift")
        options = self._options(scope, d.options, list(sig.results))
        core = self._raw(
            scope, scope.get(M.Sort.CORE_FUNC, d.core_func), list(sig.params), list(sig.results)
        )
        if d.options.is_async and d.options.callback is None:
            self.may_block.append("a stackful async lift")
        elif not d.options.is_async and ft.is_async:
            self.may_block.append("a synchronous lift of an async function")
        return LiftedFunc(self.rt, ft, core, options, scope.state, self._handle(scope))

    def _lower(self, scope: _Scope, d: M.CanonLower) -> Any:
        callee: ComponentFunc = scope.get(M.Sort.FUNC, d.func)
        sig = flatten_functype(callee.type, d.options, "lower")
        options = self._options(scope, d.options, [])
        if d.options.is_async:
            body = make_async_lower(self.rt, callee, options, scope.state)
        else:
            if callee.type.is_async:
                self.may_block.append("a synchronous lower of an async function")
            elif isinstance(callee, HostFunc) and callee.is_coroutine:
                # The calling frame waits while the coroutine runs on trio.
                self.may_block.append(
                    f"a synchronous call of the async host function {callee.name}"
                )
            body = make_sync_lower(self.rt, callee, options, scope.state)
        return self._store(scope).host_func(list(sig.params), list(sig.results), body)

    def _builtin(self, scope: _Scope, d: M.CanonBuiltin) -> Any:
        state = scope.state
        name = d.name
        host_func = self._store(scope).host_func
        if name in ("resource.new", "resource.rep", "resource.drop"):
            assert d.type_index is not None
            rt = scope.space.type_at(d.type_index)
            if not isinstance(rt, T.ResourceType):
                raise LinkError(f"canon {name}: type index {d.type_index} is not a resource")
            # (Partials, not lambdas: a built-in's call is then one Python frame.)
            if name == "resource.new":
                return host_func(["i32"], ["i32"], partial(R.resource_new, state, rt))
            if name == "resource.rep":
                return host_func(["i32"], ["i32"], partial(R.resource_rep, state, rt))
            return host_func(["i32"], [], partial(R.resource_drop, state, rt))
        f = BuiltinFactory(self.rt, state)
        if name == "backpressure.inc":
            return host_func([], [], f.backpressure_inc())
        if name == "backpressure.dec":
            return host_func([], [], f.backpressure_dec())
        if name == "task.return":
            result = None if d.result is None else resolve_valtype(scope.space, d.result)
            options = self._options(scope, d.options, [])
            sig = task_return_sig(result)
            return host_func(list(sig.params), [], f.task_return(result, options))
        if name == "task.cancel":
            return host_func([], [], f.task_cancel())
        if name in ("context.get", "context.set"):
            assert d.index is not None and d.core_valtype is not None
            if d.index > 1 or d.core_valtype is not M.CoreValType.I32:
                raise LinkError(f"canon {name}: unsupported context slot {d.index}")
            if name == "context.get":
                return host_func([], ["i32"], f.context_get(d.index))
            return host_func(["i32"], [], f.context_set(d.index))
        if name == "waitable-set.new":
            return host_func([], ["i32"], f.waitable_set_new())
        if name in ("waitable-set.wait", "waitable-set.poll"):
            assert d.memory is not None
            memory = self._store(scope).memory(scope.get(M.Sort.CORE_MEMORY, d.memory))
            if name == "waitable-set.wait":
                self.may_block.append("waitable-set.wait")
                return host_func(
                    ["i32", "i32"], ["i32"], f.waitable_set_wait(d.cancellable, memory)
                )
            return host_func(["i32", "i32"], ["i32"], f.waitable_set_poll(d.cancellable, memory))
        if name == "waitable-set.drop":
            return host_func(["i32"], [], f.waitable_set_drop())
        if name == "waitable.join":
            return host_func(["i32", "i32"], [], f.waitable_join())
        if name == "subtask.cancel":
            if not d.is_async:
                self.may_block.append("a synchronous subtask.cancel")
            return host_func(["i32"], ["i32"], f.subtask_cancel(d.is_async))
        if name == "subtask.drop":
            return host_func(["i32"], [], f.subtask_drop())
        if name == "thread.yield":
            self.may_block.append("thread.yield")
            return host_func([], ["i32"], f.thread_yield(d.cancellable))
        if name == "thread.index":
            return host_func([], ["i32"], f.thread_index())
        if name in _THREAD_SWITCHING:
            return self._thread_builtin(scope, d)
        if name.startswith(("stream.", "future.", "error-context.")):
            return self._async_value_builtin(scope, d)
        raise LinkError(f"canon {name} is not supported by this runtime")

    def _guest_threads_allowed(self) -> bool:
        limits = self.rt.limits
        return limits is not None and limits.guest_threads

    def _thread_builtin(self, scope: _Scope, d: M.CanonBuiltin) -> Any:
        """Guest threads (CanonicalABI.md "canon thread.*"; design in _run/_threads.py)."""
        name = d.name
        host_func = self._store(scope).host_func
        t = ThreadBuiltins(self.rt, scope.state)
        # A thread that switches parks its frame: only store threads can.
        self.may_block.append(name)
        if name == "thread.new-indirect":
            if not self._guest_threads_allowed():
                raise LinkError(
                    "canon thread.new-indirect: this component creates guest threads, which"
                    " are off unless allowed (Limits(guest_threads=True), -W guest-threads=y):"
                    " in a store with guest threads, unbounded recursion in wasm ends the"
                    " process instead of trapping"
                )
            assert d.table is not None and d.type_index is not None
            ft = scope.space.core_types[d.type_index]
            if not isinstance(ft, M.CoreFuncType) or ft.params != (M.CoreValType.I32,):
                raise LinkError("canon thread.new-indirect: only (param i32) thread functions")
            handle = self._handle(scope)
            # Several OS threads of this store run wasm, in any order.
            handle.threads = True
            table = scope.get(M.Sort.CORE_TABLE, d.table)
            return host_func(["i32", "i32"], ["i32"], t.new_indirect(handle, table))
        if name == "thread.resume-later":
            return host_func(["i32"], [], t.resume_later())
        if name == "thread.suspend":
            return host_func([], ["i32"], t.suspend(d.cancellable))
        stay_ready = name.startswith("thread.yield")
        if name.endswith("-resume"):
            return host_func(["i32"], ["i32"], t.switch(d.cancellable, stay_ready=stay_ready))
        return host_func(["i32"], ["i32"], t.promote(d.cancellable, stay_ready=stay_ready))

    def _async_value_builtin(self, scope: _Scope, d: M.CanonBuiltin) -> Any:
        """Stream, future and error-context built-ins (CanonicalABI.md "canon stream.*")."""
        inst = scope.state
        name = d.name
        host_func = self._store(scope).host_func
        f = BuiltinFactory(self.rt, inst)
        wait = f.copy_wait(name)
        may_wait = f.may_block

        if name.startswith("error-context."):
            options = self._options(scope, d.options, [])
            if name == "error-context.new":
                return host_func(
                    ["i32", "i32"],
                    ["i32"],
                    lambda ptr, units: _errorctx.error_context_new(inst, options, ptr, units),
                )
            if name == "error-context.debug-message":
                return host_func(
                    ["i32", "i32"],
                    [],
                    lambda i, ptr: _errorctx.error_context_debug_message(inst, options, i, ptr),
                )
            return host_func(["i32"], [], lambda i: _errorctx.error_context_drop(inst, i))
        assert d.type_index is not None
        t = scope.space.type_at(d.type_index)
        kind, op = name.split(".", 1)
        expected = T.StreamType if kind == "stream" else T.FutureType
        if not isinstance(t, expected):
            raise LinkError(f"canon {name}: type index {d.type_index} is not a {kind} type")
        # Each built-in below is picked by ``kind``, which the isinstance check above ties
        # to the type of ``t``; where one name holds both the stream and the future variant,
        # its ``t`` parameter is typed Any.
        if op == "new":
            new: Callable[[InstanceState, Any], int] = (
                SB.stream_new if kind == "stream" else SB.future_new
            )
            return host_func([], ["i64"], partial(new, inst, t))
        if op in ("read", "write"):
            options = self._options(scope, d.options, [])
            is_async = d.options.is_async
            guard = (lambda body: body) if is_async else may_wait
            if not is_async:
                self.may_block.append(f"a synchronous {name}")
            body = SB.copy_builtin(
                name, inst, t, options, is_async=is_async, wait=wait, hooks=HOOKS
            )
            params = ["i32", "i32", "i32"] if kind == "stream" else ["i32", "i32"]
            return host_func(params, ["i32"], guard(body))
        if op in ("cancel-read", "cancel-write"):
            is_async = d.is_async
            if not is_async:
                self.may_block.append(f"a synchronous {name}")
            cancels: dict[str, Callable[..., int]] = {
                "stream.cancel-read": SB.stream_cancel_read,
                "stream.cancel-write": SB.stream_cancel_write,
                "future.cancel-read": SB.future_cancel_read,
                "future.cancel-write": SB.future_cancel_write,
            }
            cancel = cancels[name]
            body = lambda i: cancel(inst, t, i, is_async=is_async, wait=wait)  # noqa: E731
            return host_func(["i32"], ["i32"], body if is_async else may_wait(body))
        drop = SB.drop_builtin(name, inst, t)
        if drop is None:
            raise LinkError(f"canon {name} is not supported by this runtime")
        return host_func(["i32"], [], drop)

    # -- imports -------------------------------------------------------------

    def _import(
        self, scope: _Scope, d: M.Import, args: Mapping[str, tuple[M.Sort, Any]] | None
    ) -> None:
        name = d.name.name
        ext = d.type
        if args is not None:
            if name not in args:
                raise LinkError(f"instantiation argument {name!r} was not supplied")
            sort, item = args[name]
            if not self.checked:
                check_extern(
                    scope.space,
                    ext,
                    sort,
                    item,
                    f"instantiation argument `{name}`",
                    func_type_of=_func_type_of,
                )
            scope.space_of(sort).append(item)
            return
        # Top level: the host supplies the import.
        if isinstance(ext, M.TypeBound):
            if ext.eq is not None:
                scope.space.types.append(scope.space.type_at(ext.eq))
                return
            scope.space.types.append(self._host_resource(None, name))
            return
        if not isinstance(ext, M.SortType):
            raise LinkError(f"import {name!r}: value imports are not supported")
        if ext.sort is M.Sort.FUNC:
            ft = scope.space.type_at(ext.type_index)
            scope.funcs.append(self._host_func(None, name, ft))
        elif ext.sort is M.Sort.INSTANCE:
            decl = scope.space.type_at(ext.type_index)
            if not isinstance(decl, DeclaredType):
                raise LinkError(f"import {name!r}: type {ext.type_index} is not an instance type")
            scope.instances.append(self._host_instance(name, decl))
        elif ext.sort is M.Sort.CORE_MODULE:
            scope.core_modules.append(self._host_module(scope, name, ext.type_index))
        else:
            raise LinkError(f"import {name!r}: the host cannot supply a {ext.sort.value}")

    def _host_module(self, scope: _Scope, name: str, type_index: int) -> CoreModuleInfo:
        """A core module the host defined (``Linker.define_module``), checked against its type."""
        data = self.host.modules.get(compatibility_key(name))
        if data is None:
            raise LinkError(f"missing import `{name}`: core module is not defined by the host")
        info = core_module_info(self.engine.compile(data))
        if not self.checked:
            declared = scope.space.core_types[type_index]
            if isinstance(declared, M.CoreModuleType):
                imports = set(info.imports)
                for dd in declared.decls:
                    if isinstance(dd, M.CoreExportDecl) and dd.name not in info.exports:
                        raise LinkError(
                            f"import `{name}`: the host's core module does not export {dd.name!r}"
                        )
                    if isinstance(dd, M.CoreImportDecl):
                        imports.discard((dd.module, dd.name))
                if imports:
                    extra = ", ".join(f"{m}.{n}" for m, n in sorted(imports))
                    raise LinkError(
                        f"import `{name}`: the host's core module imports what its type "
                        f"does not declare: {extra}"
                    )
        return info

    def _host_func(self, interface: str | None, name: str, ft: Any) -> ComponentFunc:
        if not isinstance(ft, T.FuncType):
            raise LinkError(f"import {name!r} does not have a function type")
        key = (None if interface is None else compatibility_key(interface), name)
        full = name if interface is None else f"{interface}#{name}"
        definition = self.host.functions.get(key)
        if definition is None:
            raise LinkError(f"missing import `{full}`: {describe(ft)} is not defined by the host")
        if not self.checked and definition.declared is not None:
            check_func_type(
                ft,
                definition.declared,
                f"import `{full}`",
                actual_is="host defines",
                expected_is="the component imports",
            )
        return HostFunc(self.rt, ft, self._host_callable(definition), full)

    def _host_callable(self, definition: HostFunctionDef) -> Callable[..., Any]:
        """The callable ``definition`` gives this instance."""
        return definition.bind(self.rt.context)

    def _host_resource(self, interface: str | None, name: str) -> T.ResourceType:
        key = (None if interface is None else compatibility_key(interface), name)
        rt = self.host.resources.get(key)
        if rt is None:
            full = name if interface is None else f"{interface}#{name}"
            raise LinkError(f"missing import `{full}`: resource type is not defined by the host")
        return rt

    def _host_instance(self, name: str, decl: DeclaredType) -> InstanceItems:
        """Build an instance satisfying instance type ``decl`` from host definitions."""
        provided = self.host.instances.get(compatibility_key(name))
        space = TypeSpace(outer=decl.outer)
        items: InstanceItems = {}
        for dd in decl.decl.decls:
            if declare(space, dd, f"import {name!r}"):
                continue
            if isinstance(dd, M.ExportDecl):
                export = dd.name.name
                ext = dd.type
                if provided is not None:
                    if export not in provided:
                        raise LinkError(f"missing import `{name}#{export}`")
                    sort, item = provided[export]
                    if not self.checked:
                        check_extern(
                            space,
                            ext,
                            sort,
                            item,
                            f"import `{name}#{export}`",
                            func_type_of=_func_type_of,
                        )
                    if sort is M.Sort.TYPE:
                        space.types.append(item)
                    items[export] = (sort, item)
                    continue
                if isinstance(ext, M.TypeBound):
                    if ext.eq is not None:
                        t = space.type_at(ext.eq)
                    else:
                        t = self._host_resource(name, export)
                    space.types.append(t)
                    items[export] = (M.Sort.TYPE, t)
                elif isinstance(ext, M.SortType) and ext.sort is M.Sort.FUNC:
                    ft = space.type_at(ext.type_index)
                    items[export] = (M.Sort.FUNC, self._host_func(name, export, ft))
                elif isinstance(ext, M.SortType) and ext.sort is M.Sort.INSTANCE:
                    # A nested instance: its items are defined under the
                    # interface name ``outer#inner``.
                    nested = space.type_at(ext.type_index)
                    if not isinstance(nested, DeclaredType):
                        raise LinkError(f"import `{name}#{export}` is not an instance type")
                    items[export] = (
                        M.Sort.INSTANCE,
                        self._host_instance(f"{name}#{export}", nested),
                    )
                else:
                    raise LinkError(f"import `{name}#{export}`: the host cannot supply it")
            else:
                raise LinkError(f"import {name!r}: unexpected declarator in an instance type")
        return items


def _func_type_of(item: Any) -> Any:
    return item.type if isinstance(item, ComponentFunc) else item


# -- the dry walk ------------------------------------------------------------------


class _Placeholder:
    """Stands for a core item (extern, store function, memory) during the dry walk."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __call__(self, *args: Any) -> Any:
        raise LinkError(f"{self.what} was called while linking")  # pragma: no cover


class _DryStore:
    """What the dry walk hands to trampolines instead of a wasmtime store."""

    def host_func(self, params: Sequence[str], results: Sequence[str], fn: Any) -> Any:
        return _Placeholder("a canon trampoline")

    def memory(self, memory: Any) -> Any:
        return None


class _DryCoreExports:
    """The exports of a core instance the dry walk did not create: names only."""

    __slots__ = ("_info",)

    def __init__(self, info: CoreModuleInfo) -> None:
        self._info = info

    def get(self, name: str) -> Any:
        return _Placeholder(f"core export {name!r}") if name in self._info.exports else None


class _DryLinker(_Linker):
    """The walk without wasmtime: resolves and type-checks everything, runs nothing.

    Core instances are stood in for by their modules' export names, so every
    import, alias and instantiation argument is looked up and checked exactly
    as a real instantiation would, and every LinkError is raised before any
    core module (and so any start function) is instantiated.
    """

    _STORE = _DryStore()

    def _handle(self, scope: _Scope) -> StoreHandle:
        if scope.handle is None:
            scope.handle = StoreHandle(self._STORE)
        return scope.handle

    def _store(self, scope: _Scope) -> Any:
        return self._STORE

    def _raw(self, scope: _Scope, func: Any, params: list[str], results: list[str]) -> Any:
        return _Placeholder("a core function")

    def _guest_threads_allowed(self) -> bool:
        # The instance's limits decide, when there is an instance.
        return True

    def _host_callable(self, definition: Any) -> Callable[..., Any]:
        # Binding may build host objects (interface factories): not before
        # there is an instance for them.
        return _Placeholder("a host function")

    def _core_instantiate(self, scope: _Scope, d: M.CoreInstantiate) -> Any:
        self._core_imports(scope, d)
        info: CoreModuleInfo = scope.get(M.Sort.CORE_MODULE, d.module)
        return _DryCoreExports(info)


# -- pre-linked components ----------------------------------------------------------


def _snapshot(host: HostDefinitions) -> HostDefinitions:
    """A copy of ``host`` that later definitions do not change (every field, shallowly)."""
    fields = attrs.fields(HostDefinitions)
    return HostDefinitions(**{f.name: dict(getattr(host, f.name)) for f in fields})


@final
class LinkedComponent:
    """A component whose imports are resolved and type-checked against host definitions.

    Made by :func:`prelink`; instantiating it does only per-instance work. It
    keeps a snapshot of the host definitions it was checked against, so
    definitions added to a linker afterwards do not affect it.
    """

    def __init__(
        self,
        component: M.DecodedComponent,
        engine: Engine,
        modules: Mapping[int, CoreModuleInfo],
        host: HostDefinitions,
        may_block: tuple[str, ...],
    ) -> None:
        self.model = component
        self.engine = engine
        self._modules = modules
        self.host = host
        # Why the component's wasm may block (and so runs on store threads).
        self.may_block = may_block
        # Filled by the first instantiation, reused by the next ones. Keys are
        # ids of definitions and module infos, which self.model and
        # self._modules keep alive.
        self._wiring: dict[tuple[int, int], tuple[tuple[int, str], ...]] = {}

    def _instantiate(self, rt: InstanceRuntime) -> tuple[InstanceItems, list[str]]:
        """Create the instance's stores and core instances in ``rt``.

        Returns its exports and the reasons why its wasm may block. The stores
        made are in ``rt.stores`` even when this raises (a start function
        trapping), so the caller can close them.
        """
        limits = rt.limits
        if limits is None:
            root = InstanceState(parent=None)
        else:
            root = InstanceState(
                parent=None,
                max_handles=limits.max_handles,
                hostcall_budget=limits.hostcall_budget,
            )
        rt.states.append(root)
        linker = _Linker(
            self.engine, self._modules, self.host, root, rt, checked=True, wiring=self._wiring
        )
        exports = linker.instantiate_root(self.model)
        return exports, linker.may_block

    def __repr__(self) -> str:
        return f"<LinkedComponent with {len(self._modules)} core modules>"


def prelink(component: Component, host: HostDefinitions) -> LinkedComponent:
    """Resolve and type-check every import of ``component`` against ``host``.

    Raises LinkError for a missing import, a host definition of the wrong
    declared type or a miswired composition; no wasm runs. The result is
    cached on the component for as long as ``host`` holds the same
    definitions (compared by identity), so instantiating a component again
    with an unchanged linker reuses it.
    """
    key = _definitions_key(host)
    cache: list[tuple[tuple[Any, ...], LinkedComponent]] = component._linked
    for cached_key, linked in cache:
        if cached_key == key:
            return linked
    snapshot = _snapshot(host)
    modules = component._module_infos()
    rt = InstanceRuntime(InlineExecutor())
    dry = _DryLinker(component.engine, modules, snapshot, InstanceState(parent=None), rt)
    dry.instantiate_root(component.model)
    linked = LinkedComponent(
        component.model, component.engine, modules, snapshot, tuple(dry.may_block)
    )
    cache.append((key, linked))
    del cache[:-_LINKED_CACHE_SIZE]
    return linked


# Pre-linked forms kept per component (one per distinct set of host definitions).
_LINKED_CACHE_SIZE = 8


def _definitions_key(host: HostDefinitions) -> tuple[Any, ...]:
    # Identities, not equality: the pre-linked form calls the very objects it
    # was checked with, and its snapshot keeps them alive, so an id in a
    # cached key cannot be reused by another object. Instance values are
    # dicts of (sort, item); their items are compared the same way.
    def ident(value: Any) -> Any:
        if isinstance(value, dict):
            return tuple((k, v[0], id(v[1])) for k, v in value.items())
        return id(value)

    return tuple(
        tuple((k, ident(v)) for k, v in getattr(host, f.name).items())
        for f in attrs.fields(HostDefinitions)
    )
