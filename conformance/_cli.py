"""Command line: discover ``.wast`` files, run them, judge them against the ledger.

By default every file runs in its own worker process (``python -m conformance
--worker-output ...``), several at a time, with a hard timeout on top of the
in-process time limit: a crash or a hang inside wasm then fails one file
instead of the whole run. ``--in-process`` runs the files one after the other
in this process, which is easier to debug.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, TextIO

import attrs

from ._ledger import DEFAULT_LEDGER, Ledger, LedgerEntry, LedgerError, load_ledger
from ._results import CommandResult, FileResult, Outcome, Verdict
from ._run import DEFAULT_TIME_LIMIT, run_file

__all__ = ["Discovered", "discover", "judge", "main"]

#: Extra seconds a worker process gets beyond the in-process time limit
#: (conversion, interpreter start-up, compilation of the first modules).
_WORKER_GRACE: Final = 30.0


@attrs.frozen
class Discovered:
    """A ``.wast`` file to run: where it is and how results name it."""

    path: Path
    display: str


def discover(paths: Iterable[Path]) -> list[Discovered]:
    """The ``.wast`` files under ``paths`` (files, or directories searched recursively).

    Anything that is not a ``.wast`` file is ignored. :class:`FileNotFoundError`
    for a path that does not exist.
    """
    found: list[Discovered] = []
    seen: set[Path] = set()
    for root in paths:
        if root.is_dir():
            candidates = sorted(p for p in root.rglob("*.wast") if p.is_file())
        elif root.is_file():
            candidates = [root] if root.suffix == ".wast" else []
        else:
            raise FileNotFoundError(f"{root}: no such file or directory")
        for path in candidates:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                found.append(Discovered(path, str(path)))
    return found


def judge(command: CommandResult, entry: LedgerEntry | None) -> Verdict:
    """A command's verdict given its ledger entry (None when it is expected to pass)."""
    if command.skipped:
        return Verdict.SKIPPED
    if entry is None:
        return Verdict.PASS if command.passed else Verdict.FAIL
    return Verdict.UNEXPECTED_PASS if command.passed else Verdict.EXPECTED_FAILURE


def _skipped_lines(ledger: Ledger, path: Path) -> list[int]:
    return sorted(line for line, entry in ledger.for_file(path).items() if entry.skip)


def _run_worker(item: Discovered, time_limit: float, ledger_path: Path) -> FileResult:
    """Run one file in a child process with a hard timeout."""
    with tempfile.TemporaryDirectory(prefix="conformance-worker-") as tmp:
        out = Path(tmp) / "result.json"
        env = dict(os.environ)
        # The child must import this same conformance package (and the trio_wasi beside it).
        here = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
        command = [
            sys.executable,
            "-m",
            "conformance",
            "--worker-output",
            str(out),
            "--time-limit",
            str(time_limit),
            "--ledger",
            str(ledger_path),
            str(item.path),
        ]
        limit = time_limit + _WORKER_GRACE
        try:
            # subprocess.run kills and reaps the worker when the timeout expires.
            completed = subprocess.run(
                command, capture_output=True, text=True, timeout=limit, env=env, check=False
            )
        except subprocess.TimeoutExpired:
            message = f"the worker process was killed after {limit:g} s"
            return _failed(item, message)
        if out.is_file():
            return FileResult.from_json(json.loads(out.read_text(encoding="utf-8")))
        tail = " | ".join(completed.stderr.strip().splitlines()[-3:])
        message = f"the worker process exited with status {completed.returncode}: {tail}"
        return _failed(item, message)


def _failed(item: Discovered, message: str) -> FileResult:
    return FileResult(item.display, Outcome.FAILED, [CommandResult(0, "worker", False, message)])


def _run_all(
    items: Sequence[Discovered],
    ledger: Ledger,
    ledger_path: Path,
    *,
    time_limit: float,
    jobs: int,
    isolate: bool,
) -> list[FileResult]:
    def run_one(item: Discovered) -> FileResult:
        if isolate:
            return _run_worker(item, time_limit, ledger_path)
        skip = _skipped_lines(ledger, item.path)
        return run_file(item.path, item.display, time_limit=time_limit, skip=skip)

    if not isolate or jobs <= 1:
        return [run_one(item) for item in items]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run_one, items))


def _failure_line(path: str, command: CommandResult, note: str) -> str:
    # One line per command: a multi-line diagnostic (a conversion error with
    # its source excerpt) keeps its first line here and all of it in the JSON.
    first = note.splitlines()[0] if note else note
    line = f"{path}:{command.line}: {command.kind}: {first}"
    if command.expected_text is not None:
        line += f" (expected text: {command.expected_text!r})"
    return line


