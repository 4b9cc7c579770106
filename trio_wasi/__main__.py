"""``python -m trio_wasi``: see :mod:`trio_wasi._cli`."""

import gc

from ._cli import exit_process, main

code = main()
# The process ends here: freezing every live object spares the interpreter's
# final collection a scan of all of them (tens of milliseconds after a run).
gc.freeze()
exit_process(code)
raise SystemExit(code)
