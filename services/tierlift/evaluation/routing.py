"""How well the learned router's prior decides which prompts need the strong model.

Sending the prompts with the lowest P(small model suffices) to the strong model and the rest
to the weak one gives, for each share sent to the strong model, an accuracy: the cost/quality
curve. Random routing is the straight line between the two models' accuracies.

Where the prior abstains (no estimate: the router's neutral start), those prompts are routed at
random at the same rate: at a strong share s, the first s of the scored prompts by score and,
in expectation, s of the abstained ones go to the strong model. Abstaining on every prompt is
random routing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tierlift.evaluation.data import Outcome

TARGET_SHARE_OF_STRONG = 0.95


def routing_curve(
    scores: Sequence[float], outcomes: Sequence[Outcome], abstained: Sequence[bool] | None = None
) -> list[tuple[float, float]]:
    """(share of calls sent to the strong model, accuracy) from 0% to 100% strong."""
    n = len(outcomes)
    weak_all = np.array([o.weak_correct for o in outcomes], dtype=float)
    strong_all = np.array([o.strong_correct for o in outcomes], dtype=float)
    none = np.asarray(abstained, dtype=bool) if abstained is not None else np.zeros(n, dtype=bool)
    scored = np.flatnonzero(~none)
    order = scored[np.argsort(np.asarray(scores, dtype=float)[scored], kind="stable")]  # least likely fine first
    weak, strong = weak_all[order], strong_all[order]
    # accuracy with the first k scored prompts on the strong model: strong[:k].sum() + weak[k:].sum()
    gains = np.concatenate([[0.0], np.cumsum(strong - weak)])
    shares = np.arange(n + 1) / n
    k = np.rint(shares * len(order)).astype(int)
    random_part = weak_all[none].sum() + shares * (strong_all[none] - weak_all[none]).sum()
    accuracy = (weak.sum() + gains[k] + random_part) / n
    return [(float(s), float(a)) for s, a in zip(shares, accuracy, strict=True)]


def share_needed(curve: Sequence[tuple[float, float]], target_accuracy: float) -> float:
    """The smallest share of strong-model calls whose accuracy reaches `target_accuracy`."""
    return next((share for share, accuracy in curve if accuracy >= target_accuracy - 1e-12), 1.0)


def evaluate_routing(
    scores: Sequence[float], outcomes: Sequence[Outcome], abstained: Sequence[bool] | None = None
) -> dict[str, Any]:
    """The cost/quality curve and the strong share needed for 95% of the strong model's accuracy;
    `abstained` marks the prompts with no estimate (routed at random)."""
    if not outcomes:
        raise ValueError("no outcomes to evaluate")
    n = len(outcomes)
    weak_accuracy = sum(o.weak_correct for o in outcomes) / n
    strong_accuracy = sum(o.strong_correct for o in outcomes) / n
    target = TARGET_SHARE_OF_STRONG * strong_accuracy
    curve = routing_curve(scores, outcomes, abstained)
    if strong_accuracy > weak_accuracy:
        random_share = min(1.0, max(0.0, (target - weak_accuracy) / (strong_accuracy - weak_accuracy)))
    else:
        random_share = 0.0
    step = max(1, n // 100)
    return {
        "prompts": n,
        "weak_accuracy": round(weak_accuracy, 4),
        "strong_accuracy": round(strong_accuracy, 4),
        "target": f"{TARGET_SHARE_OF_STRONG:.0%} of the strong model's accuracy = {target:.4f}",
        "strong_share_needed": round(share_needed(curve, target), 4),
        "strong_share_needed_random_routing": round(random_share, 4),
        "accuracy_at_half_strong": round(curve[n // 2][1], 4),
        "abstained_share": round(float(np.mean(abstained)), 4) if abstained is not None else 0.0,
        "curve": [{"strong_share": round(s, 4), "accuracy": round(a, 4)} for s, a in [*curve[::step], curve[-1]]],
    }
