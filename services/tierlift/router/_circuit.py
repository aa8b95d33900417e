"""A circuit breaker per model on an adapter: after `threshold` consecutive faults the router stops
calling that model for `cooldown_s` (its rungs fail fast and the ladder moves on); then one
probe call is let through (half-open), and its outcome closes or re-opens the circuit.

Small and explicit rather than a library: the router decides what counts as a fault (gRPC
status codes of an unhealthy backend, not a bad request), and tests drive the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

# Statuses that say the backend is unhealthy; INVALID_ARGUMENT and friends are the request's fault.
BACKEND_FAULTS = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)


@dataclass
class CircuitBreaker:
    threshold: int = 5
    cooldown_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    probing: bool = field(default=False)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.cooldown_s else "open"

    def allow(self) -> bool:
        """May a call go through now? In half-open state only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self.probing:
            self.probing = True
            return True
        return False

    def record(self, code: grpc.StatusCode) -> None:
        self.probing = False
        if code not in BACKEND_FAULTS:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if self.failures >= self.threshold or self.opened_at is not None:
            self.opened_at = self.clock()
