"""Host definitions: Python functions, objects and classes offered to components.

Two forms. The low-level one registers one callable per import name
(``Linker.define_function``) or one class per resource type
(``Linker.define_resource``). The interface form (``Linker.define_interface``)
takes a whole WIT interface at once from a Python object and its classes:

* WIT names are kebab-case, Python names snake_case: ``get-random-bytes`` is
  the attribute ``get_random_bytes``; a name that is a Python keyword gets a
  trailing underscore (``from_``);
* a resource ``input-stream`` is the class attribute ``InputStream`` (or the
  class given for it in ``resources=``); its constructor is the class itself,
  ``[method]input-stream.read`` is ``InputStream.read`` (called with the
  object first), ``[static]input-stream.open`` is ``InputStream.open``;
* when the guest drops its last owning handle to a host object, the host is
  told once: the resource's ``drop=`` callback if one was given, else the
  object's ``aclose()`` (in the instance's nursery) or ``close()``. Objects
  the guest still owns when the instance closes are released the same way.

Every definition of an interface is checked against the WIT it implements
when it is defined (a missing or misspelled function is a LinkError naming
it) and carries its WIT function type, which the linker compares with the
component's import.

Per-instance state. ``define_interface(name, factory=cls)`` makes one object
per component instance, ``cls(context)``, so the object's attributes are that
instance's state. A function decorated with :func:`with_context` receives the
calling instance's :class:`HostContext` as its first argument instead.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import keyword
import os
import weakref
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, final

import trio

from ._abi import _types as T
from ._arity import arity_error
from ._errors import Error, LinkError
from ._frozen import frozen
from ._names import compatibility_key
from ._wit import WitInterface, load_encoded, load_wit, resolve_interface

__all__ = [
    "HostContext",
    "HostFunctionDef",
    "define_interface",
    "python_name",
    "resource_for",
    "resource_class_name",
    "with_context",
]

F = TypeVar("F", bound=Callable[..., Any])

_CONTEXT_FLAG = "__trio_wasi_context__"

# How long an asynchronous release (``aclose()`` or an async drop callback)
# may take once its instance is being torn down.
RELEASE_GRACE_SECONDS = 10.0


def with_context(fn: F) -> F:
    """Mark a host function that takes the calling instance's :class:`HostContext` first.

    Works for plain and ``async def`` functions, module-level or static.
    """
    setattr(fn, _CONTEXT_FLAG, True)
    return fn


def _wants_context(fn: object) -> bool:
    target = fn.__func__ if isinstance(fn, (staticmethod, classmethod)) else fn
    return bool(getattr(target, _CONTEXT_FLAG, False))


@final
class HostContext:
    """The host's view of one component instance, shared by its host functions.

    ``data`` is whatever the embedder attached with
    ``linker.instantiate(component, data=...)``. :meth:`start_soon` runs
    background work in the instance's nursery, so closing the instance ends
    it; it may be called from any host function, on any thread.
    """

    def __init__(self, data: Any = None) -> None:
        self.data = data
        self._objects: dict[str, Any] = {}
        self._spawn: Callable[..., None] | None = None  # InstanceRuntime.spawn
        self._nursery: trio.Nursery | None = None
        self._drops: dict[type, Callable[[Any], Any]] = {}

    @property
    def nursery(self) -> trio.Nursery:
        """The instance's nursery (only inside ``async with linker.instantiate(...)``).

        Use it from the trio thread only; :meth:`start_soon` works anywhere.
        """
        if self._nursery is None:
            raise Error("the instance has no nursery: open it with `async with`")
        return self._nursery

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``fn(*args)`` as a trio task in the instance's nursery (from any thread).

        Until the task ends, a guest waiting for something only it can
        deliver is not reported as a deadlock.
        """
        if self._spawn is None:
            raise Error("the instance has no nursery: open it with `async with`")
        self._spawn(fn, *args, service=True, counted=True)

    # -- the runtime's side ----------------------------------------------------

    def _object(self, key: str, factory: Callable[[HostContext], Any]) -> Any:
        obj = self._objects.get(key)
        if obj is None:
            obj = self._objects[key] = factory(self)
        return obj

    def _drop_host_object(self, obj: object) -> None:
        """The guest dropped its last owning handle to ``obj`` (wasm side).

        A synchronous release runs here, on the thread running the guest; an
        asynchronous one runs in the instance's nursery.
        """
        release = self._release(obj)
        if release is None:
            return
        result = release()
        if result is not None and inspect.isawaitable(result):  # (most releases return None)
            awaitable = result

            async def finish() -> None:
                # Releasing is cleanup: it runs to the end (within a grace
                # period) even when the instance is being cancelled.
                with trio.move_on_after(RELEASE_GRACE_SECONDS) as scope:
                    scope.shield = True
                    await awaitable

            # In the instance's own nursery (which its block waits for), not
            # the service nursery, which is cancelled once the guest's work is
            # over and would cut the release short.
            if self._spawn is None:
                raise Error("the instance has no nursery: open it with `async with`")
            self._spawn(finish)

    async def _release_all(self, objects: list[object]) -> None:
        """Release host objects the guest still owned when the instance closed."""
        for obj in objects:
            release = self._release(obj)
            if release is not None:
                result = release()
                if inspect.isawaitable(result):
                    await result

    def _release(self, obj: object) -> Callable[[], Any] | None:
        drop = self._drop_for(type(obj))
        if drop is not None:
            return functools.partial(drop, obj)
        for name in ("aclose", "close"):
            method = getattr(obj, name, None)
            if callable(method):
                return method  # type: ignore[no-any-return]
        return None

    def _drop_for(self, cls: type) -> Callable[[Any], Any] | None:
        for base in cls.__mro__:
            drop = self._drops.get(base)
            if drop is not None:
                return drop
        return None


