"""WasiConfig: everything a WASI host grants one component, in one object.

The configuration is a plain description; nothing is opened until an instance
is made (see ``_state``). Each instance gets its own state built from it, so
one configuration serves any number of instances.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

__all__ = ["INHERIT", "Preopen", "WasiConfig"]

#: Use the host process's own stream (stdin, stdout or stderr).
INHERIT: Literal["inherit"] = "inherit"


@attrs.frozen
class Preopen:
    """A host directory granted to the guest under ``guest_path``."""

    host_path: Path = attrs.field(converter=Path)
    guest_path: str
    read_only: bool = False


def _preopens(value: Sequence[Any]) -> tuple[Preopen, ...]:
    out = []
    for item in value:
        if isinstance(item, Preopen):
            out.append(item)
        elif isinstance(item, str | os.PathLike):
            out.append(Preopen(Path(item), str(item)))
        else:
            out.append(Preopen(*item))
    return tuple(out)


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


def _env(value: Mapping[str, str] | Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple((str(k), str(v)) for k, v in items)


@attrs.frozen(kw_only=True)
class WasiConfig:
    """What a component may reach through WASI: nothing that is not granted here.

    * ``args``: the program's arguments, the program name first (as ``argv``);
    * ``env``: environment variables (a mapping or pairs); with
      ``inherit_env`` the host's environment comes first and ``env`` overrides it;
    * ``cwd``: the guest's initial working directory, if any;
    * ``preopens``: directories granted as ``Preopen(host_path, guest_path,
      read_only)`` or ``(host_path, guest_path[, read_only])`` tuples;
    * ``stdin``: ``None`` (empty), ``"inherit"`` (the process's stdin),
      ``bytes``, a :class:`trio.abc.ReceiveStream` or a
      :class:`trio.abc.ReceiveChannel` of ``bytes`` chunks;
    * ``stdout``/``stderr``: ``None`` (discarded), ``"inherit"``, a
      ``bytearray`` (appended to), a :class:`trio.abc.SendStream` or a
      :class:`trio.abc.SendChannel` of ``bytes``;
    * network policy (wasi:sockets): ``allowed_addresses`` are ``HOST:PORT``
      patterns a socket may bind, connect or send to, none by default. HOST
      is ``*``, an IPv4 address or network (``127.0.0.1``, ``10.0.0.0/8``)
      or an IPv6 one in brackets (``[::1]``, ``[fd00::/8]``); PORT is ``*``,
      a number or a range (``8000-8099``); a bare ``*`` allows everything.
      With no pattern at all, creating a socket is refused; an address no
      pattern matches is refused (``access-denied``). ``inherit_network``
      allows every address (``-S inherit-network``);
      ``allow_ip_name_lookup`` lets the guest resolve names
      (``-S allow-ip-name-lookup``). A malformed pattern is a ``ValueError``
      when the linker is set up;
    * ``insecure_seed``: the value of ``wasi:random/insecure-seed`` (random
      per instance when ``None``); ``random_source``: a callable
      ``n -> bytes`` for ``wasi:random/random`` (default :func:`os.urandom`).
    """

    args: Sequence[str] = attrs.field(default=(), converter=_strings)
    env: Mapping[str, str] | Sequence[tuple[str, str]] = attrs.field(default=(), converter=_env)
    inherit_env: bool = False
    cwd: str | None = None
    preopens: Sequence[Preopen] = attrs.field(default=(), converter=_preopens)
    stdin: Any = None
    stdout: Any = None
    stderr: Any = None
    allowed_addresses: Sequence[str] = attrs.field(default=(), converter=_strings)
    inherit_network: bool = False
    allow_ip_name_lookup: bool = False
    insecure_seed: tuple[int, int] | None = None
    random_source: Any = None

    def __attrs_post_init__(self) -> None:
        import trio

        if not (
            self.stdin is None
            or self.stdin == INHERIT
            or isinstance(self.stdin, bytes | bytearray | memoryview)
            or isinstance(self.stdin, trio.abc.ReceiveStream | trio.abc.ReceiveChannel)
        ):
            raise TypeError(
                "stdin must be None, 'inherit', bytes, a trio ReceiveStream or a "
                f"ReceiveChannel of bytes, not {self.stdin!r}"
            )
        for name in ("stdout", "stderr"):
            value = getattr(self, name)
            if not (
                value is None
                or value == INHERIT
                or isinstance(value, bytearray)
                or isinstance(value, trio.abc.SendStream | trio.abc.SendChannel)
            ):
                raise TypeError(
                    f"{name} must be None, 'inherit', a bytearray, a trio SendStream or a "
                    f"SendChannel of bytes, not {value!r}"
                )

    def environment(self) -> list[tuple[str, str]]:
        """The environment the guest sees, in order, each name once."""
        merged: dict[str, str] = dict(os.environ) if self.inherit_env else {}
        merged.update(dict(self.env))
        return list(merged.items())
