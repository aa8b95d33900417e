"""Drift per model path (workload x live model): a rolling window of judged scores. The first
full window is the path's baseline; an alert fires when the window's agreement falls below the
floor, or more than `max_drop` (relative) below the baseline, and fires again only after the path
has recovered. The alert names the path, the numbers and the window."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from tierlift.v1 import events_pb2


@dataclass
class _Path:
    scores: deque[float]
    baseline: float | None = None
    alerting: bool = False


@dataclass
class DriftWatch:
    window: int = 50
    floor: float = 0.6  # agreement below this over a full window is an alert, baseline or not
    max_drop: float = 0.05  # relative fall from the baseline that is an alert
    _paths: dict[tuple[str, str], _Path] = field(default_factory=dict)

    def add(self, workload: str, model: str, score: float) -> events_pb2.QualityAlert | None:
        path = self._paths.setdefault((workload, model), _Path(deque(maxlen=self.window)))
        path.scores.append(score)
        if len(path.scores) < self.window:
            return None
        observed = sum(path.scores) / len(path.scores)
        if path.baseline is None:
            path.baseline = observed
        reasons = []
        if observed < self.floor:
            reasons.append(f"agreement {observed:.1%} is below the floor of {self.floor:.0%}")
        if observed < path.baseline * (1 - self.max_drop):
            reasons.append(f"agreement fell from {path.baseline:.1%} to {observed:.1%}, more than {self.max_drop:.0%}")
        if not reasons:
            path.alerting = False
            return None
        if path.alerting:
            return None
        path.alerting = True
        return events_pb2.QualityAlert(
            workload=workload, model=model, reason="; ".join(reasons) + f" over the last {self.window} judged requests",
            observed=observed, baseline=path.baseline, window=self.window,
        )  # fmt: skip