@frozen(eq=False)
class HostFunctionDef:
    """One host function: how to get its callable for an instance, and its WIT type.

    ``declared`` is the function type of the WIT it implements, when known;
    the linker checks it against the component's import.
    """

    name: str
    bind: Callable[[HostContext], Callable[..., Any]]
    declared: T.FuncType | None = None


def plain_definition(name: str, fn: Callable[..., Any]) -> HostFunctionDef:
    """A definition of one callable, with the context first if it asks for it."""
    if _wants_context(fn):
        return HostFunctionDef(name, lambda ctx: functools.partial(fn, ctx))
    return HostFunctionDef(name, lambda ctx: fn)


# ---------------------------------------------------------------------------
# Names


def python_name(wit_name: str) -> str:
    """The Python attribute for a WIT function or method name (kebab -> snake)."""
    name = wit_name.replace("-", "_")
    return name + "_" if keyword.iskeyword(name) else name


def resource_class_name(wit_name: str) -> str:
    """The Python class attribute for a WIT resource name (``input-stream`` -> ``InputStream``)."""
    return "".join(part[:1].upper() + part[1:] for part in wit_name.split("-"))


# ---------------------------------------------------------------------------
# WIT sources


@functools.cache
def _bundled_wit_dirs() -> tuple[Path, ...]:
    """The WIT this package ships (``trio_wasi/wit``, or ``wit/`` in a checkout).

    Found once: each interface definition asks, and resolving the path costs
    a system call per directory level.
    """
    here = Path(__file__).resolve().parent
    return tuple([p for p in (here / "wit", here.parent / "wit") if p.is_dir()][:1])


# The bundled WIT, encoded, so reading it needs no wasm-tools (kept current by
# tests/test_wit_reference.py; regenerate with
# ``wasm-tools component wit wit --wasm -o wit/host.wasm``).
BUNDLED_ENCODED = "host.wasm"


@functools.cache
def _bundled_wit() -> dict[str, WitInterface]:
    # Package data does not change while the process runs: read it once.
    found: dict[str, WitInterface] = {}
    for d in _bundled_wit_dirs():
        encoded = d / BUNDLED_ENCODED
        interfaces = load_encoded(encoded.read_bytes()) if encoded.is_file() else load_wit(d)
        for name, iface in interfaces.items():
            found.setdefault(name, iface)
    return found


def _find_interface(interface: str, wit: str | os.PathLike[str] | None) -> WitInterface:
    if wit is None and not _bundled_wit_dirs():
        raise LinkError(
            f"no WIT is known for `{interface}`: pass the WIT it implements with wit=..."
        )
    key = compatibility_key(interface)
    known: list[str] = []
    for found in [load_wit(wit) if wit is not None else _bundled_wit()]:
        if interface in found:
            return found[interface]
        for name, iface in found.items():
            if compatibility_key(name) == key:
                return iface
        known.extend(found)
    hint = difflib.get_close_matches(interface, known, n=1)
    also = f" (did you mean `{hint[0]}`?)" if hint else ""
    raise LinkError(f"the WIT given does not declare the interface `{interface}`{also}")


