"""The adapters' metrics: each adapter is the GenAI client that calls a provider, so the GenAI
semantic conventions' client durations are measured here (tokens are counted once, by the router,
which knows each attempt's tier)."""

from __future__ import annotations

import grpc
from opentelemetry import metrics

_meter = metrics.get_meter("tierlift.adapters")
operation_duration = _meter.create_histogram(
    "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration (a call to the provider)"
)
time_to_first_chunk = _meter.create_histogram(
    "gen_ai.client.operation.time_to_first_chunk",
    unit="s",
    description="Time from the streaming call to its first chunk (streaming calls only)",
)


def attributes(provider: str, model: str, error: grpc.StatusCode | None = None) -> dict[str, str]:
    labels = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model}
    if error is None:
        labels["gen_ai.response.model"] = model
    else:
        labels["error.type"] = error.name
    return labels
