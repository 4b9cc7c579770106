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
instance values are dicts ``name -> wasmtime extern``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

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
from ._engine import Engine, Store
from ._engine._exports import CoreExports
from ._errors import LinkError
from ._hostdefs import HostFunctionDef
from ._names import compatibility_key
from ._resolve import (
    DeclaredType,
    TypeSpace,
    describe,
    resolve_deftype,
    resolve_valtype,
)
from ._run._builtins import BuiltinFactory
from ._run._runtime import StoreHandle, StoreRuntime
from ._run._tasks import ComponentFunc, HostFunc, LiftedFunc, make_async_lower, make_sync_lower

__all__ = ["HostDefinitions", "InstanceItems", "instantiate_component"]


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


@attrs.define(eq=False)
class _ComponentDef:
    """A component definition and the scope its outer aliases refer to."""

    model: M.Component
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
    core_instances: list[Mapping[str, Any]] = attrs.field(factory=list)
    funcs: list[ComponentFunc] = attrs.field(factory=list)
    values: list[Any] = attrs.field(factory=list)
    components: list[_ComponentDef] = attrs.field(factory=list)
    instances: list[InstanceItems] = attrs.field(factory=list)

    def space_of(self, sort: M.Sort) -> list[Any]:
        if sort is M.Sort.TYPE:
            return self.space.types
        if sort is M.Sort.CORE_TYPE:
            return self.space.core_types
        return {
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
        }[sort]

    def get(self, sort: M.Sort, index: int) -> Any:
        items = self.space_of(sort)
        if not 0 <= index < len(items):
            raise LinkError(f"{sort.value} index {index} is out of bounds ({len(items)} defined)")
        return items[index]


_CORE_SORT_KIND = {
    "Func": M.Sort.CORE_FUNC,
    "Table": M.Sort.CORE_TABLE,
    "Memory": M.Sort.CORE_MEMORY,
    "Global": M.Sort.CORE_GLOBAL,
    "Tag": M.Sort.CORE_TAG,
}


def _core_sort_of(extern: Any) -> M.Sort | None:
    return _CORE_SORT_KIND.get(type(extern).__name__)


