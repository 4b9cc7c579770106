"""Whether a Python callable accepts a given number of positional arguments.

Host functions are checked when they are defined and again when each instance
binds them, and ``inspect.signature`` costs some 20 microseconds a call (a few
milliseconds for the WASI host of a real component, every instance); a plain
function that accepts the count is recognised from its code object. A bound
method, a ``functools.partial`` of positional arguments and an object with a
``__call__`` method are checked as the function underneath with the bound
arguments counted, so the per-instance
objects share the verdicts of the functions they wrap, kept per function.
"""

from __future__ import annotations

import functools
import inspect
import types
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["arity_error"]

# function -> {argument count: None (accepted) or the reason it is not}.
# Weak, so a checked closure or class can still be collected.
_verdicts: weakref.WeakKeyDictionary[Any, dict[int, str | None]] = weakref.WeakKeyDictionary()


def arity_error(fn: Callable[..., Any], count: int) -> str | None:
    """Why ``fn`` cannot be called with ``count`` positional arguments, or None if it can.

    Callables without a signature (builtins and other C callables) pass: there
    is nothing to check them against.
    """
    target: Any = fn
    while True:
        if isinstance(target, types.MethodType):
            count += 1
            target = target.__func__
        elif type(target) is functools.partial and not target.keywords:
            count += len(target.args)
            target = target.func
        elif _plain_instance(target):
            # An object called through its class's ``__call__`` (``self`` first).
            count += 1
            target = type(target).__call__
        else:
            break
    try:
        known = _verdicts.get(target)
    except TypeError:  # unhashable: check it every time
        return _check(target, count)
    if known is None:
        known = {}
        try:
            _verdicts[target] = known
        except TypeError:  # cannot be weakly referenced
            return _check(target, count)
    if count not in known:
        known[count] = _check(target, count)
    return known[count]


def _plain_instance(obj: Any) -> bool:
    """Whether ``inspect.signature(obj)`` is that of its class's Python ``__call__``."""
    if isinstance(obj, type | types.FunctionType | types.BuiltinFunctionType):
        return False
    # The class's method itself is wanted here, not whether obj is callable.
    if not isinstance(getattr(type(obj), "__call__", None), types.FunctionType):  # noqa: B004
        return False
    return not (hasattr(obj, "__signature__") or hasattr(obj, "__wrapped__"))


def _check(fn: Any, count: int) -> str | None:
    if _plain_function_accepts(fn, count):
        return None
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # builtins and C callables: nothing to check
    try:
        sig.bind(*range(count))
    except TypeError as exc:
        return str(exc)
    return None


def _plain_function_accepts(fn: Any, count: int) -> bool:
    """Whether ``fn``, a plain Python function, surely takes ``count`` positional arguments.

    Read from its code object, as ``inspect.signature`` would read it, at a
    fraction of the cost; a False answer (or another kind of callable) goes to
    ``inspect`` for the verdict and its message.
    """
    if type(fn) is not types.FunctionType or hasattr(fn, "__wrapped__"):
        return False
    if hasattr(fn, "__signature__"):
        return False
    code = fn.__code__
    positional = code.co_argcount
    required = positional - len(fn.__defaults__ or ())
    if count < required or (count > positional and not code.co_flags & inspect.CO_VARARGS):
        return False
    # A keyword-only parameter without a default cannot be given positionally.
    keyword_only = code.co_varnames[positional : positional + code.co_kwonlyargcount]
    defaults = fn.__kwdefaults__ or {}
    return all(name in defaults for name in keyword_only)
