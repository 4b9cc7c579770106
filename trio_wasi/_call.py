"""Component functions and the synchronous lift/lower trampolines.

Every entry of a component's ``func`` index space is a :class:`ComponentFunc`:
either a core function lifted by ``canon lift`` (:class:`LiftedFunc`) or a
Python callable supplied by the host (:class:`HostFunc`). Both take and give
Python values, which is the semantic hand-off point of the canonical ABI:
``canon lower`` lifts the caller's flat core arguments into values, the callee
lowers them into its own memory, and results travel back the same way
(CanonicalABI.md, "canon lift" and "canon lower"). Component-to-component
calls therefore need no special path, and string transcoding between
components with different encodings falls out of lifting in one encoding and
lowering in the other.

Ordering follows the specification: the callee's may-enter check comes first,
the caller receives (lowers) the results before the callee's ``post-return``
runs, and borrowed handles lent for the call are released when it returns.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol, final

from ._abi import _types as T
from ._abi._flat import CoreValueIter, lift_flat_values, lower_flat_values
from ._abi._handles import InstanceState
from ._abi._layout import MAX_FLAT_PARAMS, MAX_FLAT_RESULTS
from ._abi._options import CanonOptions, LiftLowerContext, StringEncoding
from ._abi._resources import CallScope
from ._abi._trap import trap, trap_if
from ._errors import LinkError

__all__ = ["ComponentFunc", "HostFunc", "LiftedFunc", "make_lowered"]

# Receives the callee's lifted results and the string encoding they were lifted
# from (None for the host), so the caller can lower them the way the
# specification's transcoding does.
Deliver = Callable[[list[Any], StringEncoding | None], Any]


class CoreCallable(Protocol):
    def __call__(self, *args: Any) -> Any: ...


class ComponentFunc:
    """A value of the component-level ``func`` index space."""

    type: T.FuncType

    def call(
        self,
        caller: InstanceState | None,
        args: Sequence[Any],
        deliver: Deliver | None,
        source_encoding: StringEncoding | None = None,
    ) -> Any:
        """Call with lifted ``args``; hand the result list to ``deliver`` (if given).

        ``source_encoding`` is the string encoding the arguments were lifted
        from (None when they come from the host). Returns what ``deliver``
        returned, or the result list when it is None.
        """
        raise NotImplementedError


def _as_list(result: Any) -> list[Any]:
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


@final
class LiftedFunc(ComponentFunc):
    """A core function lifted synchronously (``canon lift`` without ``async``)."""

    __slots__ = ("_core", "_param_types", "_post_return", "_result_types", "options", "state", "type")

    def __init__(
        self, ft: T.FuncType, core: CoreCallable, options: CanonOptions, state: InstanceState
    ) -> None:
        self.type = ft
        self._core = core
        self.options = options
        self.state = state
        self._param_types = list(ft.param_types())
        self._result_types = list(ft.result_types())
        self._post_return = options.post_return

    def call(
        self,
        caller: InstanceState | None,
        args: Sequence[Any],
        deliver: Deliver | None,
        source_encoding: StringEncoding | None = None,
    ) -> Any:
        inst = self.state
        # CanonicalABI.md "canon lift": a component instance may not be
        # re-entered while a call into it (or an ancestor) is on the stack.
        trap_if(not inst.may_enter_from(caller), "cannot enter component instance")
        inst.enter_from(caller)
        try:
            scope = CallScope()
            cx = LiftLowerContext(self.options, inst, scope, source_encoding=source_encoding)
            flat_args = lower_flat_values(cx, MAX_FLAT_PARAMS, list(args), self._param_types)
            flat_results = _as_list(self._core(*flat_args))
            results = lift_flat_values(
                cx, MAX_FLAT_RESULTS, CoreValueIter(flat_results), self._result_types
            )
            # A sync task returns exactly once, and no borrow it received may
            # still be live when it does (Task.return_).
            trap_if(scope.num_borrows > 0, "borrow handles still remain at the end of the call")
            encoding = self.options.string_encoding
            out = deliver(results, encoding) if deliver is not None else results
            if self._post_return is not None:
                inst.may_leave = False
                try:
                    self._post_return(*flat_results)
                finally:
                    inst.may_leave = True
            return out
        finally:
            inst.leave_to(caller)


def _check_arity(fn: Callable[..., Any], count: int, where: str) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins and C callables: nothing to check
    try:
        sig.bind(*range(count))
    except TypeError as exc:
        raise LinkError(f"{where}: the host function does not accept {count} arguments: {exc}") from exc


@final
class HostFunc(ComponentFunc):
    """A Python callable offered to components as a component function."""

    __slots__ = ("_fn", "name", "type")

    def __init__(self, ft: T.FuncType, fn: Callable[..., Any], name: str) -> None:
        _check_arity(fn, len(ft.params), name)
        if inspect.iscoroutinefunction(fn):
            raise LinkError(
                f"{name}: `async def` host functions need the asynchronous runtime, "
                "which this build does not have yet"
            )
        self.type = ft
        self._fn = fn
        self.name = name

    def call(
        self,
        caller: InstanceState | None,
        args: Sequence[Any],
        deliver: Deliver | None,
        source_encoding: StringEncoding | None = None,
    ) -> Any:
        result = self._fn(*args)
        results = [] if self.type.result is None else [result]
        return deliver(results, None) if deliver is not None else results


def make_lowered(
    callee: ComponentFunc, options: CanonOptions, state: InstanceState
) -> Callable[..., Any]:
    """``canon lower`` of ``callee`` into a core function body for ``state``.

    The returned callable takes and returns flat core values; the engine wraps
    it into a wasm function.
    """
    ft = callee.type
    param_types = list(ft.param_types())
    result_types = list(ft.result_types())

    def lowered(*flat: Any) -> Any:
        # CanonicalABI.md "canon lower": leaving is forbidden while the
        # instance runs a post-return or realloc.
        trap_if(not state.may_leave, "cannot leave component instance")
        scope = CallScope()
        cx = LiftLowerContext(options, state, scope)
        vi = CoreValueIter(list(flat))
        args = lift_flat_values(cx, MAX_FLAT_PARAMS, vi, param_types)

        def deliver(results: list[Any], encoding: StringEncoding | None) -> list[Any]:
            rcx = LiftLowerContext(options, state, scope, source_encoding=encoding)
            return lower_flat_values(rcx, MAX_FLAT_RESULTS, results, result_types, vi)

        flat_results: list[Any] = callee.call(state, args, deliver, options.string_encoding)
        scope.release_lenders()
        if not flat_results:
            return None
        if len(flat_results) == 1:
            return flat_results[0]
        trap("lowered function produced more than one flat result")
        return None

    return lowered
