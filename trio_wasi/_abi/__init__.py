"""The canonical ABI as pure code: no trio, no wasmtime.

Everything here runs on any object with a ``view() -> memoryview`` method
(:class:`BytesMemory` in tests), so every rule is testable on a bytearray.
The modules follow the order of CanonicalABI.md:

=====================  ========================================================
``_types``             resolved component value types (hashable; resources by
                       identity)
``_values``            Python values of component types: Variant, Some, Ok, Err,
                       DuplicateKeyMap, GuestResource, and the mapping table
``_layout``            despecialization, alignment, sizes, flattening, core
                       signatures of lifted/lowered functions and task.return
``_memory``            the Memory protocol and BytesMemory
``_options``           CanonOptions and LiftLowerContext (realloc calls)
``_handles``           HandleTable, ResourceHandle, InstanceState (re-entrance)
``_resources``         resource.new/rep/drop, lift/lower of own and borrow, the
                       per-call BorrowScope, host resource objects
``_strings``           string decoding, encoding and transcoding
``_load``              memory -> value, one compiled loader per type
``_store``             value -> memory, one compiled storer per type
``_flat``              core values <-> values, parameter/result lists, spilling
``_waitables``         waitables, waitable sets, subtasks, event codes
``_buffers``           guest and host buffers of stream/future copies (byte fast
                       path for integer elements)
``_streams``           stream/future shared state and their readable/writable ends
``_stream_builtins``   stream/future built-ins, lift/lower of their handles,
                       GuestAsyncValues hooks
``_errorctx``          error contexts and their built-ins
``_scheduler``         the Scheduler and TaskDriver protocols: what task logic
                       needs from the runtime that runs it (block, wake, the
                       current task)
``_tasks``             Task, its states and rules (return, cancel, exit, block)
``_lower``             canon lower (sync and async) and the caller's subtask;
                       ComponentFunc, the FuncInst protocol
``_task_builtins``     backpressure, task.return/cancel, waitable-set, waitable,
                       subtask and thread.yield built-ins
``_trap``              the one place traps are raised
=====================  ========================================================

Speed: every type compiles once (memoised by type) into closures that do only
the work its layout needs; the per-call path allocates no type information.
"""

from ._buffers import (
    Buffer,
    GuestReadableBuffer,
    GuestWritableBuffer,
    HostReadableBuffer,
    HostWritableBuffer,
    ReadableBuffer,
    WritableBuffer,
)
from ._errorctx import (
    ErrorContext,
    error_context_debug_message,
    error_context_drop,
    error_context_new,
    lift_error_context,
    lower_error_context,
)
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
from ._stream_builtins import (
    GUEST_ASYNC_VALUES,
    GuestAsyncValues,
    Wait,
    cancel_copy,
    drop_end,
    future_cancel_read,
    future_cancel_write,
    future_copy,
    future_drop_readable,
    future_drop_writable,
    future_new,
    future_read,
    future_write,
    lift_async_value,
    lift_future,
    lift_stream,
    lower_future,
    lower_stream,
    stream_cancel_read,
    stream_cancel_write,
    stream_copy,
    stream_drop_readable,
    stream_drop_writable,
    stream_new,
    stream_read,
    stream_write,
)
from ._streams import (
    CopyEnd,
    CopyResult,
    CopyState,
    FutureEnd,
    ReadableFuture,
    ReadableFutureEnd,
    ReadableStream,
    ReadableStreamEnd,
    SharedBase,
    SharedFuture,
    SharedStream,
    StreamEnd,
    WritableFuture,
    WritableFutureEnd,
    WritableStream,
    WritableStreamEnd,
)
from ._strings import MAX_STRING_BYTE_LENGTH, UTF16_TAG
from ._trap import trap, trap_if
from ._types import *  # noqa: F403 (the type vocabulary is part of this index)
from ._types import __all__ as _type_names
from ._values import DuplicateKeyMap, Err, GuestResource, Ok, Some, Variant

__all__ = [
    "GUEST_ASYNC_VALUES",
    "MAX_FLAT_ASYNC_PARAMS",
    "MAX_FLAT_PARAMS",
    "MAX_FLAT_RESULTS",
    "MAX_LIST_BYTE_LENGTH",
    "MAX_STRING_BYTE_LENGTH",
    "UTF16_TAG",
    "AsyncValueHooks",
    "BorrowScope",
    "Buffer",
    "BytesMemory",
    "CallScope",
    "CanonOptions",
    "CopyEnd",
    "CopyResult",
    "CopyState",
    "CoreSig",
    "CoreValueIter",
    "DuplicateKeyMap",
    "Err",
    "ErrorContext",
    "FutureEnd",
    "GuestAsyncValues",
    "GuestReadableBuffer",
    "GuestResource",
    "GuestWritableBuffer",
    "HandleTable",
    "HostReadableBuffer",
    "HostRepTable",
    "HostWritableBuffer",
    "InstanceState",
    "LiftLowerContext",
    "Memory",
    "Ok",
    "ReadableBuffer",
    "ReadableFuture",
    "ReadableFutureEnd",
    "ReadableStream",
    "ReadableStreamEnd",
    "ResourceHandle",
    "SharedBase",
    "SharedFuture",
    "SharedStream",
    "Some",
    "StreamEnd",
    "Variant",
    "Wait",
    "WritableBuffer",
    "WritableFuture",
    "WritableFutureEnd",
    "WritableStream",
    "WritableStreamEnd",
    "align_to",
    "alignment",
    "cancel_copy",
    "discriminant_type",
    "drop_end",
    "drop_guest_resource",
    "elem_size",
    "error_context_debug_message",
    "error_context_drop",
    "error_context_new",
    "flags_size",
    "flat_lifter_for",
    "flat_lowerer_for",
    "flatten_functype",
    "flatten_type",
    "future_cancel_read",
    "future_cancel_write",
    "future_copy",
    "future_drop_readable",
    "future_drop_writable",
    "future_new",
    "future_read",
    "future_write",
    "lift_async_value",
    "lift_borrow",
    "lift_error_context",
    "lift_flat",
    "lift_flat_values",
    "lift_future",
    "lift_own",
    "lift_stream",
    "load",
    "loader_for",
    "lower_borrow",
    "lower_error_context",
    "lower_flat",
    "lower_flat_values",
    "lower_future",
    "lower_own",
    "lower_stream",
    "resource_drop",
    "resource_new",
    "resource_rep",
    "store",
    "storer_for",
    "stream_cancel_read",
    "stream_cancel_write",
    "stream_copy",
    "stream_drop_readable",
    "stream_drop_writable",
    "stream_new",
    "stream_read",
    "stream_write",
    "task_return_sig",
    "trap",
    "trap_if",
    *_type_names,
]
