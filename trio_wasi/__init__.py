"""trio_wasi: a trio host runtime for WebAssembly components.

This namespace only re-exports; the implementation lives in private modules.
"""

from ._abi._values import Err, GuestResource, Ok, Some, Variant
from ._component import Component
from ._engine import Engine
from ._errors import DecodeError, Error, LinkError, Trap, ValidationError
from ._instance import Instance
from ._linker import Linker

__all__ = [
    "Component",
    "DecodeError",
    "Engine",
    "Err",
    "Error",
    "GuestResource",
    "Instance",
    "Linker",
    "LinkError",
    "Ok",
    "Some",
    "Trap",
    "ValidationError",
    "Variant",
]
