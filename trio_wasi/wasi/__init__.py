"""WASI 0.3.0 and 0.2.x host interfaces, written with the public host API.

Shapes (for whoever adds or replaces an interface):

* **Registration.** One private module per WIT package (``_io``, ``_cli``,
  ``_clocks``, ``_random``, ``_filesystem``, ``_sockets``), each with
  ``add_to_linker(linker, config)`` that calls ``linker.define_interface``
  for every interface of the package, both generations (0.3.0 and 0.2.0; a
  0.2.0 definition satisfies any 0.2.x import). :func:`add_to_linker` below
  calls them in the order of ``MODULES``. Definitions are checked against the
  WIT in the repository's ``wit/`` (shipped as ``trio_wasi/wit``).
* **Per-instance state.** Interfaces that need state are classes made once
  per instance: ``define_interface(name, factory=functools.partial(Cls,
  config))``, with ``Cls.__init__(self, config, context)`` fetching the
  shared :class:`~trio_wasi.wasi._state.WasiState` by
  ``WasiState.of(context, config)`` (args, env, stdio, preopens, network
  policy, random, clock waits, exit status). Stateless ones are a plain class.
* **Where code runs.** Guests that import wasi:io/poll run on store threads:
  a plain ``def`` runs there (no trio; state shared with trio is guarded by a
  lock), an ``async def`` runs on trio and blocks the calling wasm frame
  until it returns. Use ``def`` for non-blocking calls, ``async def`` for the
  blocking ones (poll, blocking-read, blocking-write-and-flush) and for 0.3
  ``async func``\\ s. Background work goes through ``context.start_soon``.
* **The 0.2 wasi:io core** (``_io``): ``Pollable`` over a ``Readiness``
  (``ready()`` anywhere, ``async wait()`` on trio); ``InputStream`` and
  ``OutputStream`` implement every WIT method over a few primitives
  (``_read_now``, ``_readable_now``, ``_wait_readable``; ``_check_write_now``,
  ``_write_now``, ``_flush_now``, ``_wait_writable``, ``_wait_flushed``) that
  filesystem and socket streams override.
* **Errors.** A refusal or an OS failure is the interface's own error code,
  never a trap: return ``Err(case)`` (an ``enum`` case is its label string,
  a ``variant`` case ``Variant(label, payload)``); stream failures raise
  ``StreamFailed(IoError(message, code))`` and the package's ``*-error-code``
  function reads ``IoError.code``. ``_errno.filesystem_code(exc, variant=)``
  and ``_errno.socket_code(exc, variant=)`` map an ``OSError`` to a
  package's code (``variant=True`` for 0.3, whose codes are variants).
* **0.3 streams and futures.** A ``stream<u8>`` to the guest is any trio
  ``ReceiveChannel`` of ``bytes`` (read on demand, so the guest's pace is
  the host's backpressure; ``_cli._SourceChannel`` is the model); one from
  the guest is a ``StreamReceiver`` drained by a ``context.start_soon`` task
  (``_cli._drain``). A ``future<T>`` to the guest is a memory channel whose
  one item is the value; send it even when the stream ends early.
* **Every package is real.** wasi:filesystem is ``_filesystem`` over the
  capability-scoped path core ``_paths``; wasi:sockets is ``_sockets`` over
  the core in ``_sockcore``, refusing what the policy in ``_netpolicy`` does
  not allow. A module must keep every interface of its package defined,
  both generations: real guests import all of them, used or not.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._names import compatibility_key
from ._config import INHERIT, Preopen, WasiConfig

if TYPE_CHECKING:
    from .._linker import Linker

__all__ = ["INHERIT", "MODULES", "Preopen", "WasiConfig", "add_to_linker"]

MODULES = ("_io", "_cli", "_clocks", "_random", "_filesystem", "_sockets")


def add_to_linker(
    linker: Linker, config: WasiConfig | None = None, *, only: Iterable[str] | None = None
) -> None:
    """Define every WASI 0.3.0 and 0.2.x interface in ``linker``, granting what ``config`` says.

    With ``only`` (interface names, such as a component's imports), define
    just those, which saves checking the rest against their WIT.
    """
    config = config or WasiConfig()
    target: Any = linker if only is None else _Only(linker, only)
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        module.add_to_linker(target, config)


class _Only:
    """A linker that takes definitions only for the interfaces named."""

    def __init__(self, linker: Linker, names: Iterable[str]) -> None:
        self._linker = linker
        self._host = linker._host
        self._keys = {compatibility_key(n) for n in names}

    def define_interface(self, interface: str, *args: Any, **kwargs: Any) -> None:
        if compatibility_key(interface) in self._keys:
            self._linker.define_interface(interface, *args, **kwargs)
