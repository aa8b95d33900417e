"""The comparison of two sides' usage per (UTC day, model): which lines match, which are missing
on either side, and by how many tokens and how much money they differ. Pure: no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

# A difference this small is the providers' rounding (OpenAI's float amounts, cents elsewhere).
ROUNDING_USD = Decimal("0.01")
MATCHED, DIFFERS = "matched", "differs"
MISSING_IN_LEDGER, MISSING_AT_PROVIDER = "missing_in_ledger", "missing_at_provider"
# a dated snapshot of a model: "gpt-4.1-mini-2025-04-14", "claude-haiku-4-5-20251001"
_DATED = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


class ReportError(Exception):
    """A provider's report could not be read: refused (the admin key), unreachable, malformed."""


@dataclass(frozen=True)
class DayUsage:
    """One side's use of one model on one UTC day. `input_tokens` counts every input token,
    cache reads and writes included (common.proto's Usage convention)."""

    day: date
    model: str  # the provider's own model name (the catalog's upstream_model)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    requests: int = 0
    cost_usd: Decimal = Decimal(0)

    def __add__(self, other: DayUsage) -> DayUsage:
        return replace(
            self,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            requests=self.requests + other.requests,
            cost_usd=self.cost_usd + other.cost_usd,
        )


@dataclass(frozen=True)
class Thresholds:
    max_diff_usd: Decimal = Decimal("0.50")  # a line whose money differs by more alerts
    max_diff_share: Decimal = Decimal("0.05")  # ... or by more than this share of its larger side


@dataclass(frozen=True)
class Line:
    day: date
    model: str
    status: str  # MATCHED, DIFFERS, MISSING_IN_LEDGER, MISSING_AT_PROVIDER
    provider: DayUsage | None
    ledger: DayUsage | None
    alert: bool

    def _side(self, which: DayUsage | None) -> DayUsage:
        return which or DayUsage(self.day, self.model)

    @property
    def diff_usd(self) -> Decimal:
        """Ledger minus provider: negative when the provider billed more than the ledger knows."""
        return self._side(self.ledger).cost_usd - self._side(self.provider).cost_usd

    @property
    def diff_tokens(self) -> dict[str, int]:
        p, led = self._side(self.provider), self._side(self.ledger)
        return {
            "input": led.input_tokens - p.input_tokens,
            "output": led.output_tokens - p.output_tokens,
            "cache_read": led.cache_read_tokens - p.cache_read_tokens,
        }

    @property
    def diff_share(self) -> Decimal:
        larger = max(self._side(self.provider).cost_usd, self._side(self.ledger).cost_usd)
        return abs(self.diff_usd) / larger if larger else Decimal(0)

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "model": self.model,
            "status": self.status,
            "alert": self.alert,
            "provider": _usage_json(self.provider),
            "ledger": _usage_json(self.ledger),
            "diff_usd": _usd(self.diff_usd),
            "diff_share": f"{self.diff_share:.4f}",
            "diff_tokens": self.diff_tokens,
        }


@dataclass(frozen=True)
class Reconciliation:
    provider: str
    first_day: date
    last_day: date
    thresholds: Thresholds
    lines: list[Line] = field(default_factory=list)

    @property
    def alerts(self) -> list[Line]:
        return [line for line in self.lines if line.alert]

    def total(self, side: str) -> Decimal:
        return sum((u.cost_usd for line in self.lines if (u := getattr(line, side)) is not None), Decimal(0))

    def counts(self) -> dict[str, int]:
        statuses = (MATCHED, DIFFERS, MISSING_IN_LEDGER, MISSING_AT_PROVIDER)
        return {s: sum(1 for line in self.lines if line.status == s) for s in statuses}

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "from": self.first_day.isoformat(),
            "to": self.last_day.isoformat(),
            "thresholds": {k: str(v) for k, v in vars(self.thresholds).items()},
            "provider_cost_usd": _usd(self.total("provider")),
            "ledger_cost_usd": _usd(self.total("ledger")),
            "counts": self.counts(),
            "alert": bool(self.alerts),
            "lines": [line.as_json() for line in self.lines],
        }


def _usd(amount: Decimal) -> str:
    """A decimal string without an exponent ("0.000000000000", not "0E-12")."""
    return format(amount, "f")


def _usage_json(usage: DayUsage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "requests": usage.requests,
        "cost_usd": _usd(usage.cost_usd),
    }


def model_name(reported: str, known: Iterable[str]) -> str:
    """The catalog's name for a model a provider reports: itself, or, for a dated snapshot of
    a catalogued model ("gpt-5-mini-2025-08-07"), the catalogued name ("gpt-5-mini")."""
    names = set(known)
    if reported in names:
        return reported
    undated = _DATED.sub("", reported)
    return undated if undated in names else reported


def summed(rows: Iterable[DayUsage]) -> dict[tuple[date, str], DayUsage]:
    """Rows of the same (day, model) added together."""
    out: dict[tuple[date, str], DayUsage] = {}
    for row in rows:
        key = (row.day, row.model)
        out[key] = out[key] + row if key in out else row
    return out


def _line(key: tuple[date, str], provider: DayUsage | None, ledger: DayUsage | None, limits: Thresholds) -> Line:
    line = Line(key[0], key[1], MATCHED, provider, ledger, alert=False)
    if provider is None:
        status = MISSING_IN_LEDGER if ledger is None else MISSING_AT_PROVIDER
    elif ledger is None:
        status = MISSING_IN_LEDGER
    elif any(line.diff_tokens.values()) or abs(line.diff_usd) > ROUNDING_USD:
        status = DIFFERS
    else:
        status = MATCHED
    money_off = abs(line.diff_usd) > ROUNDING_USD
    alert = money_off and (abs(line.diff_usd) > limits.max_diff_usd or line.diff_share > limits.max_diff_share)
    return replace(line, status=status, alert=alert)


def compare(
    provider_name: str,
    first_day: date,
    last_day: date,
    provider: Iterable[DayUsage],
    ledger: Iterable[DayUsage],
    limits: Thresholds,
) -> Reconciliation:
    """Each (day, model) either side used, from `first_day` to `last_day` (both included), in
    order; a line alerts when its money differs past either threshold. Tokens that differ make
    a line DIFFERS but alert only through the money they cost."""
    theirs: Mapping[tuple[date, str], DayUsage] = summed(p for p in provider if first_day <= p.day <= last_day)
    ours: Mapping[tuple[date, str], DayUsage] = summed(u for u in ledger if first_day <= u.day <= last_day)
    lines = [_line(key, theirs.get(key), ours.get(key), limits) for key in sorted(theirs.keys() | ours.keys())]
    return Reconciliation(provider_name, first_day, last_day, limits, lines)
