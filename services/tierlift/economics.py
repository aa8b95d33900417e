"""Self-host or API? From a workload's monthly token volume and the catalog's prices: the
monthly cost on every model, the GPUs a self-hosted model needs for the volume (never fewer
than two, for redundancy), an operations line the user sets, the crossover volume, and a
recommendation with its reasons. All money is Decimal; `tierlift advise` prints it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

from tierlift.core import money
from tierlift.core.catalog import Catalog, Model

HOURS_PER_MONTH = Decimal(730)
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
MIN_GPUS = 2  # one can fail or be drained without an outage


@dataclass(frozen=True)
class Volume:
    input_tokens: int  # per month
    output_tokens: int
    peak_factor: Decimal = Decimal(3)  # peak hour rate / average rate: capacity is sized for the peak


@dataclass(frozen=True)
class Ops:
    hours_per_month: Decimal = Decimal(20)  # on-call, upgrades, capacity work for a GPU fleet
    usd_per_hour: Decimal = Decimal(100)

    @property
    def monthly(self) -> Decimal:
        return self.hours_per_month * self.usd_per_hour


@dataclass(frozen=True)
class Option:
    model: str
    tier: str
    monthly_usd: Decimal
    gpus: int = 0  # self-hosted only
    breakdown: str = ""


@dataclass(frozen=True)
class Advice:
    options: list[Option]
    crossover_tokens_per_month: Decimal | None  # total tokens at which self-hosting costs the same as the API
    recommendation: str
    reasons: list[str] = field(default_factory=list)


def api_monthly(model: Model, volume: Volume) -> Decimal:
    return model.cost(volume.input_tokens, volume.output_tokens)


def gpus_needed(model: Model, volume: Volume) -> int:
    assert model.price.self_hosted is not None
    sh = model.price.self_hosted
    peak_in = Decimal(volume.input_tokens) / SECONDS_PER_MONTH * volume.peak_factor
    peak_out = Decimal(volume.output_tokens) / SECONDS_PER_MONTH * volume.peak_factor
    # prefill and decode share the GPU: the busy fractions add up
    busy = peak_in / sh.input_tokens_per_s + peak_out / sh.output_tokens_per_s
    return max(MIN_GPUS, math.ceil(busy))


def self_hosted_monthly(model: Model, gpus: int, ops: Ops) -> Decimal:
    assert model.price.self_hosted is not None
    return gpus * model.price.self_hosted.hourly_usd * HOURS_PER_MONTH + ops.monthly


def _crossover(model: Model, api: Model, volume: Volume, ops: Ops) -> Decimal | None:
    """Smallest total monthly volume (at this workload's input/output mix) where self-hosting
    `model` costs no more than calling `api`."""
    total = volume.input_tokens + volume.output_tokens
    if total == 0:
        return None
    in_share = Decimal(volume.input_tokens) / total
    api_per_token = (
        in_share * api.price.input_per_million + (1 - in_share) * api.price.output_per_million
    ) / money.MILLION
    if api_per_token == 0:
        return None
    for gpus in range(MIN_GPUS, 10_000):
        at_cost_parity = self_hosted_monthly(model, gpus, ops) / api_per_token
        mix = Volume(int(at_cost_parity * in_share), int(at_cost_parity * (1 - in_share)), volume.peak_factor)
        if gpus_needed(model, mix) <= gpus:
            return at_cost_parity.quantize(Decimal(1))
    return None


def advise(catalog: Catalog, volume: Volume, ops: Ops) -> Advice:
    options: list[Option] = []
    for m in catalog.models:
        if m.price.self_hosted is not None:
            gpus = gpus_needed(m, volume)
            cost = self_hosted_monthly(m, gpus, ops)
            breakdown = (f"{gpus} GPU x {m.price.self_hosted.hourly_usd} USD/h x {HOURS_PER_MONTH} h "
                         f"+ ops {ops.hours_per_month} h x {ops.usd_per_hour} USD")  # fmt: skip
            options.append(Option(m.id, m.tier, money.quantize(cost), gpus, breakdown))
        else:
            options.append(Option(m.id, m.tier, money.quantize(api_monthly(m, volume)), 0, "tokens x list price"))
    options.sort(key=lambda o: o.monthly_usd)
    api_options = [o for o in options if o.gpus == 0]
    self_options = [o for o in options if o.gpus]
    if not api_options or not self_options:
        return Advice(options, None, options[0].model if options else "", ["only one kind of option in the catalog"])
    best_api, best_self = api_options[0], self_options[0]
    api_model, self_model = catalog.get(best_api.model), catalog.get(best_self.model)
    assert api_model is not None and self_model is not None
    crossover = _crossover(self_model, api_model, volume, ops)
    reasons = [
        f"cheapest API: {best_api.model} at {best_api.monthly_usd:.2f} USD/month",
        f"cheapest self-hosted: {best_self.model} on {best_self.gpus} GPUs at {best_self.monthly_usd:.2f} USD/month "
        f"({best_self.breakdown})",
    ]
    if crossover is not None:
        volume_now = volume.input_tokens + volume.output_tokens
        reasons.append(f"self-hosting {best_self.model} pays from {crossover:,} tokens/month against {best_api.model}; "
                       f"this workload uses {volume_now:,}")  # fmt: skip
    if best_self.monthly_usd < best_api.monthly_usd:
        recommendation = f"self-host {best_self.model}"
    else:
        recommendation = f"use the API ({best_api.model})"
    reasons.append("quality is not compared here: check the tiers' accuracy for this workload (tierlift eval)")
    return Advice(options, crossover, recommendation, reasons)
