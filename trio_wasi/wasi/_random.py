"""wasi:random 0.3.0 and 0.2.0: random, insecure, insecure-seed.

Secure bytes come from the configured source (:func:`os.urandom` by
default); insecure ones from a per-instance :class:`random.Random`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from ._config import WasiConfig
from ._state import WasiState

if TYPE_CHECKING:
    from .._hostdefs import HostContext
    from .._linker import Linker

__all__ = ["add_to_linker"]

# Larger requests are cut to this many bytes (the WIT lets a host return fewer).
MAX_BYTES = 1 << 20


class _PerInstance:
    def __init__(self, config: WasiConfig, context: HostContext) -> None:
        self.state = WasiState.of(context, config)


class Random03(_PerInstance):
    def get_random_bytes(self, max_len: int) -> bytes:
        return self.state.random_source(min(max_len, MAX_BYTES))

    def get_random_u64(self) -> int:
        return int.from_bytes(self.state.random_source(8), "little")


class Insecure03(_PerInstance):
    def get_insecure_random_bytes(self, max_len: int) -> bytes:
        return self.state.insecure.randbytes(min(max_len, MAX_BYTES))

    def get_insecure_random_u64(self) -> int:
        return self.state.insecure.getrandbits(64)


class InsecureSeed03(_PerInstance):
    def get_insecure_seed(self) -> tuple[int, int]:
        return self.state.insecure_seed


class Random02(Random03):
    pass


class Insecure02(Insecure03):
    pass


class InsecureSeed02(_PerInstance):
    def insecure_seed(self) -> tuple[int, int]:
        return self.state.insecure_seed


def add_to_linker(linker: Linker, config: WasiConfig) -> None:
    """Define wasi:random 0.3.0 and 0.2.0."""

    def per(cls: type) -> Any:
        return functools.partial(cls, config)

    linker.define_interface("wasi:random/random@0.3.0", factory=per(Random03))
    linker.define_interface("wasi:random/insecure@0.3.0", factory=per(Insecure03))
    linker.define_interface("wasi:random/insecure-seed@0.3.0", factory=per(InsecureSeed03))
    linker.define_interface("wasi:random/random@0.2.0", factory=per(Random02))
    linker.define_interface("wasi:random/insecure@0.2.0", factory=per(Insecure02))
    linker.define_interface("wasi:random/insecure-seed@0.2.0", factory=per(InsecureSeed02))
