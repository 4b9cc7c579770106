"""Print a table of trio_wasi benchmark figures next to their targets.

    python tests/benchmarks/run.py [--quick] [--only GROUP ...] [--json PATH] [--strict]

Groups:

- ``load``: cold and warm load of the componentize-py ``sync_roundtrip`` guest (built
  with WASI stubbed out) up to a callable instance.  Each load runs in a fresh Python
  process so no in-process memo can help; *cold* uses a new empty compile-cache
  directory, *warm* the same directory a second time.
- ``call``: per-call cost of a synchronous export called from trio, on a small WAT
  component (a no-op, and a string echo), as the median of several timed loops.
- ``async``: per-call cost of an async export (callback lift): trivial, awaiting one
  async-lowered host import (a plain ``def``, an ``async def``), and N concurrent calls
  awaiting a 50 ms ``async def`` import, each inline and on a store thread, beside a
  ``trio.to_thread.run_sync`` round trip timed in the same run (``async_call.py``).
- ``streams``: ``stream<u8>`` throughput host -> guest -> host through an echo export,
  64 KiB chunks, inline and on a store thread (``tests/benchmarks/streams.py``).
- ``engine``: raw core-wasm figures from ``trio_wasi._engine._bench`` when that module
  is present.

A figure that cannot be measured (missing API, error) prints as ``n/a`` with the reason;
``--strict`` makes the exit status 1 when any figure misses its target or is n/a.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
# Measure the checkout this script lives in, whatever trio_wasi is installed.
if (REPO_ROOT / "trio_wasi" / "__init__.py").is_file() and str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
GUEST_HOST = "local:roundtrip/host"
GUEST_ECHO = "local:roundtrip/guest#echo"

# A component whose exports are lifted synchronously: ``nop`` does nothing, ``echo``
# returns its string argument (the core function hands back the pointer it was given).
CALL_WAT = """
(component
  (core module $m
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32) (param $align i32) (param $size i32) (result i32)
      (local $ptr i32)
      ;; Reset per call: every argument is dead once the call returns.
      (local.set $ptr (i32.const 1024))
      (global.set $bump (i32.add (local.get $ptr) (local.get $size)))
      (if (i32.gt_u (global.get $bump) (i32.const 65536)) (then unreachable))
      (local.get $ptr))
    (func (export "nop"))
    (func (export "echo") (param $p i32) (param $l i32) (result i32)
      (i32.store (i32.const 8) (local.get $p))
      (i32.store (i32.const 12) (local.get $l))
      (i32.const 8)))
  (core instance $i (instantiate $m))
  (func (export "nop") (canon lift (core func $i "nop")))
  (func (export "echo") (param "s" string) (result string)
    (canon lift (core func $i "echo") (memory (core memory $i "memory"))
      (realloc (core func $i "realloc")) string-encoding=utf8)))
