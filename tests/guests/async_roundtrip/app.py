"""Guest for the ``local:roundtrip/roundtrip`` world (built with componentize-py).

``local:roundtrip/baz`` is both imported and exported with ``foo: async func``: the export
is lifted ``async`` with a callback and the import is lowered ``async``, so a call into
this guest that is waiting on its import leaves the guest free to start another call.
"""

from wit_world import exports
from wit_world.imports import baz


class Baz(exports.Baz):
    """Implements the exported ``local:roundtrip/baz``."""

    async def foo(self, s: str) -> str:
        # Marks on both sides of the import call, so nesting shows in the result.
        inner = await baz.foo(s + " - entered guest")
        return inner + " - exited guest"
