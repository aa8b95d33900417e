"""Turns an answer's confidence signals into a score in [0, 1].

v1: the geometric-mean token probability, discounted by the share of low-probability tokens.
Backends without logprobs get the tier's prior (its expected quality)."""

from __future__ import annotations

import math

from switchyard.v1 import common_pb2


def score(signals: common_pb2.ConfidenceSignals, prior: float) -> float:
    if not signals.has_logprobs or signals.token_count == 0:
        return prior
    geometric_mean = math.exp(signals.mean_logprob)
    return max(0.0, min(1.0, geometric_mean * (1.0 - 0.5 * signals.low_prob_token_share)))
