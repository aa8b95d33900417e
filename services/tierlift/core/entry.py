"""Process entry for every service: run the async main on uvloop, and turn start-up errors (bad
config, bad catalog, unmigrated database) into one clear line on stderr and exit code 2.

uvloop (libuv) makes the loop's own work cheaper: NATS, aiohttp and the loop's callbacks cost
less CPU per request (measured with `BENCH=profile make bench`, README). A service may keep
asyncio's loop where it measured slower (the classifier: see its main)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop


class StartupError(Exception):
    """The service cannot start; the message says why and what to change."""


def run_service(main: Callable[[], Coroutine[Any, Any, None]], on_uvloop: bool = True) -> None:
    os.umask(0o077)  # what a service creates (a SQLite ledger, its journal, state) is its own: 0600
    try:
        if on_uvloop:
            uvloop.run(main())
        else:
            asyncio.run(main())
    except StartupError as exc:
        # Logging may not be configured yet, so write the reason plainly.
        sys.stderr.write(f"tierlift: {exc}\n")
        raise SystemExit(2) from None


# per loop: the stops its signal handlers call
_ON_STOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Callable[[], object]]] = weakref.WeakKeyDictionary()


def on_stop_signals(stop: Callable[[], object]) -> None:
    """Call `stop` on SIGTERM or SIGINT. Every component's own stop, where one process hosts
    several (`tierlift serve`): the loop keeps one handler per signal, this one calls them all."""
    loop = asyncio.get_running_loop()
    stops = _ON_STOP.get(loop)
    if stops is None:
        stops = _ON_STOP[loop] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, _stop_all, stops)
    stops.append(stop)


def _stop_all(stops: list[Callable[[], object]]) -> None:
    for stop in stops:
        stop()
