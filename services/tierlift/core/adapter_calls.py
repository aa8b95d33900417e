"""Whether a failed adapter call may have been billed by its provider.

An adapter marks each call as it takes it (initial metadata, sent before the provider is
called) and, from then on, every status it ends the call with itself (trailing metadata): a
provider's error, a refusal, a request it could not take. Those calls are not billed. A failed
call that the adapter took and did not end itself (its process was killed, the connection broke)
may have reached the provider and been billed: its outcome is unknown, and the router bills it at
its worst case, `unsettled`, for reconciliation with the provider's own bill
(router/_attempts.py). A call the adapter never took (nothing listening, the connection refused)
reached no provider and costs nothing.

A call its caller ended (the router's attempt timeout passed, or a stream's caller left) was
cancelled at the adapter too, which cancels the provider's request: it is closed at no cost, as
providers do not bill a request cut before its response. That is the one case billed on an
assumption rather than a record. (A caller of the router whose deadline passes or who cancels
does not end the provider call: the router lets it finish and bills it, router/_ladder.py.)
"""

from __future__ import annotations

from typing import Any

import grpc

TAKEN = ("tierlift-adapter-call", "taken")
ENDED_BY_ADAPTER = ("tierlift-adapter-status", "own")


async def take(context: Any) -> None:
    """Called by the adapter first thing in each provider-calling RPC."""
    context.set_trailing_metadata((ENDED_BY_ADAPTER,))
    await context.send_initial_metadata((TAKEN,))


def _has(metadata: Any, pair: tuple[str, str]) -> bool:
    return any((key, value) == pair for key, value in (metadata or ()))


_CALLER_ENDED = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)


def outcome_unknown(exc: grpc.aio.AioRpcError) -> bool:
    """The adapter took the call, and it failed, not by the caller's hand, without a status of the
    adapter's own."""
    if exc.code() in _CALLER_ENDED or not _has(exc.initial_metadata(), TAKEN):
        return False
    return not _has(exc.trailing_metadata(), ENDED_BY_ADAPTER)
