"""The frozen value-class decorator the decoded model and ABI types are built with."""

from __future__ import annotations

import copy
import pickle

import pytest

from trio_wasi._frozen import FrozenInstanceError, frozen


@frozen
class Pair:
    name: str
    index: int
    extra: tuple[int, ...] = ()


@frozen
class Other:
    name: str
    index: int
    extra: tuple[int, ...] = ()


@frozen(cache_hash=True)
class Cached:
    value: object


@frozen(eq=False)
class ByIdentity:
    value: int


@frozen
class Empty:
    pass


@frozen
class UsesSuper:
    value: int

    def describe(self) -> str:
        return f"{type(self).__name__} {super().__repr__().startswith('<')}"


def test_fields_positionally_or_by_name_with_defaults() -> None:
    a = Pair("x", 1)
    b = Pair(index=1, name="x")
    assert (a.name, a.index, a.extra) == ("x", 1, ())
    assert a == b and hash(a) == hash(b) and not a != b
    assert Pair("x", 1, (2,)).extra == (2,)
    with pytest.raises(TypeError):
        Pair("x")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Pair("x", 1, (), 4)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Pair("x", 1, nope=2)  # type: ignore[call-arg]


def test_equality_needs_the_same_class_and_fields() -> None:
    assert Pair("x", 1) != Pair("x", 2)
    others: list[object] = [Other("x", 1), ("x", 1, ())]
    assert all(Pair("x", 1) != other for other in others)
    assert len({Pair("x", 1), Pair("x", 1), Other("x", 1)}) == 2
    assert Empty() == Empty() and hash(Empty()) == hash(Empty())


def test_instances_are_frozen_and_slotted() -> None:
    a = Pair("x", 1)
    with pytest.raises(FrozenInstanceError):
        a.name = "y"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del a.index
    with pytest.raises(AttributeError):
        a.other = 1  # type: ignore[attr-defined]
    assert not hasattr(a, "__dict__")
    assert Pair.__match_args__ == ("name", "index", "extra")


def test_cached_hash_is_computed_once_and_kept() -> None:
    class Counting:
        calls = 0

        def __hash__(self) -> int:
            Counting.calls += 1
            return 7

    c = Cached(Counting())
    assert hash(c) == hash(c) == hash(Cached(c.value))
    assert Counting.calls == 2  # once for each of the two instances


def test_identity_classes_compare_by_identity() -> None:
    a, b = ByIdentity(1), ByIdentity(1)
    assert a == a and a != b and len({a, b}) == 2
    with pytest.raises(FrozenInstanceError):
        a.value = 2  # type: ignore[misc]


def test_repr_copy_and_pickle() -> None:
    a = Pair("x", 1, (2,))
    assert repr(a) == "Pair(name='x', index=1, extra=(2,))"
    assert repr(Empty()) == "Empty()"
    assert copy.copy(a) == a and copy.deepcopy(a) == a
    assert pickle.loads(pickle.dumps(a)) == a


def test_methods_using_super_see_the_rebuilt_class() -> None:
    # Zero-argument super() fails outright if its class cell is the class
    # the body made (the instance would not be an instance of it).
    assert UsesSuper(3).describe() == "UsesSuper True"


def test_defaults_must_come_last() -> None:
    with pytest.raises(TypeError, match="without a default"):

        @frozen
        class Bad:
            a: int = 1
            b: int  # type: ignore[misc]
