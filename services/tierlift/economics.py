"""Self-host or API? For a workload's volume and token mix: each API model's monthly cost, and
for each self-hosted model the replicas its peak rate needs (at least one), its hosting and
operations cost, and the crossover volume (tokens/day and requests/month at the workload's
mix) from which it costs less than the cheapest API model of at least its tier's quality.
All money is Decimal; `tierlift advise` prints it.

The arithmetic, for a self-hosted model on r replicas against an API model at p USD/token:
self-hosting costs r x hourly x 730 h + ops a month whatever the volume, and the API p x V for
V tokens; they are equal at V = (r x hourly x 730 + ops) / p, which holds only if r replicas
carry V at the peak rate; otherwise try r + 1. A replica whose full-load cost per token is
above p never pays, however large the volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from tierlift.core import money
from tierlift.core.catalog import Catalog, Model

HOURS_PER_MONTH = Decimal(730)
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
MIN_REPLICAS = 1  # redundancy is a choice: price it with --min-replicas
MAX_REPLICAS = 100_000


@dataclass(frozen=True)
class Workload:
    """A month of traffic: its tokens, its requests, and how far its peak hour exceeds the average."""

    input_tokens: int
    output_tokens: int
    requests: int
    peak_factor: Decimal = Decimal(3)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def tokens_per_day(self) -> Decimal:
        return Decimal(self.tokens) / DAYS_PER_MONTH

    @property
    def input_share(self) -> Decimal:
        return Decimal(self.input_tokens) / self.tokens if self.tokens else Decimal(0)

    @property
    def tokens_per_request(self) -> Decimal:
        return Decimal(self.tokens) / self.requests if self.requests else Decimal(0)

    def scaled_to(self, tokens_per_month: Decimal) -> Workload:
        """The same mix (input share, tokens per request, peak factor) at another volume."""
        share = self.input_share
        requests = int(tokens_per_month / self.tokens_per_request) if self.tokens_per_request else 0
        return Workload(int(tokens_per_month * share), int(tokens_per_month * (1 - share)), requests, self.peak_factor)


@dataclass(frozen=True)
class Ops:
    hours_per_month: Decimal = Decimal(20)  # on-call, upgrades, capacity work for a self-hosted fleet
    usd_per_hour: Decimal = Decimal(100)

    @property
    def monthly(self) -> Decimal:
        return self.hours_per_month * self.usd_per_hour


@dataclass(frozen=True)
class ApiOption:
    model: Model
    monthly_usd: Decimal


@dataclass(frozen=True)
class Crossover:
    tokens_per_day: Decimal
    requests_per_month: Decimal
    replicas: int  # what the fleet needs at that volume


@dataclass(frozen=True)
class SelfHostedOption:
    model: Model
    replicas: int
    hosting_usd: Decimal  # replicas x hourly x 730 h
    ops_usd: Decimal
    against: ApiOption | None  # the cheapest API model of at least this tier's quality
    crossover: Crossover | None  # None: never cheaper (or nothing to compare with)
    why_no_crossover: str = ""

    @property
    def monthly_usd(self) -> Decimal:
        return self.hosting_usd + self.ops_usd


@dataclass(frozen=True)
class Advice:
    api: list[ApiOption]
    self_hosted: list[SelfHostedOption]
    recommendation: str


def api_per_token(model: Model, input_share: Decimal) -> Decimal:
    """USD per token at the workload's mix of input and output tokens."""
    return (input_share * model.price.input_per_million + (1 - input_share) * model.price.output_per_million) / (
        money.MILLION
    )


def replicas_needed(model: Model, workload: Workload, minimum: int = MIN_REPLICAS) -> int:
    assert model.price.self_hosted is not None
    sh = model.price.self_hosted
    peak_in = Decimal(workload.input_tokens) / SECONDS_PER_MONTH * workload.peak_factor
    peak_out = Decimal(workload.output_tokens) / SECONDS_PER_MONTH * workload.peak_factor
    # prefill and decode share a replica: the busy fractions add up
    busy = peak_in / sh.input_tokens_per_s + peak_out / sh.output_tokens_per_s
    return max(minimum, math.ceil(busy))