class _Linker:
    """One instantiation of a top-level component into one store."""

    def __init__(
        self,
        engine: Engine,
        modules: Mapping[int, Any],
        host: HostDefinitions,
        root_state: InstanceState,
        rt: StoreRuntime,
    ) -> None:
        self.engine = engine
        self.modules = modules
        self.host = host
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
            scope.handle = StoreHandle(Store(self.engine))
            self.rt.stores.append(scope.handle)
        return scope.handle

    def _store(self, scope: _Scope) -> Store:
        store: Store = self._handle(scope).store
        return store

    def _raw(self, scope: _Scope, func: Any, params: list[str], results: list[str]) -> Any:
        """A core function of ``scope``'s store, callable from any agent thread."""
        handle = self._handle(scope)
        raw = handle.store.raw_func(func, params, results)
        executor_of = self.rt

        def call(*args: Any) -> Any:
            agent = handle.agent
            if agent is None or executor_of.executor.on_agent(agent):
                return raw(*args)
            return executor_of.executor.call_on(agent, lambda: raw(*args))

        return call

    # -- entry ---------------------------------------------------------------

    def instantiate_root(self, component: M.Component) -> InstanceItems:
        scope = _Scope(self.root_state, TypeSpace(), None)
        return self._run(component, scope, args=None)

    # -- the walk ------------------------------------------------------------

    def _run(
        self, component: M.Component, scope: _Scope, args: Mapping[str, tuple[M.Sort, Any]] | None
    ) -> InstanceItems:
        exports: InstanceItems = {}
        for d in component.definitions:
            if isinstance(d, M.CustomSection):
                continue
            if isinstance(d, M.CoreModule):
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
                inst = scope.get(M.Sort.CORE_INSTANCE, d.instance)
                if d.name not in inst:
                    raise LinkError(f"core instance {d.instance} has no export {d.name!r}")
                scope.space_of(d.sort).append(inst[d.name])
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

    def _core_instantiate(self, scope: _Scope, d: M.CoreInstantiate) -> Mapping[str, Any]:
        module = scope.get(M.Sort.CORE_MODULE, d.module)
        named = {name: scope.get(M.Sort.CORE_INSTANCE, idx) for name, idx in d.args}
        imports = []
        for imp in module.imports:
            source = named.get(imp.module)
            if source is None:
                raise LinkError(f"core module import {imp.module!r} was not supplied")
            if imp.name not in source:
                raise LinkError(f"core instance {imp.module!r} has no export {imp.name!r}")
            imports.append(source[imp.name])
        store = self._store(scope)
        instance = store.instantiate(module, imports)
        return CoreExports(store.wasmtime_store, instance)

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
        if isinstance(d, M.ResourceType):
            rt = T.ResourceType(name="", instance=scope.state)
            if d.dtor is not None:
                dtor_core = scope.get(M.Sort.CORE_FUNC, d.dtor)
                rt.dtor = self._raw(scope, dtor_core, ["i32"], [])
            return rt
        return resolve_deftype(scope.space, d)

    # -- canon ---------------------------------------------------------------

    def _options(self, scope: _Scope, opts: M.CanonOptions, results: list[str]) -> CanonOptions:
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
            if name == "resource.new":
                return host_func(["i32"], ["i32"], lambda rep: R.resource_new(state, rt, rep))
            if name == "resource.rep":
                return host_func(["i32"], ["i32"], lambda i: R.resource_rep(state, rt, i))
            return host_func(["i32"], [], lambda i: R.resource_drop(state, rt, i))
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
        if name.startswith(("stream.", "future.", "error-context.")):
            return self._async_value_builtin(scope, d)
        raise LinkError(f"canon {name} is not supported by this runtime")

    def _async_value_builtin(self, scope: _Scope, d: M.CanonBuiltin) -> Any:
        """Stream, future and error-context built-ins (CanonicalABI.md "canon stream.*")."""
        inst = scope.state
        name = d.name
        host_func = self._store(scope).host_func
        rt = self.rt

        def wait(end: Any) -> None:
            task = rt.current_task()
            task.block_until(end.has_pending_event, False, f"{name} to finish")

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
            return host_func([], ["i64"], lambda: new(inst, t))
        if op in ("read", "write"):
            options = self._options(scope, d.options, [])
            is_async = d.options.is_async
            if not is_async:
                self.may_block.append(f"a synchronous {name}")
            if kind == "stream":
                assert isinstance(t, T.StreamType)
                copy = SB.stream_read if op == "read" else SB.stream_write
                return host_func(
                    ["i32", "i32", "i32"],
                    ["i32"],
                    lambda i, ptr, n: copy(
                        inst, t, options, i, ptr, n, is_async=is_async, wait=wait, hooks=HOOKS
                    ),
                )
            assert isinstance(t, T.FutureType)
            fcopy = SB.future_read if op == "read" else SB.future_write
            return host_func(
                ["i32", "i32"],
                ["i32"],
                lambda i, ptr: fcopy(
                    inst, t, options, i, ptr, is_async=is_async, wait=wait, hooks=HOOKS
                ),
            )
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
            return host_func(
                ["i32"], ["i32"], lambda i: cancel(inst, t, i, is_async=is_async, wait=wait)
            )
        drops: dict[str, Callable[[InstanceState, Any, int], None]] = {
            "stream.drop-readable": SB.stream_drop_readable,
            "stream.drop-writable": SB.stream_drop_writable,
            "future.drop-readable": SB.future_drop_readable,
            "future.drop-writable": SB.future_drop_writable,
        }
        drop = drops.get(name)
        if drop is None:
            raise LinkError(f"canon {name} is not supported by this runtime")
        return host_func(["i32"], [], lambda i: drop(inst, t, i))

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
        else:
            raise LinkError(f"import {name!r}: the host cannot supply a {ext.sort.value}")

    def _host_func(self, interface: str | None, name: str, ft: Any) -> ComponentFunc:
        if not isinstance(ft, T.FuncType):
            raise LinkError(f"import {name!r} does not have a function type")
        key = (None if interface is None else compatibility_key(interface), name)
        full = name if interface is None else f"{interface}#{name}"
        definition = self.host.functions.get(key)
        if definition is None:
            raise LinkError(f"missing import `{full}`: {describe(ft)} is not defined by the host")
        if definition.declared is not None and definition.declared != ft:
            raise LinkError(
                f"import `{full}`: the host defines {describe(definition.declared)}, "
                f"the component imports {describe(ft)}"
            )
        return HostFunc(self.rt, ft, definition.bind(self.rt.context), full)

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
            if isinstance(dd, M.TypeDecl):
                space.types.append(resolve_deftype(space, dd.type))
            elif isinstance(dd, M.CoreTypeDeclarator):
                space.core_types.append(dd.type)
            elif isinstance(dd, M.AliasDecl):
                a = dd.alias
                if not isinstance(a, M.AliasOuter):
                    raise LinkError(f"import {name!r}: unsupported alias in its instance type")
                target = space.enclosing(a.count)
                source = target.types if a.sort is M.Sort.TYPE else target.core_types
                space_list = space.types if a.sort is M.Sort.TYPE else space.core_types
                space_list.append(source[a.index])
            elif isinstance(dd, M.ExportDecl):
                export = dd.name.name
                ext = dd.type
                if provided is not None:
                    if export not in provided:
                        raise LinkError(f"missing import `{name}#{export}`")
                    sort, item = provided[export]
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
                else:
                    raise LinkError(f"import `{name}#{export}`: the host cannot supply it")
            else:
                raise LinkError(f"import {name!r}: unexpected declarator in an instance type")
        return items


def instantiate_component(
    engine: Engine,
    component: M.Component,
    modules: Mapping[int, Any],
    host: HostDefinitions,
    rt: StoreRuntime,
) -> tuple[InstanceItems, list[str]]:
    """Instantiate ``component`` into ``store``.

    Returns its exports and the reasons (if any) why its wasm may block and so
    must run on a store thread.
    """
    root = InstanceState(parent=None)
    rt.states.append(root)
    linker = _Linker(engine, modules, host, root, rt)
    exports = linker.instantiate_root(component)
    return exports, linker.may_block
