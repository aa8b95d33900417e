"""The router's metrics (OpenTelemetry; exported by OTLP with the traces). Money here is a
float for dashboards only: the ledger holds the exact amounts."""

from __future__ import annotations

from opentelemetry import metrics

from switchyard.core.catalog import tier_name
from switchyard.v1 import router_pb2

_meter = metrics.get_meter("switchyard.router")
requests = _meter.create_counter("switchyard.requests", description="Requests by outcome")
attempts = _meter.create_counter("switchyard.attempts", description="Model attempts by tier, model and outcome")
escalations = _meter.create_counter("switchyard.escalations", description="Escalations by the tier escalated from")
duration = _meter.create_histogram("switchyard.request.duration", unit="s", description="Router.Complete latency")
tokens = _meter.create_histogram(
    "gen_ai.client.token.usage", unit="{token}", description="Tokens per attempt (GenAI semantic conventions)"
)
cost = _meter.create_counter("switchyard.cost", unit="USD", description="Cost by tier (approximate; see the ledger)")
policy_reloads = _meter.create_counter(
    "switchyard.policy.reloads", description="Policy file changes by result: applied, or rejected (the old one stays)"
)


def record_attempt(attempt: router_pb2.Attempt) -> None:
    tier = tier_name(attempt.tier)
    outcome = router_pb2.Outcome.Name(attempt.outcome).removeprefix("OUTCOME_")
    attempts.add(1, {"switchyard.tier": tier, "gen_ai.request.model": attempt.model, "switchyard.outcome": outcome})
    if attempt.outcome == router_pb2.OUTCOME_LOW_CONFIDENCE:
        escalations.add(1, {"switchyard.tier": tier})
    if attempt.outcome != router_pb2.OUTCOME_FAULT:
        base = {"switchyard.tier": tier, "gen_ai.request.model": attempt.model, "gen_ai.operation.name": "chat"}
        tokens.record(attempt.usage.input_tokens, {**base, "gen_ai.token.type": "input"})
        tokens.record(attempt.usage.output_tokens, {**base, "gen_ai.token.type": "output"})
        cost.add(float(attempt.cost_usd), {"switchyard.tier": tier})


def record_request(outcome: str, seconds: float) -> None:
    requests.add(1, {"switchyard.outcome": outcome})
    duration.record(seconds, {"switchyard.outcome": outcome})
