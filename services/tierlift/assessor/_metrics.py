"""The assessor's OpenTelemetry metrics."""

from __future__ import annotations

from opentelemetry import metrics

from tierlift.v1 import events_pb2

_meter = metrics.get_meter("tierlift.assessor")
judged = _meter.create_counter("tierlift.assessor.judged", description="Shadow runs judged, by method and verdict")
alerts = _meter.create_counter(
    "tierlift.quality.alerts", description="Quality alerts raised (drift or golden set), by workload and model"
)
rollout_percent = _meter.create_gauge(
    "tierlift.rollout.percent", unit="%", description="Percent of a rollout's workload on its candidate (0: shadow)"
)
rollout_stage = _meter.create_gauge("tierlift.rollout.stage", description="A rollout's stage index (from 0)")
rollout_status = _meter.create_gauge(
    "tierlift.rollout.status", description="1 for a rollout's current status (tierlift.rollout.status), else 0"
)
STATUSES = ("running", "paused", "completed", "rolled_back", "aborted")


def record_rollout(state: events_pb2.RolloutState) -> None:
    """A rollout's latest state, as the assessor learns it."""
    labels = {
        "tierlift.rollout.id": state.rollout_id,
        "tierlift.workload": state.workload,
        "tierlift.rollout.candidate": state.to_model or state.candidate_policy_version,
    }
    stages = list(state.stages)
    percent = stages[state.stage_index] if state.stage_index < len(stages) else 0
    rollout_percent.set(percent, labels)
    rollout_stage.set(state.stage_index, labels)
    for status in STATUSES:
        rollout_status.set(1 if status == state.status else 0, {**labels, "tierlift.rollout.status": status})
