"""Fixtures for the wasi:http tests: the examples, built once per session (cached on disk)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from http_helpers import build_example


@pytest.fixture(scope="session")
def hello_wasm() -> Path:
    return build_example("hello")


@pytest.fixture(scope="session")
def echo_wasm() -> Path:
    return build_example("echo")


@pytest.fixture(scope="session")
def hello_component(hello_wasm: Path) -> Any:
    from trio_wasi import Component

    return Component.from_file(hello_wasm)


@pytest.fixture(scope="session")
def echo_component(echo_wasm: Path) -> Any:
    from trio_wasi import Component

    return Component.from_file(echo_wasm)
