"""Resource limits a host puts on the guests it runs, and their ``-W`` spelling.

A server runs code it did not write, so nothing a guest does may take the
host down: a loop that never ends, a ``memory.grow`` loop, a value too large
to copy, a table of handles that only grows. :class:`Limits` names one bound
for each, and is applied per top-level instance:

- ``timeout``: wall-clock seconds an export call may take (and a start
  function, and each later step of a task). Enforced by wasmtime's epoch
  interruption (see ``_engine/_epoch.py``), so a guest computing in a loop is
  stopped even when it runs inline on the trio thread; the instance is
  poisoned afterwards.
- ``max_memory_size``, ``max_table_elements``, ``max_instances``,
  ``max_tables``, ``max_memories``: wasmtime's store limits, per store. A
  ``memory.grow`` past the limit returns -1 as the core spec says.
- ``hostcall_budget``: what the host may copy out of a guest for one lift
  (the arguments or results of one call, one stream or future copy): each
  list or string costs its byte size (or its element count, when that is
  larger) plus one; past it the guest traps with a message naming the limit.
  Lowering is not counted: what is lowered was either lifted (and counted)
  or made by the host itself.
- ``max_handles``: live entries of one instance's handle table (resources,
  waitables, waitable sets, subtasks, stream and future ends).
- ``max_stream_buffer``: elements the host holds for a stream end whose
  reader does not read.
- ``fuel``: wasmtime fuel, the deterministic alternative to ``timeout``:
  each store of the instance gets this much for its whole life (about one
  unit per wasm instruction) and traps with "fuel exhausted ... (limit
  fuel)" when it runs out, the same at every run whatever the machine's
  speed. It needs an engine that meters fuel (``Engine(consume_fuel=True)``).

``None`` means unbounded. The presets :meth:`Limits.serve`, :meth:`Limits.run`
and :meth:`Limits.embedding` are the defaults of ``serve``, ``run`` and the
embedding API; :func:`parse_w_options` reads wasmtime-style ``-W name=value``
options on top of a preset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, final

import attrs

__all__ = ["Limits", "add_w_argument", "parse_w_options"]

_MiB = 1 << 20
_GiB = 1 << 30


def _positive_or_none(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{attribute.name} must be a number or None, not {value!r}")
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


@final
@attrs.frozen
class Limits:
    """Bounds on what one component instance may use; ``None`` means unbounded.

    Pass one to :meth:`trio_wasi.Linker.instantiate` (``limits=``); the
    default there is :meth:`Limits.embedding`.
    """

    #: Seconds an export call may run (``Instance.call``'s ``timeout`` overrides it).
    timeout: float | None = attrs.field(default=None, validator=_positive_or_none)
    #: Bytes one linear memory may grow to (wasmtime store limit).
    max_memory_size: int | None = attrs.field(default=None, validator=_positive_or_none)
    #: Elements one table may hold (wasmtime store limit).
    max_table_elements: int | None = attrs.field(default=None, validator=_positive_or_none)
    #: Core instances per store.
    max_instances: int | None = attrs.field(default=10_000, validator=_positive_or_none)
    #: Core tables per store.
    max_tables: int | None = attrs.field(default=10_000, validator=_positive_or_none)
    #: Core memories per store.
    max_memories: int | None = attrs.field(default=10_000, validator=_positive_or_none)
    #: Live handles per component instance (resources, waitables, subtasks, stream ends).
    max_handles: int | None = attrs.field(default=1_000_000, validator=_positive_or_none)
    #: Units (about bytes) one lift out of a guest (call or stream copy) may copy.
    hostcall_budget: int | None = attrs.field(default=256 * _MiB, validator=_positive_or_none)
    #: Elements the host buffers for one stream whose reader does not read.
    #: On store threads this is also how far reads run ahead of the host's
    #: ``receive()`` (64 KiB each for bytes): four reads deep, the store
    #: thread and the trio thread overlap instead of waking each other for
    #: every read. ``serve`` keeps a smaller bound per request.
    max_stream_buffer: int | None = attrs.field(default=256 * 1024, validator=_positive_or_none)
    #: wasmtime fuel per store for the instance's life (needs ``Engine(consume_fuel=True)``).
    fuel: int | None = attrs.field(default=None, validator=_positive_or_none)
    #: Whether a component may create guest threads (``thread.new-indirect``).
    #: Off unless asked for: in a store with guest threads the wasm stack
    #: limit no longer bounds each thread's own recursion (see _run/_stackroot),
    #: so a guest recursing without bound there ends the process at its
    #: thread's guard page instead of trapping.
    guest_threads: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    @classmethod
    def embedding(cls) -> Limits:
        """The embedding API's default: no deadline, no memory bound, generous copies."""
        return cls()

    @classmethod
    def run(cls) -> Limits:
        """The default of ``run``: the embedding defaults (a command runs as long as it needs)."""
        return cls()

    @classmethod
    def serve(cls) -> Limits:
        """The default of ``serve``: every bound set, for guests the operator did not write."""
        return cls(
            timeout=30.0,
            max_memory_size=1 * _GiB,
            max_table_elements=1_000_000,
            max_instances=10_000,
            max_tables=10_000,
            max_memories=10_000,
            max_handles=100_000,
            hostcall_budget=128 * _MiB,
            max_stream_buffer=16 * 1024,
        )

    def replace(self, **changes: Any) -> Limits:
        """A copy with ``changes`` applied (``attrs.evolve``)."""
        return attrs.evolve(self, **changes)


