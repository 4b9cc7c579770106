"""Throughput of ``stream<u8>`` from the host through a guest and back.

    python tests/benchmarks/streams.py [--quick]

The export ``echo: async func(s: stream<u8>) -> stream<u8>`` returns a new stream at
once (``task.return``) and then, in its callback loop, copies its input into it through
a 64 KiB buffer in linear memory. The host sends 64 KiB ``bytes`` chunks into a trio
memory channel passed as ``s`` and iterates the returned receiver; the figure is payload
megabytes (10^6 bytes) per second over the whole transfer, the median of
:data:`REPEATS` transfers of 128 MiB, inline and on a store thread taking turns. Each
byte is copied twice (host chunk into guest memory, guest memory into a host
``bytes``). Measured inline and on a store thread (an unused ``waitable-set.wait``
built-in makes the linker choose one).
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
if (REPO_ROOT / "trio_wasi" / "__init__.py").is_file() and str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import trio  # noqa: E402

import trio_wasi  # noqa: E402

__all__ = ["CHUNK", "ECHO_WAT", "measure"]

CHUNK = 64 * 1024

#: Transfers per mode; each figure is their median.
REPEATS = 7

ECHO_FIELDS = (HERE.parent / "wat" / "echo_u8_fields.wat").read_text()

ECHO_WAT = """
(component
  (core module $Mem (memory (export "mem") 5))
  (core instance $mem (instantiate $Mem))
  (type $S8 (stream u8))
  (core module $M
    (import "" "mem" (memory 5))
    (import "" "ret_s8" (func $ret_s8 (param i32)))
    (import "" "ws_new" (func $ws_new (result i32)))
    (import "" "ws_drop" (func $ws_drop (param i32)))
    (import "" "join" (func $join (param i32 i32)))
    (import "" "s8_new" (func $s8_new (result i64)))
    (import "" "s8_read" (func $s8_read (param i32 i32 i32) (result i32)))
    (import "" "s8_write" (func $s8_write (param i32 i32 i32) (result i32)))
    (import "" "s8_drop_r" (func $s8_drop_r (param i32)))
    (import "" "s8_drop_w" (func $s8_drop_w (param i32)))
    ;;BLOCKING_IMPORT
    ;;ECHO_FIELDS
  )
  (core func $ret_s8 (canon task.return (result $S8)))
  (core func $ws_new (canon waitable-set.new))
  (core func $ws_drop (canon waitable-set.drop))
  (core func $join (canon waitable.join))
  (core func $s8_new (canon stream.new $S8))
  (core func $s8_read (canon stream.read $S8 async (memory (core memory $mem "mem"))))
  (core func $s8_write (canon stream.write $S8 async (memory (core memory $mem "mem"))))
  (core func $s8_drop_r (canon stream.drop-readable $S8))
  (core func $s8_drop_w (canon stream.drop-writable $S8))
  ;;BLOCKING_CANON
  (core instance $m (instantiate $M (with "" (instance
    (export "mem" (memory $mem "mem"))
    (export "ret_s8" (func $ret_s8))
    (export "ws_new" (func $ws_new))
    (export "ws_drop" (func $ws_drop))
    (export "join" (func $join))
    (export "s8_new" (func $s8_new))
    (export "s8_read" (func $s8_read))
    (export "s8_write" (func $s8_write))
    (export "s8_drop_r" (func $s8_drop_r))
    (export "s8_drop_w" (func $s8_drop_w))
    ;;BLOCKING_EXPORT
  ))))
  (func (export "echo") async (param "s" (stream u8)) (result (stream u8))
    (canon lift (core func $m "echo") async (memory (core memory $mem "mem"))
      (callback (core func $m "echo_cb"))))
)
""".replace(";;ECHO_FIELDS", ECHO_FIELDS)

THREADED_ECHO_WAT = (
    ECHO_WAT.replace(
        ";;BLOCKING_IMPORT",
        '(import "" "ws_wait" (func $ws_wait (param i32 i32) (result i32)))',
    )
    .replace(
        ";;BLOCKING_CANON",
        '(core func $ws_wait (canon waitable-set.wait (memory (core memory $mem "mem"))))',
    )
    .replace(";;BLOCKING_EXPORT", '(export "ws_wait" (func $ws_wait))')
)


async def echo_throughput(instance: Any, total: int, chunk: int = CHUNK) -> float:
    """MB/s of ``total`` bytes sent in ``chunk``-sized pieces through ``echo`` and back."""
    payload = bytes(range(256)) * (chunk // 256)
    count = total // len(payload)
    send, recv = trio.open_memory_channel[bytes](4)
    received = 0

    async def sender() -> None:
        async with send:
            for _ in range(count):
                await send.send(payload)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        out = await instance.call("echo", recv)
        nursery.start_soon(sender)
        async for data in out:
            received += len(data)
    elapsed = time.perf_counter() - start
    if received != count * len(payload):
        raise AssertionError(f"echo returned {received} bytes, not {count * len(payload)}")
    return received / elapsed / 1e6


def measure(quick: bool = False) -> dict[str, float]:
    """``inline_mb_s`` and ``threaded_mb_s``: echo throughput with 64 KiB chunks (and ``repeats``).

    Each figure is the median of several transfers, the two modes taking turns
    on instances kept open: one transfer lasts about 0.1 s, short enough for a
    moment of the OS scheduling the store thread and the trio thread on
    different CPUs (or not) to move a single figure by a third.
    """
    total = (16 if quick else 128) * 1024 * 1024
    repeats = 3 if quick else REPEATS

    async def main() -> dict[str, float]:
        engine = trio_wasi.Engine()
        samples: dict[str, list[float]] = {"inline": [], "threaded": []}
        async with contextlib.AsyncExitStack() as stack:
            instances = {}
            for key, wat in (("inline", ECHO_WAT), ("threaded", THREADED_ECHO_WAT)):
                component = trio_wasi.Component.from_wat(wat, engine=engine)
                linker = trio_wasi.Linker(engine)
                instance = await stack.enter_async_context(linker.instantiate(component))
                if instance.threaded != (key == "threaded"):
                    raise AssertionError(f"expected the {key} executor")
                await echo_throughput(instance, 4 * CHUNK)  # warm up
                instances[key] = instance
            for _ in range(repeats):
                for key, instance in instances.items():
                    samples[key].append(await echo_throughput(instance, total))
        figures = {f"{key}_mb_s": statistics.median(values) for key, values in samples.items()}
        figures["repeats"] = float(repeats)
        return figures

    return trio.run(main)


def _main() -> None:
    figures = measure(quick="--quick" in sys.argv[1:])
    print(f"stream<u8> echo, 64 KiB chunks, inline:       {figures['inline_mb_s']:8.0f} MB/s")
    print(f"stream<u8> echo, 64 KiB chunks, store thread: {figures['threaded_mb_s']:8.0f} MB/s")


if __name__ == "__main__":
    _main()
