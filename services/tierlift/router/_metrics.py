"""The router's metrics (OpenTelemetry; exported by OTLP with the traces). Money here is a
float for dashboards only: the ledger holds the exact amounts."""

from __future__ import annotations

from opentelemetry import metrics

from tierlift.core import pricing
from tierlift.core.catalog import Catalog, tier_name
from tierlift.v1 import common_pb2, router_pb2

_meter = metrics.get_meter("tierlift.router")
requests = _meter.create_counter("tierlift.requests", description="Requests by outcome")
attempts = _meter.create_counter("tierlift.attempts", description="Model attempts by tier, model and outcome")
escalations = _meter.create_counter("tierlift.escalations", description="Escalations by the tier escalated from")
duration = _meter.create_histogram("tierlift.request.duration", unit="s", description="Router.Complete latency")
tokens = _meter.create_histogram(
    "gen_ai.client.token.usage", unit="{token}", description="Tokens per attempt (GenAI semantic conventions)"
)
tokens_by_kind = _meter.create_counter(
    "tierlift.tokens", unit="{token}", description="Tokens by the kind they are priced as (tierlift.core.pricing)"
)
cost = _meter.create_counter(
    "tierlift.cost", unit="USD", description="Cost by tier and model (approximate; the ledger holds the exact amounts)"
)
routed = _meter.create_counter(
    "tierlift.routed",
    description="Routing plans by data class, and whether any model may serve them (tierlift.refused)",
)
data_class_exclusions = _meter.create_counter(
    "tierlift.data_class.exclusions",
    description="Models kept off a request's ladder by its data class, by data class and the model's tier",
)
classifications = _meter.create_counter(
    "tierlift.classifications", description="Classifications by whether the router remembered them (tierlift.cached)"
)
policy_reloads = _meter.create_counter(
    "tierlift.policy.reloads", description="Policy file changes by result: applied, or rejected (the old one stays)"
)


def record_attempt(attempt: router_pb2.Attempt) -> None:
    tier = tier_name(attempt.tier)
    outcome = router_pb2.Outcome.Name(attempt.outcome).removeprefix("OUTCOME_")
    attempts.add(1, {"tierlift.tier": tier, "gen_ai.request.model": attempt.model, "tierlift.outcome": outcome})
    if attempt.outcome == router_pb2.OUTCOME_LOW_CONFIDENCE:
        escalations.add(1, {"tierlift.tier": tier})
    if attempt.outcome != router_pb2.OUTCOME_FAULT:
        base = {"tierlift.tier": tier, "gen_ai.request.model": attempt.model, "gen_ai.operation.name": "chat"}
        tokens.record(attempt.usage.input_tokens, {**base, "gen_ai.token.type": "input"})
        tokens.record(attempt.usage.output_tokens, {**base, "gen_ai.token.type": "output"})
        for kind, count in pricing.split(attempt.usage).items():
            if count:
                tokens_by_kind.add(count, {**base, "tierlift.token.kind": kind})
        cost.add(float(attempt.cost_usd or 0), {"tierlift.tier": tier, "gen_ai.request.model": attempt.model})


def record_request(outcome: str, seconds: float) -> None:
    requests.add(1, {"tierlift.outcome": outcome})
    duration.record(seconds, {"tierlift.outcome": outcome})


def record_plan(plan: router_pb2.RoutingPlan, catalog: Catalog) -> None:
    """A routing plan: its data class, whether it was refused (an empty ladder), and the models its
    data class kept off the ladder, by their tier."""
    data_class = common_pb2.DataClass.Name(plan.classification.data_class).removeprefix("DATA_CLASS_")
    routed.add(1, {"tierlift.data_class": data_class, "tierlift.refused": not plan.ladder})
    for excluded in plan.excluded:
        if excluded.reason.startswith("data class "):
            model = catalog.get(excluded.model)
            labels = {"tierlift.data_class": data_class, "tierlift.tier": model.tier if model else ""}
            data_class_exclusions.add(1, labels)
