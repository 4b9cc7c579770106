"""Guest for the ``local:roundtrip/roundtrip`` world (built with componentize-py).

Each export crosses the host boundary at least once so that strings, lists and records
are exercised as both import arguments/results and export arguments/results.
"""

from wit_world import exports
from wit_world.imports import host


class Guest(exports.Guest):
    """Implements ``local:roundtrip/guest``."""

    def echo(self, s: str) -> str:
        # The host's transform result is wrapped so the test can tell both sides ran.
        return "echo(" + host.transform(s) + ")"

    def reverse_list(self, xs: list[int]) -> list[int]:
        return list(reversed(xs))

    def make_person(self, name: str, age: int) -> host.Person:
        return host.Person(name=name, age=age, tags=[name.upper(), f"age:{age}", ""])

    def greet(self, p: host.Person) -> str:
        described = host.describe(p)
        host.log(f"greeting {p.name} ({len(p.tags)} tags)")
        return f"Hello, {described}!"
