"""A WASI 0.3 command (``wasi:cli/command@0.3.0``) that exercises the cli, clocks and random.

It writes through ``wasi:cli/stdout`` and ``stderr`` as ``stream<u8>``, reads all of
stdin through ``read-via-stream``, reports its arguments and one environment variable,
sleeps ten times 200 ms at once with ``monotonic-clock.wait-for``, and exits with the
status in ``EXIT_CODE`` (``exit-with-code``) when that is set. Every line it prints is
the same on any correct host, so a test compares the output exactly.
"""

import asyncio

import wit_world
from wit_world import exports
from wit_world.imports import (
    environment,
    exit,
    insecure,
    insecure_seed,
    monotonic_clock,
    random,
    stderr,
    stdin,
    stdout,
    system_clock,
)

SLEEPS = 10
SLEEP_NS = 200_000_000


class Run(exports.Run):
    async def run(self) -> None:
        out, out_reader = wit_world.byte_stream()
        out_done = stdout.write_via_stream(out_reader)
        err, err_reader = wit_world.byte_stream()
        err_done = stderr.write_via_stream(err_reader)

        async def say(text: str) -> None:
            await out.write_all(text.encode())

        env = dict(environment.get_environment())
        await say(f"args: {environment.get_arguments()[1:]}\n")
        await say(f"GREETING: {env.get('GREETING')}\n")

        data = b""
        reader, done = stdin.read_via_stream()
        with reader:
            while not reader.writer_dropped:
                data += await reader.read(4096)
        await done.read()
        await say(f"stdin: {data.decode()!r}\n")

        start = monotonic_clock.now()
        await asyncio.gather(*(monotonic_clock.wait_for(SLEEP_NS) for _ in range(SLEEPS)))
        elapsed = monotonic_clock.now() - start
        await say(f"slept: {elapsed >= SLEEP_NS}\n")

        await say(f"random bytes: {len(random.get_random_bytes(16))}\n")
        await say(f"insecure bytes: {len(insecure.get_insecure_random_bytes(8))}\n")
        await say(f"seed is a pair: {len(insecure_seed.get_insecure_seed()) == 2}\n")
        now = system_clock.now()
        await say(f"system clock after 2020: {now.seconds > 1_577_836_800}\n")

        await err.write_all(b"a line on stderr\n")
        for writer, finished in ((out, out_done), (err, err_done)):
            writer.__exit__(None, None, None)
            await finished.read()

        code = int(env.get("EXIT_CODE", "0"))
        if code:
            exit.exit_with_code(code)