# -W name -> (attribute, parser). Names follow wasmtime's where it has one.
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 1 << 10,
    "kib": 1 << 10,
    "m": _MiB,
    "mb": _MiB,
    "mib": _MiB,
    "g": _GiB,
    "gb": _GiB,
    "gib": _GiB,
}
_TIME_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "m": 60.0, "min": 60.0, "h": 3600.0}
_NUMBER = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")
_UNBOUNDED = {"none", "unlimited", "off"}


def _parse_quantity(text: str, units: dict[str, Any], what: str) -> tuple[float, Any]:
    match = _NUMBER.match(text)
    if match is None:
        raise ValueError(f"{what}: expected a number, got {text!r}")
    unit = match.group(2).lower()
    if unit not in units:
        named = ", ".join(u for u in units if u)
        raise ValueError(f"{what}: unknown unit {match.group(2)!r} (use {named})")
    return float(match.group(1)), units[unit]


def _parse_size(text: str, what: str) -> int | None:
    if text.strip().lower() in _UNBOUNDED:
        return None
    number, scale = _parse_quantity(text, _SIZE_UNITS, what)
    value = int(number * scale)
    if value <= 0:
        raise ValueError(f"{what} must be positive, got {text!r}")
    return value


def _parse_count(text: str, what: str) -> int | None:
    if text.strip().lower() in _UNBOUNDED:
        return None
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise ValueError(f"{what}: expected a whole number, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"{what} must be positive, got {text!r}")
    return value


_TRUE = {"y", "yes", "true", "on", "1"}
_FALSE = {"n", "no", "false", "off", "0"}


def _parse_bool(text: str, what: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{what}: expected y or n, got {text!r}")


def _parse_time(text: str, what: str) -> float | None:
    if text.strip().lower() in _UNBOUNDED:
        return None
    number, scale = _parse_quantity(text, _TIME_UNITS, what)
    value = number * scale
    if value <= 0:
        raise ValueError(f"{what} must be positive, got {text!r}")
    return float(value)


_OPTIONS: dict[str, tuple[str, Any]] = {
    "timeout": ("timeout", _parse_time),
    "max-memory-size": ("max_memory_size", _parse_size),
    "max-table-elements": ("max_table_elements", _parse_count),
    "max-instances": ("max_instances", _parse_count),
    "max-tables": ("max_tables", _parse_count),
    "max-memories": ("max_memories", _parse_count),
    "max-handles": ("max_handles", _parse_count),
    "hostcall-budget": ("hostcall_budget", _parse_size),
    # wasmtime's name for the same bound.
    "hostcall-fuel": ("hostcall_budget", _parse_size),
    "max-stream-buffer": ("max_stream_buffer", _parse_count),
    "fuel": ("fuel", _parse_count),
    "guest-threads": ("guest_threads", _parse_bool),
}

#: The ``-W`` option names :func:`parse_w_options` accepts.
W_OPTION_NAMES = tuple(_OPTIONS)


def parse_w_options(options: Iterable[str], base: Limits | None = None) -> Limits:
    """Apply wasmtime-style ``-W`` options to ``base`` (default: :meth:`Limits.embedding`).

    Each item is ``name=value`` or several of them separated by commas, as
    wasmtime accepts (``-W timeout=5s,max-memory-size=64MiB``). Sizes take
    ``K``/``M``/``G`` (binary) suffixes, times ``ms``/``s``/``m``/``h``
    (seconds without one); ``none`` removes a bound. An unknown name or a bad
    value raises ValueError naming it.
    """
    changes: dict[str, Any] = {}
    for option in options:
        for item in option.split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, value = item.partition("=")
            name = name.strip().lower()
            if not sep:
                raise ValueError(f"-W {item}: expected name=value")
            if name not in _OPTIONS:
                known = ", ".join(sorted(_OPTIONS))
                raise ValueError(f"-W {name}: unknown option (known: {known})")
            attribute, parse = _OPTIONS[name]
            changes[attribute] = parse(value, f"-W {name}")
    return attrs.evolve(base if base is not None else Limits.embedding(), **changes)


def _show(attribute: str, value: Any) -> str:
    """``value`` of ``attribute`` as a ``-W`` value would spell it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "y" if value else "n"
    if attribute == "timeout":
        return f"{value:g}s"
    if _OPTIONS_BY_ATTRIBUTE[attribute][1] is _parse_size:
        for unit, scale in (("GiB", _GiB), ("MiB", _MiB), ("KiB", 1 << 10)):
            if value % scale == 0:
                return f"{value // scale}{unit}"
    return str(value)


# The first -W name of each attribute (aliases follow their main name).
_OPTIONS_BY_ATTRIBUTE: dict[str, tuple[str, Any]] = {}
for _name, (_attribute, _parse) in _OPTIONS.items():
    _OPTIONS_BY_ATTRIBUTE.setdefault(_attribute, (_name, _parse))


def w_option_help(base: Limits) -> str:
    """The ``-W`` options and their values in ``base``, for a command's ``--help``."""
    parts = [
        f"{name}={_show(attribute, getattr(base, attribute))}"
        for attribute, (name, _) in _OPTIONS_BY_ATTRIBUTE.items()
    ]
    return ", ".join(parts)


def add_w_argument(parser: Any, base: Limits) -> None:
    """Add the ``-W LIMIT=VALUE`` option to an argparse ``parser`` whose defaults are ``base``.

    ``run`` and ``serve`` both call this, so they accept the same names; read
    the options back with ``parse_w_options(ns.limits, base=base)``.
    """
    parser.add_argument(
        "-W",
        dest="limits",
        action="append",
        default=[],
        metavar="LIMIT=VALUE",
        help="a resource limit, as wasmtime names them (comma-separated or repeated; "
        "sizes take K/M/G, times ms/s/m/h, `none` removes a bound; see README "
        f"'Limits'); defaults here: {w_option_help(base)}",
    )
