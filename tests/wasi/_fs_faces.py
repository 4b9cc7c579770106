"""Both faces of wasi:filesystem (0.2 and 0.3) behind one calling convention, for tests.

``await face.call(descriptor, "open-at", ...)`` runs the WIT method on
either generation and answers ``("ok", value)`` or ``("err", label)``: 0.3's
``variant`` error codes and descriptor types become their labels, so one
test states one expectation for both.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import trio

from trio_wasi import HostContext
from trio_wasi._abi._values import Err, Ok, Variant
from trio_wasi.wasi import Preopen, WasiConfig
from trio_wasi.wasi._filesystem import Preopens02, Preopens03, Types02

FOLLOW = frozenset({"symlink-follow"})
NOFOLLOW: frozenset[str] = frozenset()
READ = frozenset({"read"})
RW = frozenset({"read", "write"})
NO_OPEN: frozenset[str] = frozenset()
CREATE = frozenset({"create"})


def label(value: Any) -> Any:
    """A 0.3 variant case as its label (``other(x)`` stays a Variant); anything else as is."""
    if isinstance(value, Variant) and value.value is None and value.case != "other":
        return value.case
    if isinstance(value, dict):
        return {k: label(v) for k, v in value.items()}
    return value


def context(nursery: trio.Nursery) -> HostContext:
    """A HostContext whose background tasks run in ``nursery``."""
    ctx = HostContext()
    ctx._spawn = lambda fn, *args, **how: nursery.start_soon(fn, *args)
    return ctx


class Face:
    """One generation of the interface over a granted tree."""

    def __init__(self, version: str, ctx: HostContext, tree: Path) -> None:
        self.version = version
        config = WasiConfig(
            preopens=[Preopen(tree / "root", "/root"), Preopen(tree / "ro", "/ro", read_only=True)]
        )
        preopens = (Preopens02 if version == "0.2" else Preopens03)(config, ctx)
        self.roots = {path: d for d, path in preopens.get_directories()}
        self.root = self.roots["/root"]
        self.ro = self.roots["/ro"]

    def __repr__(self) -> str:
        return f"Face({self.version})"

    async def call(self, desc: Any, method: str, *args: Any) -> tuple[str, Any]:
        result = getattr(desc, method.replace("-", "_"))(*args)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Ok):
            return "ok", label(result.value)
        assert isinstance(result, Err), result
        return "err", label(result.value)

    async def ok(self, desc: Any, method: str, *args: Any) -> Any:
        kind, value = await self.call(desc, method, *args)
        assert kind == "ok", (method, args, value)
        return value

    async def open(self, desc: Any, path: str, flags: frozenset[str] = READ, **kw: Any) -> Any:
        open_flags = kw.get("open_flags", NO_OPEN)
        return await self.ok(desc, "open-at", kw.get("path_flags", FOLLOW), path, open_flags, flags)

    async def write(self, desc: Any, data: bytes, offset: int | None = 0) -> tuple[str, Any]:
        """Write through the descriptor's stream (append when ``offset`` is None)."""
        if self.version == "0.2":
            kind, stream = await (
                self.call(desc, "append-via-stream")
                if offset is None
                else self.call(desc, "write-via-stream", offset)
            )
            if kind == "err":
                return kind, stream
            try:
                result = await stream.blocking_write_and_flush(data)
            finally:
                stream.close()
            return ("ok", None) if isinstance(result, Ok) else ("err", result.value)
        send, receive = trio.open_memory_channel[bytes](1)
        future = (
            desc.append_via_stream(receive)
            if offset is None
            else desc.write_via_stream(receive, offset)
        )
        async with send:
            if data:
                try:
                    await send.send(data)
                except trio.BrokenResourceError:
                    pass
        result = await future.receive()
        return ("ok", None) if isinstance(result, Ok) else ("err", label(result.value))

    async def read(self, desc: Any, offset: int = 0) -> tuple[str, Any]:
        """Read the rest of the file through the descriptor's stream."""
        if self.version == "0.2":
            kind, stream = await self.call(desc, "read-via-stream", offset)
            if kind == "err":
                return kind, stream
            data = b""
            try:
                while True:
                    result = await stream.blocking_read(1 << 16)
                    if isinstance(result, Err):
                        assert result.value == Variant("closed")
                        return "ok", data
                    data += result.value
            finally:
                stream.close()
        chunks, future = desc.read_via_stream(offset)
        data = b"".join([chunk async for chunk in chunks])
        result = await future.receive()
        return ("ok", data) if isinstance(result, Ok) else ("err", label(result.value))

    async def listing(self, desc: Any) -> tuple[str, Any]:
        """The directory's entries as sorted ``(name, type)`` pairs."""
        if self.version == "0.2":
            kind, stream = await self.call(desc, "read-directory")
            if kind == "err":
                return kind, stream
            entries = []
            while (entry := stream.read_directory_entry().value) is not None:
                entries.append((entry["name"], entry["type"]))
            return "ok", sorted(entries)
        items, future = desc.read_directory()
        entries = [(e["name"], label(e["type"])) async for e in items]
        result = await future.receive()
        if isinstance(result, Err):
            return "err", label(result.value)
        return "ok", sorted(entries)

    def error_code_of(self, err: Any) -> Any:
        return Types02.filesystem_error_code(err)


def make_tree(tmp: Path) -> Path:
    """``root/`` (granted), ``ro/`` (granted read-only) and ``outside/`` beside them."""
    (tmp / "root").mkdir()
    (tmp / "ro").mkdir()
    (tmp / "outside").mkdir()
    (tmp / "outside" / "secret").write_bytes(b"secret")
    (tmp / "root" / "file").write_bytes(b"0123456789")
    (tmp / "root" / "dir").mkdir()
    (tmp / "ro" / "file").write_bytes(b"read only")
    (tmp / "ro" / "dir").mkdir()
    return tmp