"""


@dataclass
class Row:
    """One line of the table: a figure (or None for n/a) and its target."""

    name: str
    value: float | None
    unit: str
    target: str = ""
    # Returns True when the value meets the target; None means "no target".
    check: Callable[[float], bool] | None = None
    note: str = ""

    @property
    def status(self) -> str:
        if self.value is None:
            return "n/a"
        if self.check is None:
            return ""
        return "ok" if self.check(self.value) else "MISS"


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:.2f} {unit}"


def format_table(rows: list[Row]) -> str:
    """Render rows as an aligned plain-text table."""
    header = ("benchmark", "figure", "target", "status", "note")
    lines = [(r.name, format_value(r.value, r.unit), r.target, r.status, r.note) for r in rows]
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(4)]
    out = []
    for cells in [header, *lines]:
        left = "  ".join(str(c).ljust(w) for c, w in zip(cells[:4], widths, strict=True))
        out.append(f"{left}  {cells[4]}".rstrip())
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text if len(text) <= 120 else text[:117] + "..."


# -- load ---------------------------------------------------------------------------


def _load_guest_build() -> ModuleType:
    name = "_trio_wasi_tests_guest_build"
    if name in sys.modules:
        return sys.modules[name]
    path = HERE.parent / "guests" / "_build.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def child_load(wasm: str, cache_dir: str) -> dict[str, float]:
    """Load ``wasm`` with a compile cache in ``cache_dir``; time each stage (in seconds)."""
    import trio

    import trio_wasi

    async def main() -> dict[str, float]:
        t0 = time.perf_counter()
        engine = trio_wasi.Engine(cache_dir=Path(cache_dir))
        component = trio_wasi.Component.from_file(Path(wasm), engine=engine)
        t1 = time.perf_counter()
        linker = trio_wasi.Linker(engine)
        linker.define_function(GUEST_HOST, "log", lambda msg: None)
        linker.define_function(GUEST_HOST, "transform", lambda s: s)
        linker.define_function(GUEST_HOST, "describe", lambda p: "")
        async with linker.instantiate(component) as instance:
            t2 = time.perf_counter()
            result = await instance.call(GUEST_ECHO, "x")
            t3 = time.perf_counter()
        if result != "echo(x)":
            raise AssertionError(f"unexpected echo result {result!r}")
        return {"decode": t1 - t0, "instantiate": t2 - t1, "load": t2 - t0, "first_call": t3 - t2}

    return trio.run(main)


def _run_child(wasm: Path, cache_dir: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child-load", str(wasm), str(cache_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()
        raise RuntimeError(f"load process failed: {lines[-1]}")
    timings: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return timings


def bench_load(quick: bool) -> list[Row]:
    rows: list[Row] = []
    try:
        build = _load_guest_build()
        start = time.perf_counter()
        wasm = build.build_guest("sync_roundtrip", "roundtrip", stub_wasi=True)
        built_in = time.perf_counter() - start
        size_mb = wasm.stat().st_size / 1e6
        rows.append(Row("guest build (or cache hit)", built_in, "s", note=f"{size_mb:.1f} MB"))
    except Exception as exc:
        return [Row("guest build", None, "s", note=_short(exc))]

    with tempfile.TemporaryDirectory(prefix="trio-wasi-bench-cache-") as cache:
        for label in ("cold", "warm"):
            try:
                t = _run_child(wasm, Path(cache))
            except Exception as exc:
                target = "< 0.5 s" if label == "warm" else ""
                rows.append(Row(f"{label} load, sync guest", None, "s", target, note=_short(exc)))
                continue
            note = (
                f"decode+compile {t['decode']:.3f} s, instantiate {t['instantiate']:.3f} s, "
                f"first call {t['first_call'] * 1e3:.1f} ms"
            )
            if label == "warm":
                rows.append(
                    Row("warm load, sync guest", t["load"], "s", "< 0.5 s", lambda v: v < 0.5, note)
                )
            else:
                rows.append(Row("cold load, sync guest", t["load"], "s", note=note))
    return rows


# -- call ---------------------------------------------------------------------------


def bench_call(quick: bool) -> list[Row]:
    iterations, repeats = (500, 3) if quick else (5_000, 7)
    try:
        import trio

        import trio_wasi

        async def main() -> dict[str, float]:
            engine = trio_wasi.Engine()
            component = trio_wasi.Component.from_wat(CALL_WAT, engine=engine)
            linker = trio_wasi.Linker(engine)
            medians: dict[str, float] = {}
            async with linker.instantiate(component) as instance:
                if await instance.call("echo", "hello") != "hello":
                    raise AssertionError("echo returned the wrong string")
                for name, args in (("nop", ()), ("echo", ("hello, world",))):
                    for _ in range(iterations // 10):  # warm up
                        await instance.call(name, *args)
                    samples = []
                    for _ in range(repeats):
                        start = time.perf_counter_ns()
                        for _ in range(iterations):
                            await instance.call(name, *args)
                        samples.append((time.perf_counter_ns() - start) / iterations / 1000)
                    medians[name] = statistics.median(samples)
            return medians

        medians = trio.run(main)
    except Exception as exc:
        note = _short(exc)
        return [
            Row("sync call: nop", None, "us", note=note),
            Row("sync call: string echo", None, "us", "< 30 us", note=note),
        ]
    note = f"median of {repeats} x {iterations}"
    return [
        Row("sync call: nop", medians["nop"], "us", note=note),
        Row("sync call: string echo", medians["echo"], "us", "< 30 us", lambda v: v < 30.0, note),
    ]


# -- async --------------------------------------------------------------------------


def _load_sibling(stem: str) -> ModuleType:
    name = f"_trio_wasi_tests_benchmarks_{stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{stem}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def bench_async_call(quick: bool) -> list[Row]:
    try:
        f = _load_sibling("async_call").measure(quick)
    except Exception as exc:
        return [Row("async call", None, "us", note=_short(exc))]
    trip = f["to_thread"]
    x = f"x to_thread ({trip:.0f} us)"

    def ratio_under(limit: float) -> Callable[[float], bool]:
        return lambda v: v <= limit * trip

    def flat_under(v0: float) -> Callable[[float], bool]:
        return lambda v: v <= 2.0 * v0

    per = "CPU per call: (cpu(N) - cpu(1)) / (N - 1)"
    rows = [
        Row("to_thread.run_sync round trip", trip, "us", note="best loop, same run"),
        Row("async call: trivial, inline", f["trivial_inline"], "us", note="best loop, per call"),
        Row(
            "async call: trivial, store thread",
            f["trivial_threaded"],
            "us",
            "<= 1.5" + x,
            ratio_under(1.5),
            f"{f['trivial_threaded'] / trip:.2f} x to_thread",
        ),
        Row("async call: def import, inline", f["def_inline"], "us", note="best loop, per call"),
        Row(
            "async call: def import, store thread",
            f["def_threaded"],
            "us",
            note=f"{f['def_threaded'] / trip:.2f} x to_thread",
        ),
        Row(
            "async call: async def import, inline",
            f["async_def_inline"],
            "us",
            "<= 60 us",
            lambda v: v <= 60.0,
            "best loop, per call",
        ),
        Row(
            "async call: async def import, store thread",
            f["async_def_threaded"],
            "us",
            "<= 3" + x,
            ratio_under(3.0),
            f"{f['async_def_threaded'] / trip:.2f} x to_thread",
        ),
    ]
    for mode, label in (("inline", "inline"), ("threaded", "store thread")):
        n100 = f[f"concurrent_100_{mode}"]
        rows.append(Row(f"100 concurrent calls, {label}", n100, "us", note=per))
        rows.append(
            Row(
                f"4000 concurrent calls, {label}",
                f[f"concurrent_4000_{mode}"],
                "us",
                "<= 2 x N=100",
                flat_under(n100),
                f"{f[f'concurrent_4000_{mode}'] / n100:.2f} x N=100",
            )
        )
    rows.append(Row("raw core call (same run)", f["raw_core_call"], "us", note="best of repeats"))
    return rows


# -- streams ------------------------------------------------------------------------


def bench_streams(quick: bool) -> list[Row]:
    labels = (("inline", "stream<u8> echo, 64 KiB chunks"), ("threaded", "  same, store thread"))
    try:
        figures = _load_sibling("streams").measure(quick)
    except Exception as exc:
        note = _short(exc)
        return [Row(label, None, "MB/s", "> 500 MB/s", note=note) for _, label in labels]
    return [
        Row(
            label,
            figures[f"{key}_mb_s"],
            "MB/s",
            "> 500 MB/s" if key == "inline" else "",
            (lambda v: v > 500.0) if key == "inline" else None,
            "host -> guest -> host, payload bytes",
        )
        for key, label in labels
    ]


# -- engine -------------------------------------------------------------------------

# (label, _bench function, reference figure from ARCHITECTURE.md section 7)
ENGINE_BENCHES = [
    ("raw core call, 2 x i32 -> i32", "bench_raw_call", "ref 1.5 us"),
    ("raw host callback, i32 -> i32", "bench_host_callback", "ref 0.47 us"),
    ("generic Func.__call__", "bench_generic_call", "ref 25 us"),
    ("copy 64 KiB into memory", "bench_memory_copy", "ref 2.5 us"),
]


def bench_engine(quick: bool) -> list[Row]:
    try:
        bench: ModuleType | None = importlib.import_module("trio_wasi._engine._bench")
        reason = ""
    except ImportError as exc:
        bench, reason = None, _short(exc)
    rows = []
    for label, func_name, ref in ENGINE_BENCHES:
        func: Callable[..., dict[str, Any]] | None = getattr(bench, func_name, None)
        if func is None:
            rows.append(Row(label, None, "us", ref, note=reason or f"no {func_name}"))
            continue
        try:
            result = func(iterations=20_000, repeats=3) if quick else func()
        except Exception as exc:
            rows.append(Row(label, None, "us", ref, note=_short(exc)))
            continue
        rows.append(Row(label, float(result["us_per_call"]), "us", ref, note="best of repeats"))
    return rows


GROUPS: dict[str, Callable[[bool], list[Row]]] = {
    "load": bench_load,
    "call": bench_call,
    "async": bench_async_call,
    "streams": bench_streams,
    "engine": bench_engine,
}


def main(argv: list[str] | None = None) -> int:
    """Run the selected groups, print the table, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--only", nargs="+", choices=sorted(GROUPS), help="groups to run")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a miss or n/a")
    parser.add_argument("--child-load", nargs=2, metavar=("WASM", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child_load:
        print(json.dumps(child_load(*args.child_load)))
        return 0

    rows: list[Row] = []
    for name in args.only or list(GROUPS):
        rows.extend(GROUPS[name](args.quick))
    print(format_table(rows))
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "value": r.value,
                        "unit": r.unit,
                        "target": r.target,
                        "status": r.status,
                        "note": r.note,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
    bad = [r for r in rows if r.status in ("MISS", "n/a")]
    return 1 if args.strict and bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
