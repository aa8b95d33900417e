"""Turns an answer's confidence signals into the probability that the answer is acceptable.

Signals: the answering model's token logprobs (mean, minimum, share of low-probability
tokens, length) and the prior for that rung (the classifier's learned P(small model suffices)
on the open tiers, the tier's expected quality above them). With a fitted `ConfidenceModel`
(logistic regression over those features, written into the policy by `tierlift calibrate`)
the score is a calibrated probability; without one it is the v1 heuristic: the geometric-mean
token probability discounted by the share of low-probability tokens. Backends without
logprobs get the prior."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tierlift.v1 import common_pb2


@dataclass(frozen=True)
class Features:
    has_logprobs: bool
    mean_logprob: float
    min_logprob: float
    low_prob_share: float
    tokens: int
    prior: float

    @classmethod
    def from_signals(cls, signals: common_pb2.ConfidenceSignals, prior: float) -> Features:
        has = signals.has_logprobs and signals.token_count > 0
        return cls(
            has, signals.mean_logprob, signals.min_logprob, signals.low_prob_token_share, signals.token_count, prior
        )

    def vector(self) -> tuple[float, ...]:
        return (
            self.mean_logprob,
            max(self.min_logprob, -20.0),
            self.low_prob_share,
            math.log1p(self.tokens),
            self.prior,
        )

    def raw_score(self) -> float:
        if not self.has_logprobs:
            return self.prior
        return max(0.0, min(1.0, math.exp(self.mean_logprob) * (1.0 - 0.5 * self.low_prob_share)))


FEATURE_NAMES = ("mean_logprob", "min_logprob", "low_prob_share", "log_tokens", "prior")


@dataclass(frozen=True)
class ConfidenceModel:
    """Fitted on one model's answers; logprobs of other models mean other things, so it scores
    only the models in `models` (the others keep the heuristic)."""

    weights: tuple[float, ...]
    bias: float
    models: tuple[str, ...]
    fitted_on: str = ""

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURE_NAMES):
            raise ValueError(f"confidence_model.weights: expected {len(FEATURE_NAMES)} numbers {FEATURE_NAMES}")

    def probability(self, f: Features) -> float:
        if not f.has_logprobs:
            return f.prior
        z = self.bias + sum(w * x for w, x in zip(self.weights, f.vector(), strict=True))
        return 1 / (1 + math.exp(-max(-50.0, min(50.0, z))))

    def describe(self) -> str:
        terms = ", ".join(f"{n} {w:+.3f}" for n, w in zip(FEATURE_NAMES, self.weights, strict=True))
        return (
            f"logistic({terms}, bias {self.bias:+.3f}) for {', '.join(self.models)}; "
            f"fitted on {self.fitted_on or 'unknown'}"
        )


def score(
    signals: common_pb2.ConfidenceSignals, prior: float, model_id: str, model: ConfidenceModel | None = None
) -> float:
    features = Features.from_signals(signals, prior)
    if model is not None and model_id in model.models:
        return model.probability(features)
    return features.raw_score()
