"""The smallest WASI command: prints one line (the ``run`` benchmark's hello guest)."""

from wit_world import exports


class Run(exports.Run):
    def run(self) -> None:
        print("Hello, world!")
