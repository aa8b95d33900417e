"""Process entry for every service: run the async main, and turn start-up errors (bad
config, bad catalog, unmigrated database) into one clear line on stderr and exit code 2."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any


class StartupError(Exception):
    """The service cannot start; the message says why and what to change."""


def run_service(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        asyncio.run(main())
    except StartupError as exc:
        # Logging may not be configured yet, so write the reason plainly.
        sys.stderr.write(f"tierlift: {exc}\n")
        raise SystemExit(2) from None