def _report(
    items: Sequence[Discovered],
    results: Sequence[FileResult],
    ledger: Ledger,
    *,
    verbose: bool,
    out: TextIO,
) -> tuple[dict[str, Any], int]:
    verdicts = {verdict: 0 for verdict in Verdict}
    file_counts = {outcome: 0 for outcome in Outcome}
    stale: list[str] = []
    files: list[dict[str, Any]] = []
    used: set[LedgerEntry] = set()
    for item, result in zip(items, results, strict=True):
        entries = ledger.for_file(item.path)
        used.update(entries.values())
        file_counts[result.outcome] += 1
        commands: list[dict[str, Any]] = []
        lines_seen: set[int] = set()
        for command in result.commands:
            entry = entries.get(command.line)
            lines_seen.add(command.line)
            verdict = judge(command, entry)
            verdicts[verdict] += 1
            commands.append(
                {
                    **command.to_json(),
                    "verdict": verdict.value,
                    "ledger_reason": entry.reason if entry else None,
                }
            )
            if verdict is Verdict.FAIL:
                print(_failure_line(result.path, command, command.message), file=out)
            elif verdict is Verdict.UNEXPECTED_PASS and entry is not None:
                note = f"unexpected pass, remove it from the ledger (ledger: {entry.reason})"
                print(_failure_line(result.path, command, note), file=out)
            elif verdict is Verdict.EXPECTED_FAILURE and verbose and entry is not None:
                note = f"expected failure: {command.message} (ledger: {entry.reason})"
                print(_failure_line(result.path, command, note), file=out)
            elif verdict is Verdict.SKIPPED and verbose and entry is not None:
                print(f"{result.path}:{command.line}: skipped ({entry.reason})", file=out)
        for line, entry in sorted(entries.items()):
            if line not in lines_seen:
                stale.append(str(entry))
                print(
                    f"{result.path}:{line}: ledger entry matches no command of this file, "
                    f"remove it (ledger: {entry.reason})",
                    file=out,
                )
        files.append({**result.to_json(), "commands": commands})
    if verbose:
        unused: dict[str, int] = {}
        for entry in ledger:
            if entry not in used:
                unused[str(entry.path)] = unused.get(str(entry.path), 0) + 1
        for path, count in unused.items():
            print(f"note: {count} ledger entries for {path} match no file of this run", file=out)
    problems = verdicts[Verdict.FAIL] + verdicts[Verdict.UNEXPECTED_PASS] + len(stale)
    status = 1 if problems else 0
    summary = {
        "passed": verdicts[Verdict.PASS] + verdicts[Verdict.UNEXPECTED_PASS],
        "failed": verdicts[Verdict.FAIL] + verdicts[Verdict.EXPECTED_FAILURE],
        "skipped": verdicts[Verdict.SKIPPED],
        "expected_failures": verdicts[Verdict.EXPECTED_FAILURE],
        "unexpected_failures": verdicts[Verdict.FAIL],
        "unexpected_passes": verdicts[Verdict.UNEXPECTED_PASS],
        "stale_entries": stale,
        "files_passed": file_counts[Outcome.PASSED],
        "files_failed": file_counts[Outcome.FAILED],
        "exit_status": status,
    }
    print(
        f"files: {summary['files_passed']} passed, {summary['files_failed']} failed",
        file=out,
    )
    print(
        f"ledger: {summary['expected_failures']} expected failures, "
        f"{summary['unexpected_failures']} unexpected failures, "
        f"{summary['unexpected_passes']} unexpected passes, "
        f"{len(stale)} stale entries",
        file=out,
    )
    print(
        f"conformance: {summary['passed']} passed, {summary['failed']} failed, "
        f"{summary['skipped']} skipped",
        file=out,
    )
    return {"summary": summary, "files": files}, status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Run Component Model .wast conformance files against trio_wasi.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help=".wast files or dirs")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write a JSON report to FILE")
    parser.add_argument(
        "--ledger",
        type=Path,
        default=DEFAULT_LEDGER,
        metavar="FILE",
        help="known failures (default: the ledger.txt of this package)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT,
        metavar="SECONDS",
        help=f"time limit per file (default {DEFAULT_TIME_LIMIT:g})",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="files run at the same time, each in its own process (default: CPU count)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the files one by one in this process (no crash or hang isolation)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also list expected failures and skips"
    )
    # Internal: run exactly one file and write its result as JSON.
    parser.add_argument("--worker-output", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the conformance command line; returns the exit status.

    0 when every command behaved as the ledger says, 1 when a command not in
    the ledger failed, a ledgered command passed or a ledger entry of a file
    that ran matches none of its commands, 2 for usage errors.
    """
    stream = out if out is not None else sys.stdout
    args = _parser().parse_args(argv)

    if args.worker_output is not None:
        if len(args.paths) != 1:
            print("conformance: --worker-output takes exactly one file", file=sys.stderr)
            return 2
        path: Path = args.paths[0]
        try:
            skip = _skipped_lines(load_ledger(args.ledger), path)
        except (OSError, LedgerError) as exc:
            print(f"conformance: cannot read the ledger: {exc}", file=sys.stderr)
            return 2
        result = run_file(path, str(path), time_limit=args.time_limit, skip=skip)
        args.worker_output.write_text(json.dumps(result.to_json()), encoding="utf-8")
        return 0

    try:
        ledger = load_ledger(args.ledger)
    except (OSError, LedgerError) as exc:
        print(f"conformance: cannot read the ledger: {exc}", file=sys.stderr)
        return 2
    try:
        items = discover(args.paths)
    except FileNotFoundError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2
    if not items:
        print("conformance: no .wast files found", file=sys.stderr)
        return 2

    results = _run_all(
        items,
        ledger,
        args.ledger,
        time_limit=args.time_limit,
        jobs=max(1, args.jobs),
        isolate=not args.in_process,
    )
    report, status = _report(items, results, ledger, verbose=args.verbose, out=stream)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return status
