"""`tierlift calibrate`: fits the router's confidence model (logistic regression over the
answer's logprob features and the learned prior) on graded answers from `tierlift eval`, picks
a workload's escalation threshold for a target, and writes both into a policy file, which the
routers then reload."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression

from tierlift.router._confidence import ConfidenceModel, Features
from tierlift.router._policy_source import parse_policy


def _graded(eval_path: Path) -> tuple[str, list[Features], list[bool]]:
    result = json.loads(eval_path.read_text())
    answers = result.get("answers")
    if not answers or not result.get("model"):
        raise ValueError(f"{eval_path}: no graded answers (is it the output of `tierlift eval`?)")
    names = Features.__dataclass_fields__.keys()
    features = [Features(**{k: a[k] for k in names}) for a in answers]
    return result["model"], features, [bool(a["correct"]) for a in answers]


def fit(features: list[Features], correct: list[bool], model_id: str, fitted_on: str) -> ConfidenceModel:
    usable = [(f, c) for f, c in zip(features, correct, strict=True) if f.has_logprobs]
    if len({c for _, c in usable}) < 2:
        raise ValueError("need both right and wrong answers with logprobs to fit a confidence model")
    x = np.array([f.vector() for f, _ in usable])
    model = LogisticRegression(C=1.0, max_iter=2000).fit(x, [c for _, c in usable])
    return ConfidenceModel(tuple(float(w) for w in model.coef_[0]), float(model.intercept_[0]), (model_id,), fitted_on)


def threshold_for_escalation(probabilities: list[float], max_escalation: float) -> float:
    """The highest threshold that escalates (probability < threshold) at most that share."""
    ordered = sorted(probabilities)
    k = int(max_escalation * len(ordered))
    return ordered[k] if k < len(ordered) else 1.0


def threshold_for_accuracy(probabilities: list[float], correct: list[bool], keep_accuracy: float) -> float:
    """The lowest threshold at which the answers kept (probability >= threshold) are that accurate."""
    pairs = sorted(zip(probabilities, correct, strict=True))
    for k in range(len(pairs)):
        kept = [c for _, c in pairs[k:]]
        if sum(kept) / len(kept) >= keep_accuracy:
            return pairs[k][0]
    return 1.0


def calibrate(
    eval_path: Path, policy_path: Path, workload: str, max_escalation: float | None, keep_accuracy: float | None
) -> str:
    model_id, features, correct = _graded(eval_path)
    model = fit(features, correct, model_id, fitted_on=f"{eval_path.name} ({len(features)} graded answers)")
    probabilities = [model.probability(f) for f in features]
    if max_escalation is not None:
        threshold = threshold_for_escalation(probabilities, max_escalation)
        how = f"at most {max_escalation:.0%} escalations on {eval_path.name}"
    else:
        assert keep_accuracy is not None
        threshold = threshold_for_accuracy(probabilities, correct, keep_accuracy)
        how = f"answers kept locally >= {keep_accuracy:.0%} accurate on {eval_path.name}"
    escalated = sum(p < threshold for p in probabilities) / len(probabilities)
    kept = [c for p, c in zip(probabilities, correct, strict=True) if p >= threshold]
    kept_accuracy = sum(kept) / len(kept) if kept else 1.0

    document = yaml.safe_load(policy_path.read_text())
    document["confidence_model"] = {
        "weights": list(model.weights),
        "bias": model.bias,
        "models": list(model.models),
        "fitted_on": model.fitted_on,
    }
    document.setdefault("workloads", {})[workload] = {
        "confidence_threshold": round(threshold, 4),
        "calibrated": f"{how}: escalates {escalated:.1%}, kept answers {kept_accuracy:.1%} accurate",
    }
    text = yaml.safe_dump(document, sort_keys=False)
    parse_policy(text, str(policy_path))  # never write a policy the routers would refuse
    tmp = policy_path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(policy_path)
    return (
        f"{policy_path}: workload {workload} threshold {threshold:.4f} ({how}); "
        f"escalates {escalated:.1%}, kept answers {kept_accuracy:.1%} accurate\n{model.describe()}"
    )
