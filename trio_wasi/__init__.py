"""trio_wasi: a trio host runtime for WebAssembly components.

This namespace only re-exports; the implementation lives in private modules.
"""

from ._abi._errorctx import ErrorContext
from ._abi._values import DuplicateKeyMap, Err, GuestResource, Ok, Some, Variant
from ._component import Component
from ._engine import Engine
from ._errors import DecodeError, Error, LinkError, Trap, ValidationError
from ._hostdefs import HostContext, with_context
from ._instance import Instance, Instantiation
from ._link import LinkedComponent
from ._linker import Linker
from ._run._hostvalues import FutureReceiver, StreamReceiver
from .wasi._config import WasiConfig

__all__ = [
    "Component",
    "DecodeError",
    "DuplicateKeyMap",
    "Engine",
    "Err",
    "Error",
    "ErrorContext",
    "FutureReceiver",
    "GuestResource",
    "HostContext",
    "Instance",
    "Instantiation",
    "LinkedComponent",
    "Linker",
    "LinkError",
    "Ok",
    "Some",
    "StreamReceiver",
    "Trap",
    "ValidationError",
    "Variant",
    "WasiConfig",
    "with_context",
]
