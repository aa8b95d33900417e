"""The assessor's OpenTelemetry metrics."""

from __future__ import annotations

from opentelemetry import metrics

_meter = metrics.get_meter("tierlift.assessor")
judged = _meter.create_counter("tierlift.assessor.judged", description="Shadow runs judged, by method and verdict")
alerts = _meter.create_counter(
    "tierlift.quality.alerts", description="Quality alerts raised (drift or golden set), by workload and model"
)
