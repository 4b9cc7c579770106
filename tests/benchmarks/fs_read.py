"""File read throughput through wasi:filesystem streams.

    python tests/benchmarks/fs_read.py [--quick]

A 100 MB file (20 MB with ``--quick``) of random bytes in a read-only grant
is read to the end:

* by a real guest, the componentize-py command ``tests/guests/fs_p3`` run
  with ``bench NAME``: once through ``descriptor.read-via-stream`` of
  wasi:filesystem@0.3.0 (``stream<u8>``, 1 MiB reads) and once through
  Python's ``open(...).read(1 MiB)`` (wasi:filesystem@0.2 ``input-stream``
  by way of the libc adapter); the guest times each with its own monotonic
  clock, so the figure is what a guest sees;
* by the host implementation's streams directly (0.3: the ``stream<u8>``
  source channel; 0.2: ``input-stream.read`` of 64 KiB), without a guest.

Figures are payload megabytes (10^6 bytes) per second.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
if (REPO_ROOT / "trio_wasi" / "__init__.py").is_file() and str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import trio  # noqa: E402

import trio_wasi  # noqa: E402
from trio_wasi._abi._values import Ok  # noqa: E402
from trio_wasi.wasi import Preopen, WasiConfig  # noqa: E402
from trio_wasi.wasi._command import run_command  # noqa: E402
from trio_wasi.wasi._filesystem import Descriptor02, Descriptor03  # noqa: E402
from trio_wasi.wasi._paths import open_preopen  # noqa: E402

__all__ = ["measure"]

NAME = "big.bin"


def _guest_build() -> ModuleType:
    name = "_trio_wasi_tests_guest_build"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE.parent / "guests" / "_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


async def _guest(wasm: Path, directory: Path, size: int) -> dict[str, float]:
    out, err = bytearray(), bytearray()
    config = WasiConfig(
        args=["fs", "bench", NAME],
        stdout=out,
        stderr=err,
        preopens=[Preopen(directory, "/data", read_only=True)],
    )
    status = await run_command(trio_wasi.Component.from_file(wasm), config)
    if status != 0:
        raise RuntimeError(f"the guest failed ({status}): {err.decode()[-300:]}")
    figures = {}
    for line in out.decode().splitlines():
        face, nbytes, ns = line.split()
        if int(nbytes) != size:
            raise AssertionError(f"{face}: the guest read {nbytes} bytes of {size}")
        figures[f"guest_{face}_mb_s"] = int(nbytes) / int(ns) * 1e3
    return figures


async def _host(directory: Path, size: int) -> dict[str, float]:
    root = open_preopen(directory, read_only=True)
    node = root.open_at(False, NAME, frozenset(), frozenset({"read"}))
    try:
        start = time.perf_counter()
        chunks, future = Descriptor03(node, None).read_via_stream(0)  # type: ignore[arg-type]
        n = 0
        async for chunk in chunks:
            n += len(chunk)
        if n != size or await future.receive() != Ok():
            raise AssertionError("the 0.3 stream did not read the whole file")
        p3 = n / (time.perf_counter() - start) / 1e6

        start = time.perf_counter()
        stream = Descriptor02(node).read_via_stream(0).value
        n = 0
        while isinstance(result := stream.read(1 << 16), Ok):
            n += len(result.value)
        stream.close()
        if n != size:
            raise AssertionError("the 0.2 stream did not read the whole file")
        p2 = n / (time.perf_counter() - start) / 1e6
    finally:
        node.close()
        root.close()
    return {"host_p3_mb_s": p3, "host_p2_mb_s": p2}


def measure(quick: bool) -> dict[str, float]:
    """The figures (MB/s): ``guest_p3``, ``guest_p2``, ``host_p3``, ``host_p2`` (``_mb_s``)."""
    size = (20 if quick else 100) * 1_000_000
    wasm = _guest_build().build_guest("fs_p3", "command", stub_wasi=False)
    with tempfile.TemporaryDirectory(prefix="trio-wasi-bench-fs-") as tmp:
        directory = Path(tmp)
        with open(directory / NAME, "wb") as f:
            for _ in range(size // 1_000_000):
                f.write(os.urandom(1_000_000))

        async def main() -> dict[str, float]:
            figures = await _guest(wasm, directory, size)
            figures.update(await _host(directory, size))
            return figures

        return trio.run(main)


if __name__ == "__main__":
    for key, value in measure("--quick" in sys.argv).items():
        print(f"{key}: {value:.0f}")
