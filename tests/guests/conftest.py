"""Fixtures that build the componentize-py test guests once per session (cached on disk)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


def _load_build_module() -> ModuleType:
    # Loaded by path under a unique name so it works whatever pytest's import mode is
    # and never collides with another ``_build`` module on sys.path.
    name = "_trio_wasi_tests_guest_build"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_build.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


guest_build = _load_build_module()

BuildGuest = Callable[..., Path]


@pytest.fixture(scope="session")
def guest_build_module() -> ModuleType:
    """The ``tests/guests/_build.py`` module (for tests of the cache itself)."""
    return guest_build


@pytest.fixture(scope="session")
def build_guest() -> BuildGuest:
    """``build_guest(name, world, *, stub_wasi) -> Path`` of the cached component.

    Skips the test that calls it (at that call, so a fixture or test that builds
    only some of its inputs with componentize-py skips only for those) when
    componentize-py is not installed; any other build failure is an error.
    """

    def build(name: str, world: str, *, stub_wasi: bool) -> Path:
        try:
            guest_build.componentize_py_version()
        except guest_build.GuestBuildError as exc:
            pytest.skip(f"needs componentize-py to build the {name} guest: {exc}")
        path: Path = guest_build.build_guest(name, world, stub_wasi=stub_wasi)
        return path

    return build


@pytest.fixture(scope="session")
def sync_roundtrip_wasm(build_guest: BuildGuest) -> Path:
    """The ``sync_roundtrip`` guest built with WASI stubbed out (``-s``)."""
    return build_guest("sync_roundtrip", "roundtrip", stub_wasi=True)