# ---------------------------------------------------------------------------
# define_interface


def define_interface(
    host: Any,
    interface: str,
    impl: object | None,
    *,
    factory: Callable[[HostContext], Any] | None,
    wit: str | os.PathLike[str] | None,
    resources: Mapping[str, type] | None,
    drops: Mapping[str, Callable[[Any], Any]] | None,
) -> list[tuple[str, type]]:
    """Check ``impl`` (or ``factory``) against the WIT of ``interface``; register it in ``host``.

    ``host`` is the linker's HostDefinitions. Returns the resource classes
    defined, with their WIT names.
    """
    if (impl is None) == (factory is None):
        raise TypeError("define_interface takes exactly one of impl and factory=")
    iface = _find_interface(interface, wit)
    resolved = resolve_interface(
        iface, functools.partial(resource_for, host), _resolution_cache(host)
    )
    # Where to look the functions up statically: the object, or the class a
    # factory makes (its methods are then checked unbound, self first).
    template: Any = impl if impl is not None else _factory_class(factory)
    template_is_class = impl is None and isinstance(template, type)
    resources = dict(resources or {})
    drops = dict(drops or {})
    problems: list[str] = []

    classes: dict[str, type] = {}
    for rname in resolved.resources:
        cls = resources.pop(rname, None)
        if cls is None and (impl is not None or template_is_class):
            cls = getattr(template, resource_class_name(rname), None)
        if not isinstance(cls, type):
            problems.append(
                f"resource `{rname}`: no class {resource_class_name(rname)} "
                f"(or pass resources={{{rname!r}: cls}})"
            )
            continue
        classes[rname] = cls
    if resources:
        problems.append(
            "resources= names resources the interface does not define: "
            + ", ".join(sorted(resources))
        )
    unknown_drops = set(drops) - set(resolved.resources)
    if unknown_drops:
        problems.append(
            "drops= names resources the interface does not define: "
            + ", ".join(sorted(unknown_drops))
        )

    defs: dict[str, HostFunctionDef] = {}
    for fname, ft in resolved.functions.items():
        full = f"{interface}#{fname}"
        try:
            defs[fname] = _function_def(
                full, fname, ft, impl, factory, template_is_class, classes, interface
            )
        except _Missing as exc:
            problems.append(str(exc))
    if problems:
        raise LinkError(f"interface `{interface}` is not fully defined: " + "; ".join(problems))

    key = compatibility_key(interface)
    for rname, cls in classes.items():
        rt = resource_for(host, interface, rname)
        rt.host_class = cls
        if rname in drops:
            host.drops[cls] = drops[rname]
    for fname, d in defs.items():
        host.functions[(key, fname)] = d
    return list(classes.items())


class _Missing(Exception):
    pass


# Resolved WIT worlds per host, by id (their resource types are the host's
# own); an entry goes when its host does.
_RESOLVED: dict[int, dict[int, Any]] = {}


def _resolution_cache(host: Any) -> dict[int, Any]:
    key = id(host)
    cache = _RESOLVED.get(key)
    if cache is None:
        cache = _RESOLVED[key] = {}
        weakref.finalize(host, _RESOLVED.pop, key, None)
    return cache


def _factory_class(factory: Any) -> Any:
    """The class a factory makes: the class itself, or one bound by ``functools.partial``.

    A partial lets one class serve several configurations
    (``factory=functools.partial(Impl, config)``) and still be checked here.
    """
    while isinstance(factory, functools.partial):
        factory = factory.func
    return factory


def resource_for(host: Any, interface: str | None, name: str) -> T.ResourceType:
    """The host's resource type ``name`` of ``interface``: one per name, made on first use.

    ``interface`` is None for a resource at the root of the component's world.
    """
    key = (None if interface is None else compatibility_key(interface), name)
    rt: T.ResourceType | None = host.resources.get(key)
    if rt is None:
        rt = host.resources[key] = T.ResourceType(name=name, instance=None)
    return rt