def hosting_monthly(model: Model, replicas: int) -> Decimal:
    assert model.price.self_hosted is not None
    return replicas * model.price.self_hosted.hourly_usd * HOURS_PER_MONTH


def crossover(
    model: Model, api: Model, workload: Workload, ops: Ops, minimum: int = MIN_REPLICAS
) -> tuple[Crossover | None, str]:
    """The smallest volume at the workload's mix where self-hosting `model` costs no more than
    calling `api`; or None and the reason."""
    if not workload.tokens:
        return None, "no traffic measured: give --tokens-per-day"
    per_token = api_per_token(api, workload.input_share)
    full_load = _full_load_cost_per_token(model, workload)
    if full_load >= per_token:
        return None, (
            f"never: a fully used replica costs {full_load * money.MILLION:.4f} USD per 1M tokens, "
            f"{api.id} {per_token * money.MILLION:.4f}"
        )
    for replicas in range(minimum, MAX_REPLICAS):
        parity = (hosting_monthly(model, replicas) + ops.monthly) / per_token
        at_parity = workload.scaled_to(parity)
        if replicas_needed(model, at_parity, minimum) <= replicas:
            requests = parity / workload.tokens_per_request if workload.tokens_per_request else Decimal(0)
            return Crossover(parity / DAYS_PER_MONTH, requests, replicas), ""
    return None, f"not within {MAX_REPLICAS:,} replicas"


def _full_load_cost_per_token(model: Model, workload: Workload) -> Decimal:
    """USD per token of one replica busy at the peak rate all month, at the workload's mix."""
    assert model.price.self_hosted is not None
    sh = model.price.self_hosted
    share = workload.input_share
    seconds_per_token = share / sh.input_tokens_per_s + (1 - share) / sh.output_tokens_per_s
    tokens_per_month = SECONDS_PER_MONTH / seconds_per_token / workload.peak_factor
    return hosting_monthly(model, 1) / tokens_per_month


def advise(
    catalog: Catalog, workload: Workload, ops: Ops, tier_quality: dict[str, float], minimum: int = MIN_REPLICAS
) -> Advice:
    """`tier_quality` is the policy's expected quality per tier name (LOCAL, HOSTED_OPEN, ...).
    Embedding models answer no chat workload: they are neither options nor peers."""
    chat = [m for m in catalog.models if not m.capabilities.embeddings]
    api = sorted(
        (ApiOption(m, money.quantize(m.cost(workload.input_tokens, workload.output_tokens)))
         for m in chat if m.price.api is not None),
        key=lambda o: (o.monthly_usd, o.model.id),
    )  # fmt: skip
    options = []
    for m in chat:
        if m.price.self_hosted is None:
            continue
        replicas = replicas_needed(m, workload, minimum)
        peers = [o for o in api if tier_quality[o.model.tier] >= tier_quality[m.tier]]
        against = peers[0] if peers else None
        found, why = (
            crossover(m, against.model, workload, ops, minimum) if against else (None, "no API model to compare")
        )
        options.append(
            SelfHostedOption(m, replicas, money.quantize(hosting_monthly(m, replicas)), money.quantize(ops.monthly),
                             against, found, why)
        )  # fmt: skip
    return Advice(api, options, _recommend(api, options))


def _recommend(api: list[ApiOption], options: list[SelfHostedOption]) -> str:
    cheaper = [o for o in options if o.against is not None and o.monthly_usd < o.against.monthly_usd]
    if cheaper:
        best = min(cheaper, key=lambda o: o.monthly_usd)
        assert best.against is not None
        return f"self-host {best.model.id}: {best.monthly_usd:,.2f} USD/month against {best.against.monthly_usd:,.2f}"
    if api:
        return f"use the API: {api[0].model.id} at {api[0].monthly_usd:,.2f} USD/month; no self-hosted model pays yet"
    return "the catalog has no API model to compare with"
