"""``python -m trio_wasi`` ends without the interpreter's teardown when that is safe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_exit_runs_atexit_handlers_and_flushes_output() -> None:
    proc = run_python(
        "import atexit, sys\n"
        "from trio_wasi._cli import exit_process\n"
        "atexit.register(lambda: print('handler', flush=False))\n"
        "sys.stdout.write('buffered')\n"
        "class Noisy:\n"
        "    def __del__(self):\n"
        "        print('teardown')\n"
        "keep = Noisy()\n"
        "exit_process(259)\n"
        "print('not reached')\n"
    )
    assert proc.returncode == 3  # 259 & 0xff, as SystemExit(259) gives
    # The handler ran and everything written was flushed; the interpreter's
    # teardown (which would finalise ``keep``) did not happen.
    assert proc.stdout == "bufferedhandler\n"


def test_exit_waits_for_the_ordinary_exit_while_a_thread_runs() -> None:
    proc = run_python(
        "import threading\n"
        "from trio_wasi._cli import exit_process\n"
        "go = threading.Event()\n"
        "t = threading.Thread(target=lambda: (go.wait(), print('thread done')))\n"
        "t.start()\n"
        "exit_process(0)\n"
        "print('returned')\n"
        "go.set()\n"
        "raise SystemExit(4)\n"
    )
    assert proc.returncode == 4
    assert proc.stdout.splitlines() == ["returned", "thread done"]


def test_module_entry_point_runs_the_demo_command() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "trio_wasi", "run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Hello")
