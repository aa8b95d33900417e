"""Fair share between tenants: each tenant's concurrent requests, requests per second and prompt
tokens per minute are capped (limits from the policy, per router replica: with N replicas behind
a balancer a tenant gets up to N times them). A request over a limit is refused at once with
RESOURCE_EXHAUSTED and the seconds to wait, before it costs the classifier or a model anything,
so one tenant's burst of huge prompts cannot starve the others."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TenantLimits:
    concurrent: int = 0  # requests in flight; 0 = no limit
    requests_per_s: float = 0.0
    prompt_tokens_per_minute: int = 0


@dataclass
class _Bucket:
    """A token bucket: `rate` per second, holding at most `burst`."""

    rate: float
    burst: float
    level: float
    stamp: float

    def take(self, amount: float, now: float) -> float:
        """Take `amount` if there is enough (a request larger than the whole bucket goes through
        when it is full, and leaves it in debt); else the seconds until there is."""
        self.level = min(self.burst, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        needed = min(amount, self.burst)
        if needed <= self.level:
            self.level -= amount
            return 0.0
        return (needed - self.level) / self.rate


@dataclass
class _Tenant:
    in_flight: int = 0
    requests: _Bucket | None = None
    tokens: _Bucket | None = None


class OverLimit(Exception):
    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class FairShare:
    default: TenantLimits = field(default_factory=TenantLimits)
    tenants: dict[str, TenantLimits] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    _state: dict[str, _Tenant] = field(default_factory=dict)

    def limits_for(self, tenant: str) -> TenantLimits:
        return self.tenants.get(tenant, self.default)

    def admit(self, tenant: str, prompt_tokens: int) -> None:
        """Count a request in, or raise OverLimit; a request admitted must be `release`d."""
        limits, now = self.limits_for(tenant), self.clock()
        state = self._state.setdefault(tenant, _Tenant())
        if limits.concurrent and state.in_flight >= limits.concurrent:
            raise OverLimit(f"tenant {tenant!r} has {state.in_flight} requests in flight, its limit", 1.0)
        if limits.requests_per_s:
            state.requests = state.requests or _Bucket(
                limits.requests_per_s, max(1.0, limits.requests_per_s), max(1.0, limits.requests_per_s), now
            )
            if wait := state.requests.take(1, now):
                raise OverLimit(f"tenant {tenant!r} is over {limits.requests_per_s:g} requests/s", wait)
        if limits.prompt_tokens_per_minute:
            per_s = limits.prompt_tokens_per_minute / 60
            state.tokens = state.tokens or _Bucket(
                per_s, limits.prompt_tokens_per_minute, limits.prompt_tokens_per_minute, now
            )
            if wait := state.tokens.take(prompt_tokens, now):
                raise OverLimit(
                    f"tenant {tenant!r} is over {limits.prompt_tokens_per_minute:,} prompt tokens/minute", wait
                )
        state.in_flight += 1

    def release(self, tenant: str) -> None:
        state = self._state.get(tenant)
        if state is not None and state.in_flight > 0:
            state.in_flight -= 1
