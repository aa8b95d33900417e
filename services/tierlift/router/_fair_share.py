"""Fair share between tenants (and between the API keys the policy names): each one's concurrent
requests, requests per second and prompt tokens per minute are capped (limits from the policy,
per router replica: with N replicas behind a balancer a tenant gets up to N times them). A
request over a limit is refused at once with RESOURCE_EXHAUSTED and the seconds to wait, before
it costs the classifier or a model anything, so one tenant's burst of huge prompts cannot
starve the others."""

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
    """Limits per tenant (`default` unless `tenants` names it) and, for the API keys `keys`
    names, per key as well: a request is admitted only when both have room."""

    default: TenantLimits = field(default_factory=TenantLimits)
    tenants: dict[str, TenantLimits] = field(default_factory=dict)
    keys: dict[str, TenantLimits] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    _state: dict[str, _Tenant] = field(default_factory=dict)

    def limits_for(self, tenant: str) -> TenantLimits:
        return self.tenants.get(tenant, self.default)

    def _scopes(self, tenant: str, key_id: str) -> list[tuple[str, str, TenantLimits]]:
        scopes = [(f"tenant:{tenant}", f"tenant {tenant!r}", self.limits_for(tenant))]
        if key_id in self.keys:
            scopes.append((f"key:{key_id}", f"API key {key_id!r}", self.keys[key_id]))
        return scopes

    def admit(self, tenant: str, prompt_tokens: int, key_id: str = "") -> None:
        """Count a request in, or raise OverLimit; a request admitted must be `release`d."""
        now = self.clock()
        scopes = self._scopes(tenant, key_id)
        for name, label, limits in scopes:
            self._check(self._state.setdefault(name, _Tenant()), label, limits, prompt_tokens, now)
        for name, _, _ in scopes:
            self._state[name].in_flight += 1

    @staticmethod
    def _check(state: _Tenant, label: str, limits: TenantLimits, prompt_tokens: int, now: float) -> None:
        if limits.concurrent and state.in_flight >= limits.concurrent:
            raise OverLimit(f"{label} has {state.in_flight} requests in flight, its limit", 1.0)
        if limits.requests_per_s:
            state.requests = state.requests or _Bucket(
                limits.requests_per_s, max(1.0, limits.requests_per_s), max(1.0, limits.requests_per_s), now
            )
            if wait := state.requests.take(1, now):
                raise OverLimit(f"{label} is over {limits.requests_per_s:g} requests/s", wait)
        if limits.prompt_tokens_per_minute:
            per_s = limits.prompt_tokens_per_minute / 60
            state.tokens = state.tokens or _Bucket(
                per_s, limits.prompt_tokens_per_minute, limits.prompt_tokens_per_minute, now
            )
            if wait := state.tokens.take(prompt_tokens, now):
                raise OverLimit(f"{label} is over {limits.prompt_tokens_per_minute:,} prompt tokens/minute", wait)

    def release(self, tenant: str, key_id: str = "") -> None:
        for name, _, _ in self._scopes(tenant, key_id):
            state = self._state.get(name)
            if state is not None and state.in_flight > 0:
                state.in_flight -= 1
