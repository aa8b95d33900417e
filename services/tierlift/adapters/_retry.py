"""The retry loop of the backends that do not leave retrying to an SDK (the OpenAI-compatible
HTTP path, Gemini): bounded tries, waiting what the provider asked for (Retry-After and the
like), else exponential backoff with full jitter. A provider asking for a longer wait than
`MAX_RETRY_WAIT_S` is not waited for: the router falls back to another rung at once, which
serves the caller better than holding the request."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tierlift.adapters._backend import BackendError

MAX_RETRY_WAIT_S = 10.0
# 408 timeout, 409 conflict (OpenAI's lock contention), 429 rate limit, 5xx: worth another try
RETRYABLE_HTTP = frozenset({408, 409, 429, 500, 502, 503, 504, 529})

T = TypeVar("T")


def seconds(text: str | None) -> float | None:
    """A provider's delay in seconds, or None when it is not a finite non-negative number (an
    HTTP date, garbage, "nan", "-5")."""
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def backoff(attempt: int) -> float:
    """Full jitter over 0.25 s, 0.5 s, 1 s, ... capped at 4 s (attempt 0 is the first retry)."""
    return random.uniform(0, min(4.0, 0.25 * 2**attempt))


async def retrying(
    call: Callable[[], Awaitable[T]],
    max_retries: int,
    errors: tuple[type[Exception], ...],
    retry_in: Callable[[Exception, int], float | None],
    mapped: Callable[[Exception], BackendError],
) -> T:
    """`call()` until it succeeds or `max_retries` retries are spent. An exception of `errors`
    is retried after `retry_in(exc, attempt)` seconds (None: not worth retrying); the last one,
    or one not worth retrying, is raised as `mapped(exc)`."""
    for attempt in range(max_retries + 1):
        try:
            return await call()
        except errors as exc:
            wait = retry_in(exc, attempt)
            if wait is None or attempt == max_retries or wait > MAX_RETRY_WAIT_S:
                raise mapped(exc) from exc
            await asyncio.sleep(wait)
    raise AssertionError("unreachable: the last attempt raises")
