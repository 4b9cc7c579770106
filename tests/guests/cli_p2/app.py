"""A WASI 0.2 command (``wasi:cli/command@0.2.0``) that exercises the cli, clocks and random.

It prints through Python's own ``print`` (wasi:cli/stdout and stderr by way of the
libc adapter), reads all of stdin, reports its arguments and one environment variable,
polls three clock pollables at once and checks they become ready in deadline order, and
exits with status 1 through ``wasi:cli/exit`` when ``FAIL`` is set. Every line it
prints is the same on any correct host, so a test compares the output exactly.
"""

import os
import sys
import time

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import environment, exit, monotonic_clock, poll, wall_clock

MS = 1_000_000


class Run(exports.Run):
    def run(self) -> None:
        env = dict(environment.get_environment())
        print(f"args: {environment.get_arguments()[1:]}")
        print(f"GREETING: {env.get('GREETING')}")
        data = sys.stdin.buffer.read()
        print(f"stdin: {data.decode()!r}")
        print(f"random bytes: {len(os.urandom(16))}")
        print(f"wall clock after 2020: {wall_clock.now().seconds > 1_577_836_800}")
        first = time.monotonic_ns()
        print(f"monotonic: {time.monotonic_ns() >= first}")

        # Three deadlines, registered out of order; each poll reports what is ready.
        delays = [150 * MS, 50 * MS, 100 * MS]
        pollables = [monotonic_clock.subscribe_duration(d) for d in delays]
        pending = list(range(len(pollables)))
        batches = []
        while pending:
            ready = poll.poll([pollables[i] for i in pending])
            batch = [pending[j] for j in ready]
            batches.append(batch)
            pending = [i for i in pending if i not in batch]
        order = [i for batch in batches for i in sorted(batch, key=lambda i: delays[i])]
        later = all(
            max(delays[i] for i in a) <= min(delays[i] for i in b)
            for n, a in enumerate(batches)
            for b in batches[n + 1 :]
        )
        print(f"ready in deadline order: {order == [1, 2, 0] and later}")
        for p in pollables:
            p.__exit__(None, None, None)

        print("a line on stderr", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        if "FAIL" in env:
            exit.exit(Err(None))
