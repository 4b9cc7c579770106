"""``python -m trio_wasi``: see :mod:`trio_wasi._cli`."""

from ._cli import main

raise SystemExit(main())
