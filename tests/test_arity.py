"""The memoised arity check host functions go through (trio_wasi._arity)."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from trio_wasi._arity import _verdicts, arity_error


def two(a: int, b: int) -> None:
    pass


class Impl:
    def method(self, a: int) -> None:
        pass


def test_plain_function_verdicts_per_count() -> None:
    assert arity_error(two, 2) is None
    assert arity_error(two, 1) is not None
    assert "too many" in (arity_error(two, 3) or "")
    # Asked again: same answers, from the memo.
    assert _verdicts[two] == {2: None, 1: _verdicts[two][1], 3: _verdicts[two][3]}
    assert arity_error(two, 1) is not None


def test_bound_methods_share_the_verdict_of_their_function() -> None:
    a, b = Impl(), Impl()
    assert arity_error(a.method, 1) is None
    assert arity_error(b.method, 2) is not None
    # Recorded against the function, with self counted.
    assert set(_verdicts[Impl.method]) == {2, 3}


def test_partial_counts_its_bound_arguments() -> None:
    p = functools.partial(two, 1)
    assert arity_error(p, 1) is None
    assert arity_error(p, 2) is not None
    # Keyword arguments change the signature: checked as the partial itself.
    assert arity_error(functools.partial(two, b=1), 1) is None
    assert arity_error(functools.partial(two, b=1), 2) is not None


def test_uncheckable_and_unhashable_callables_pass_through() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self, x: Any) -> None:
            pass

    assert arity_error(Unhashable(), 1) is None
    assert arity_error(Unhashable(), 2) is not None
    assert arity_error(min, 5) is None  # min has no signature to check


class Caller:
    __slots__ = ()  # no weak references: the verdict is kept for the class's __call__

    def __call__(self, a: int, *rest: int) -> None:
        pass


def test_callable_objects_share_the_verdict_of_their_class() -> None:
    assert arity_error(Caller(), 3) is None
    assert arity_error(Caller(), 0) is not None
    assert set(_verdicts[Caller.__call__]) == {4, 1}

    class Signed(Caller):
        __slots__ = ("__signature__",)

    # An object with its own signature is checked by it.
    signed = Signed()
    signed.__signature__ = inspect.Signature()  # type: ignore[attr-defined]
    assert arity_error(signed, 0) is None
    assert arity_error(signed, 1) is not None


def _f0() -> None: ...
def _f1(a: int) -> None: ...
def _f2(a: int, b: int = 1) -> None: ...
def _f3(a: int, *args: int) -> None: ...
def _f4(a: int, *, k: int) -> None: ...
def _f5(a: int, *, k: int = 1) -> None: ...
def _f6(a: int, /, b: int, c: int = 2, *args: int, d: int = 3, **kw: int) -> None: ...
async def _f7(x: int, y: int) -> None: ...
def _f8(*args: int, **kw: int) -> None: ...
def _f9(a: int, /, b: int) -> None: ...


@functools.wraps(_f1)
def _f10(*a: int) -> None: ...


def test_the_code_object_shortcut_agrees_with_inspect() -> None:
    from trio_wasi._arity import _check

    shapes = (_f0, _f1, _f2, _f3, _f4, _f5, _f6, _f7, _f8, _f9, _f10, lambda a, b=2: None)
    for fn in shapes:
        for count in range(5):
            try:
                inspect.signature(fn).bind(*range(count))
                expected = None
            except TypeError as exc:
                expected = str(exc)
            assert _check(fn, count) == expected, (fn, count)
