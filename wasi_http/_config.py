"""ServeConfig: how a component is served (pool limits, outgoing policy, WASI grants)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from trio_wasi import Limits, WasiConfig

__all__ = ["ServeConfig"]


def _strings(value: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


def _binds(value: Sequence[str]) -> tuple[str, ...]:
    """``value`` as a tuple, each address checked to be ``HOST:PORT`` (or hypercorn's forms).

    hypercorn reads an address without a usable port as a host on port 8000,
    so ``"localhost"`` or ``"127.0.0.1:"`` would fail later with a name-lookup
    error that does not say which address is wrong, or listen where nobody
    asked. ``unix:PATH`` and ``fd://N`` pass through to hypercorn as they are.
    """
    binds = _strings([value] if isinstance(value, str) else value)
    for bind in binds:
        if bind.startswith(("unix:", "fd://")):
            continue
        host, sep, port = bind.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise ValueError(f"bind address {bind!r}: an IPv6 host goes in brackets ([::1]:8080)")
        if not sep or not host:
            raise ValueError(f"bind address {bind!r}: expected HOST:PORT, such as 127.0.0.1:8080")
        if not port.isdigit() or int(port) > 65535:
            raise ValueError(f"bind address {bind!r}: the port must be a number from 0 to 65535")
    return binds


def _at_least(least: float) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator: the value (when not None) is at least ``least``."""

    def check(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and value < least:
            raise ValueError(f"{attribute.name} must be at least {least}, got {value!r}")

    return check


@attrs.frozen(kw_only=True)
class ServeConfig:
    """Everything ``serve`` and the ASGI application need besides the component.

    * ``bind``: addresses to listen on, ``HOST:PORT`` (``"127.0.0.1:8080"``,
      ``"[::1]:8080"``; port 0 picks one), a malformed one is a ``ValueError``
      here; one that cannot be listened on is an ``OSError`` naming it when
      serving starts;
    * the counts and the timeout below: a value out of range (no instances,
      a negative timeout) is a ``ValueError`` naming the field;
    * ``wasi``: what each instance may reach through WASI (default: nothing);
    * ``max_concurrency``: requests one 0.3 instance serves at once; None
      (the default): 100, or 1 for a component with a stackful (async,
      callback-less) export, whose requests could only finish in the reverse
      order they entered the instance (a 0.2 instance always serves one at
      a time);
    * ``max_requests``: requests an instance serves before it is replaced
      (0: no limit);
    * ``max_instances``: instances alive at once; a request waits for a free
      slot when all are busy;
    * ``allow_http``: ``HOST[:PORT]`` patterns (``*`` matches any host or
      port) outgoing requests may reach; none by default;
    * ``shutdown_timeout``: seconds in-flight requests get to finish at
      shutdown before they are cancelled;
    * ``workers``: hypercorn worker processes (the command line only);
    * ``limits``: the :class:`trio_wasi.Limits` of every instance (default:
      :meth:`Limits.serve`). Its ``timeout`` is each request's deadline for
      its handler to answer: past it the guest traps with "deadline
      exceeded", the client gets a 500 and the instance is discarded (with
      any other request it was serving; ``max_concurrency=1`` isolates
      requests). Work a 0.3 guest does after answering (writing the body)
      is bounded per step by the same timeout, not as a whole, so a slow
      client does not end an instance; a 0.2 handler writes its body inside
      its call, so there the deadline covers the whole exchange;
    * ``run_on_thread``: where instances run their wasm, as for
      :meth:`trio_wasi.Linker.instantiate`: ``None`` decides per component
      (inline on the trio thread unless it may block), ``True`` always uses
      store threads, so a guest computing until its deadline never holds up
      requests served by other instances.
    """

    bind: Sequence[str] = attrs.field(default=("127.0.0.1:8080",), converter=_binds)
    wasi: WasiConfig = attrs.field(factory=WasiConfig)
    max_concurrency: int | None = attrs.field(default=None, validator=_at_least(1))
    max_requests: int = attrs.field(default=0, validator=_at_least(0))
    max_instances: int = attrs.field(default=8, validator=_at_least(1))
    allow_http: Sequence[str] = attrs.field(default=(), converter=_strings)
    shutdown_timeout: float = attrs.field(default=10.0, validator=_at_least(0))
    workers: int = attrs.field(default=1, validator=_at_least(1))
    limits: Limits = attrs.field(factory=Limits.serve)
    run_on_thread: bool | None = None
