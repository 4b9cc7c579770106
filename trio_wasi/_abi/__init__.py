"""The synchronous canonical ABI as pure code: no trio, no wasmtime.

Everything here runs on any object with a ``view() -> memoryview`` method
(:class:`BytesMemory` in tests), so every rule is testable on a bytearray.
The modules follow the order of CanonicalABI.md:

=================  ==========================================================
``_types``         resolved component value types (hashable; resources by
                   identity)
``_values``        Python values of component types: Variant, Some, Ok, Err,
                   GuestResource, and the mapping table
``_layout``        despecialization, alignment, sizes, flattening, core
                   signatures of lifted/lowered functions and task.return
``_memory``        the Memory protocol and BytesMemory
``_options``       CanonOptions and LiftLowerContext (realloc calls)
``_handles``       HandleTable, ResourceHandle, InstanceState (re-entrance)
``_resources``     resource.new/rep/drop, lift/lower of own and borrow, the
                   per-call BorrowScope, host resource objects
``_strings``       string decoding, encoding and transcoding
``_load``          memory -> value, one compiled loader per type
``_store``         value -> memory, one compiled storer per type
``_flat``          core values <-> values, parameter/result lists, spilling
``_trap``          the one place traps are raised
=================  ==========================================================

Speed: every type compiles once (memoised by type) into closures that do only
the work its layout needs; the per-call path allocates no type information.
"""

from ._flat import (
    CoreValueIter,
    flat_lifter_for,
    flat_lowerer_for,
    lift_flat,
    lift_flat_values,
    lower_flat,
    lower_flat_values,
)
from ._handles import HandleTable, InstanceState, ResourceHandle
from ._layout import (
    MAX_FLAT_ASYNC_PARAMS,
    MAX_FLAT_PARAMS,
    MAX_FLAT_RESULTS,
    CoreSig,
    align_to,
    alignment,
    discriminant_type,
    elem_size,
    flags_size,
    flatten_functype,
    flatten_type,
    task_return_sig,
)
from ._load import MAX_LIST_BYTE_LENGTH, load, loader_for
from ._memory import BytesMemory, Memory
from ._options import AsyncValueHooks, CanonOptions, LiftLowerContext
from ._resources import (
    BorrowScope,
    CallScope,
    HostRepTable,
    drop_guest_resource,
    lift_borrow,
    lift_own,
    lower_borrow,
    lower_own,
    resource_drop,
    resource_new,
    resource_rep,
)
from ._store import store, storer_for
from ._strings import MAX_STRING_BYTE_LENGTH, UTF16_TAG
from ._trap import trap, trap_if
from ._types import *  # noqa: F403 (the type vocabulary is part of this index)
from ._types import __all__ as _type_names
from ._values import Err, GuestResource, Ok, Some, Variant

__all__ = [
    "MAX_FLAT_ASYNC_PARAMS",
    "MAX_FLAT_PARAMS",
    "MAX_FLAT_RESULTS",
    "MAX_LIST_BYTE_LENGTH",
    "MAX_STRING_BYTE_LENGTH",
    "UTF16_TAG",
    "AsyncValueHooks",
    "BorrowScope",
    "BytesMemory",
    "CallScope",
    "CanonOptions",
    "CoreSig",
    "CoreValueIter",
    "Err",
    "GuestResource",
    "HandleTable",
    "HostRepTable",
    "InstanceState",
    "LiftLowerContext",
    "Memory",
    "Ok",
    "ResourceHandle",
    "Some",
    "Variant",
    "align_to",
    "alignment",
    "discriminant_type",
    "drop_guest_resource",
    "elem_size",
    "flags_size",
    "flat_lifter_for",
    "flat_lowerer_for",
    "flatten_functype",
    "flatten_type",
    "lift_borrow",
    "lift_flat",
    "lift_flat_values",
    "lift_own",
    "load",
    "loader_for",
    "lower_borrow",
    "lower_flat",
    "lower_flat_values",
    "lower_own",
    "resource_drop",
    "resource_new",
    "resource_rep",
    "store",
    "storer_for",
    "task_return_sig",
    "trap",
    "trap_if",
    *_type_names,
]