def _function_def(
    full: str,
    fname: str,
    ft: T.FuncType,
    impl: object | None,
    factory: Callable[[HostContext], Any] | None,
    template_is_class: bool,
    classes: Mapping[str, type],
    interface: str,
) -> HostFunctionDef:
    nparams = len(ft.params)
    if fname.startswith("["):
        kind, _, rest = fname[1:].partition("]")
        rname, _, member = rest.partition(".")
        cls = classes.get(rname)
        if cls is None:
            raise _Missing(f"`{fname}` needs the class of resource `{rname}`")
        if kind == "constructor":
            if _wants_context(getattr(cls, "__init__", None)):
                _check_signature(cls, nparams + 1, fname, f"{cls.__name__}(...)")
                return HostFunctionDef(full, lambda ctx: functools.partial(cls, ctx), ft)
            _check_signature(cls, nparams, fname, f"{cls.__name__}(...)")
            return HostFunctionDef(full, lambda ctx: cls, ft)
        attr = python_name(member)
        raw = inspect.getattr_static(cls, attr, None)
        fn = getattr(cls, attr, None)
        if fn is None or not callable(fn):
            raise _Missing(_missing_message(fname, f"{cls.__name__}.{attr}", cls))
        if kind == "static":
            if _wants_context(raw):
                _check_signature(fn, nparams + 1, fname, f"{cls.__name__}.{attr}")
                return HostFunctionDef(full, lambda ctx: functools.partial(fn, ctx), ft)
            _check_signature(fn, nparams, fname, f"{cls.__name__}.{attr}")
            return HostFunctionDef(full, lambda ctx: fn, ft)
        # A method: the WIT type's first parameter is ``self``, the object;
        # a method that asks for the context gets it right after ``self``.
        if _wants_context(raw):
            _check_signature(fn, nparams + 1, fname, f"{cls.__name__}.{attr}")
            return HostFunctionDef(full, functools.partial(_after_self, fn), ft)
        _check_signature(fn, nparams, fname, f"{cls.__name__}.{attr}")
        return HostFunctionDef(full, lambda ctx: fn, ft)
    attr = python_name(fname)
    if impl is not None:
        found = getattr(impl, attr, None)
        if found is None or not callable(found):
            raise _Missing(_missing_message(fname, attr, impl))
        free: Callable[..., Any] = found
        if _wants_context(free):
            _check_signature(free, nparams + 1, fname, attr)
            return HostFunctionDef(full, lambda ctx: functools.partial(free, ctx), ft)
        _check_signature(free, nparams, fname, attr)
        return HostFunctionDef(full, lambda ctx: free, ft)
    assert factory is not None
    if template_is_class:
        cls_ = _factory_class(factory)
        unbound = getattr(cls_, attr, None)
        if unbound is None or not callable(unbound):
            raise _Missing(_missing_message(fname, attr, cls_))
        # Checked unbound: ``self`` comes first.
        _check_signature(unbound, nparams + 1, fname, attr)
    key = compatibility_key(interface)

    def bind(ctx: HostContext) -> Callable[..., Any]:
        obj = ctx._object(key, factory)
        fn = getattr(obj, attr, None)
        if fn is None or not callable(fn):
            raise LinkError(f"`{full}`: the object made by the factory has no method {attr}")
        return fn  # type: ignore[no-any-return]

    return HostFunctionDef(full, bind, ft)


def _after_self(fn: Callable[..., Any], ctx: HostContext) -> Callable[..., Any]:
    """``fn`` with ``ctx`` passed right after the object (plain and ``async def`` alike)."""
    if inspect.iscoroutinefunction(fn):

        async def call_async(obj: Any, *args: Any) -> Any:
            return await fn(obj, ctx, *args)

        return call_async

    def call(obj: Any, *args: Any) -> Any:
        return fn(obj, ctx, *args)

    return call


def _missing_message(wit_name: str, attr: str, where: object) -> str:
    names = [n for n in dir(where) if not n.startswith("_")]
    hint = difflib.get_close_matches(attr.rpartition(".")[2], names, n=1)
    also = f" (found {hint[0]!r}: misspelled?)" if hint else ""
    return f"`{wit_name}` has no Python definition {attr}{also}"


def _check_signature(fn: Callable[..., Any], count: int, wit_name: str, attr: str) -> None:
    error = arity_error(fn, count)
    if error is not None:
        raise _Missing(f"`{wit_name}` ({attr}) does not accept {count} arguments: {error}")
