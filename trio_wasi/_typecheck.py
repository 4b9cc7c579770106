"""Type-checking what satisfies an import against the import's declared type.

Explainer.md, "Type Checking" (and Binary.md's validation notes) define when a
definition may stand in for an import:

- value types must be equal, structurally; handle types (``own``/``borrow``)
  name resource types, which compare by identity;
- a function must have the same parameter names and types, in order, the
  same result type and the same ``async``-ness;
- an instance must export at least what the instance type declares, each
  export of the same sort and itself a subtype of the declared export;
  exports the type does not mention are allowed;
- a resource import bounded ``(sub resource)`` accepts any resource type,
  which then stands for the import inside the importer; ``(eq i)`` accepts
  exactly type ``i``.

Every check raises :class:`LinkError` whose message starts with ``where``
(the import being satisfied), so a miswired composition or a host definition
of the wrong type is reported by the import's name, before any code runs.

The checks see resolved types (:mod:`trio_wasi._abi._types`) on the actual
side and the importer's declarators on the expected side; the declarators are
resolved here in a scope of their own, so a resource export bound ``sub
resource`` is replaced by the resource the instance actually exports before
later declarators (``own<r>`` in a function type, say) refer to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._abi import _types as T
from ._binary import _model as M
from ._errors import LinkError
from ._resolve import DeclaredType, TypeSpace, declare, describe

__all__ = [
    "check_func_type",
    "check_instance_type",
    "check_type_bound",
    "check_value_type",
    "func_type_mismatch",
    "value_type_mismatch",
]


def value_type_mismatch(expected: Any, actual: Any) -> str | None:
    """Why ``actual`` cannot stand for value type ``expected`` (None when it can).

    Explainer.md, "Type Checking": value types match by equality; the frozen type
    classes compare structurally and resource types by identity, so equality
    is the whole rule. The reason names the first differing part.
    """
    if expected == actual:
        return None
    if type(expected) is not type(actual):
        return f"{describe(actual)} is not {describe(expected)}"
    if isinstance(expected, (T.OwnType, T.BorrowType)):
        return (
            f"{describe(actual)} names a different resource type than {describe(expected)}"
            if expected.resource is not actual.resource
            else None
        )
    if isinstance(expected, (T.RecordType, T.VariantType)):
        e_items = expected.fields if isinstance(expected, T.RecordType) else expected.cases
        a_items = actual.fields if isinstance(actual, T.RecordType) else actual.cases
        what = "field" if isinstance(expected, T.RecordType) else "case"
        e_names = [n for n, _ in e_items]
        a_names = [n for n, _ in a_items]
        if e_names != a_names:
            return f"{what}s ({', '.join(a_names)}) are not ({', '.join(e_names)})"
        for (name, e), (_, a) in zip(e_items, a_items, strict=True):
            if (e is None) != (a is None):
                return f"{what} `{name}` differs in whether it has a payload"
            reason = None if e is None else value_type_mismatch(e, a)
            if reason is not None:
                return f"{what} `{name}`: {reason}"
        return None
    return f"{describe(actual)} is not {describe(expected)}"


def check_value_type(expected: Any, actual: Any, where: str) -> None:
    """Raise LinkError unless value type ``actual`` may stand for ``expected``."""
    reason = value_type_mismatch(expected, actual)
    if reason is not None:
        raise LinkError(
            f"{where}: expected {describe(expected)}, found {describe(actual)} ({reason})"
        )


def func_type_mismatch(expected: T.FuncType, actual: T.FuncType) -> str | None:
    """Why function type ``actual`` cannot stand for ``expected`` (None when it can).

    Explainer.md, "Type Checking": parameter names and types, in order, the result
    type and ``async``-ness must all match.
    """
    if expected.is_async != actual.is_async:
        return "one is async and the other is not"
    if len(expected.params) != len(actual.params):
        return f"{len(actual.params)} parameters where {len(expected.params)} are expected"
    for index, ((e_name, e_type), (a_name, a_type)) in enumerate(
        zip(expected.params, actual.params, strict=True)
    ):
        if e_name != a_name:
            return f"parameter {index} is named `{a_name}`, not `{e_name}`"
        reason = value_type_mismatch(e_type, a_type)
        if reason is not None:
            return f"parameter `{e_name}`: {reason}"
    if (expected.result is None) != (actual.result is None):
        return "one has a result and the other has none"
    if expected.result is not None:
        reason = value_type_mismatch(expected.result, actual.result)
        if reason is not None:
            return f"result: {reason}"
    return None


def check_func_type(
    expected: T.FuncType,
    actual: Any,
    where: str,
    *,
    actual_is: str = "found",
    expected_is: str = "expected",
) -> None:
    """Raise LinkError unless ``actual`` is a function type that may stand for ``expected``.

    The message reads ``{where}: {actual_is} <actual>, {expected_is} <expected>
    (<reason>)``, so callers word it for their side (``host defines`` / ``the
    component imports``, say).
    """
    if not isinstance(actual, T.FuncType):
        raise LinkError(
            f"{where}: {actual_is} {describe(actual)}, {expected_is} {describe(expected)}"
        )
    reason = func_type_mismatch(expected, actual)
    if reason is not None:
        raise LinkError(
            f"{where}: {actual_is} {describe(actual)}, {expected_is} {describe(expected)} "
            f"({reason})"
        )


def check_type_bound(space: TypeSpace, bound: M.TypeBound, actual: Any, where: str) -> None:
    """Check a type supplied for an import or export bounded by ``bound``.

    ``(sub resource)`` accepts any resource type; ``(eq i)`` accepts exactly
    type ``i`` of ``space`` (by identity for resources, by structure for
    value types).
    """
    if bound.eq is None:
        if not isinstance(actual, T.ResourceType):
            raise LinkError(f"{where}: expected a resource type, found {describe(actual)}")
        return
    expected = space.type_at(bound.eq)
    if isinstance(expected, T.ResourceType) or isinstance(actual, T.ResourceType):
        if expected is not actual:
            raise LinkError(
                f"{where}: expected the resource type {describe(expected)} itself, "
                f"found a different one ({describe(actual)})"
            )
        return
    check_value_type(expected, actual, where)


# What a component-level item is, given its sort: the check of a sort-typed
# import needs the item's function type, instance exports or nothing more.
ItemTypeOf = Callable[[Any], Any]


def check_instance_type(
    decl: DeclaredType,
    items: Mapping[str, tuple[M.Sort, Any]],
    where: str,
    *,
    func_type_of: ItemTypeOf,
) -> None:
    """Check that instance ``items`` (``name -> (sort, item)``) satisfy instance type ``decl``.

    Explainer.md, "Type Checking": every declared export must be present with the
    same sort and a matching type; extra exports are fine. ``func_type_of``
    maps a function item to its :class:`~trio_wasi._abi._types.FuncType`.
    """
    if not isinstance(decl.decl, M.InstanceType):
        raise LinkError(f"{where}: expected a component, found an instance")
    space = TypeSpace(outer=decl.outer)
    for dd in decl.decl.decls:
        if declare(space, dd, where):
            continue
        if isinstance(dd, M.ExportDecl):
            name = dd.name.name
            inner = f"{where} export `{name}`" if "`" in where else f"{where}#{name}"
            if name not in items:
                raise LinkError(f"{where}: the instance supplied has no export `{name}`")
            sort, item = items[name]
            check_extern(space, dd.type, sort, item, inner, func_type_of=func_type_of)
            if sort is M.Sort.TYPE:
                space.types.append(item)
        else:
            raise LinkError(f"{where}: unexpected declarator in the instance type")


def check_extern(
    space: TypeSpace,
    ext: M.ExternType,
    sort: M.Sort,
    item: Any,
    where: str,
    *,
    func_type_of: ItemTypeOf,
) -> None:
    """Check one item of ``sort`` against the extern type ``ext`` written in ``space``."""
    if isinstance(ext, M.TypeBound):
        if sort is not M.Sort.TYPE:
            raise LinkError(f"{where}: expected a type, found a {sort.value}")
        check_type_bound(space, ext, item, where)
        return
    if not isinstance(ext, M.SortType):
        raise LinkError(f"{where}: value imports are not supported")
    if ext.sort is not sort:
        raise LinkError(f"{where}: expected a {ext.sort.value}, found a {sort.value}")
    if sort is M.Sort.FUNC:
        expected = space.type_at(ext.type_index)
        if not isinstance(expected, T.FuncType):
            raise LinkError(f"{where}: type {ext.type_index} is not a function type")
        check_func_type(expected, func_type_of(item), where)
    elif sort is M.Sort.INSTANCE:
        decl = space.type_at(ext.type_index)
        if not isinstance(decl, DeclaredType):
            raise LinkError(f"{where}: type {ext.type_index} is not an instance type")
        check_instance_type(decl, item, where, func_type_of=func_type_of)
    # Components and core modules are checked by sort only: nothing here
    # passes component-typed values between components yet.
