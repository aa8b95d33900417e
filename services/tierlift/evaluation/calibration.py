"""`tierlift calibrate`: fits the router's confidence model (logistic regression over the
answer's logprob features and the learned prior) on graded answers, picks a workload's escalation
threshold for a target, and writes both into a policy file, which the routers then reload.

The graded answers come from `tierlift eval` on a public benchmark, or (`--from-ledger`) from the
organisation's own traffic: the workload's answers that a shadow judge compared with its
reference. The ledger's live answers are mostly those the router kept (it shadows the answer it
returns), so a fit from them learns the region above today's threshold best; where the workload
explores, the ledger adds the cheap model's judged answers on prompts the routing prior started
above it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from tierlift.classifier._model import LinearHead
from tierlift.core import yaml_edit
from tierlift.core.catalog import tier_name
from tierlift.evaluation.routing_fit import Prior, fit_from_prior, prompt_families, shipped_prior
from tierlift.router._confidence import ConfidenceModel, Features, score
from tierlift.router._policy import OPEN_TIERS, RoutingHead
from tierlift.router._policy_source import parse_policy
from tierlift.v1 import ledger_pb2


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

    document = yaml_edit.load(policy_path.read_text())  # edited in place: its comments stay
    confidence = {"weights": list(model.weights), "bias": model.bias, "models": list(model.models),
                  "fitted_on": model.fitted_on}  # fmt: skip
    yaml_edit.put(document, "confidence_model", confidence)
    yaml_edit.put(yaml_edit.block_map(document, "workloads"), workload, {
        "confidence_threshold": round(threshold, 4),
        "calibrated": f"{how}: escalates {escalated:.1%}, kept answers {kept_accuracy:.1%} accurate",
    })  # fmt: skip
    text = yaml_edit.dumped(document)
    parse_policy(text, str(policy_path))  # never write a policy the routers would refuse
    tmp = policy_path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(policy_path)
    return (
        f"{policy_path}: workload {workload} threshold {threshold:.4f} ({how}); "
        f"escalates {escalated:.1%}, kept answers {kept_accuracy:.1%} accurate\n{model.describe()}"
    )


def held_back(request_id: str, share: float) -> bool:
    """Whether a judged answer is in the held-back sample: by its request id, so a rerun on the same
    ledger holds back the same answers."""
    return int(hashlib.sha256(request_id.encode()).hexdigest()[:8], 16) / 2**32 < share


def _decisions(keep: list[bool], correct: list[bool]) -> dict[str, Any]:
    """How good a set of keep-or-escalate decisions is against the judged outcomes: a decision is
    right when it keeps a right answer or escalates a wrong one."""
    n = len(keep)
    kept = [c for k, c in zip(keep, correct, strict=True) if k]
    return {
        "decision_accuracy": round(sum(k == c for k, c in zip(keep, correct, strict=True)) / n, 4),
        "escalated_share": round(1 - len(kept) / n, 4),
        "kept_accuracy": round(sum(kept) / len(kept), 4) if kept else None,
        "wrong_answers_kept": sum(1 for c in kept if not c),
    }


def calibrate_from_ledger(
    judged: ledger_pb2.OutcomeList,
    policy_path: Path,
    out_path: Path,
    workload: str,
    max_escalation: float | None,
    keep_accuracy: float | None,
    held_share: float = 0.3,
) -> dict[str, Any]:
    """Refit the confidence model and the workload's threshold on the workload's own judged answers
    (the shadow judge's verdict as the label), write the result as a new policy version, and compare
    its decisions with the packaged policy's on the held-back answers."""
    model_id = judged.model
    rows = [a for a in judged.answers if a.signals.has_logprobs]
    if not rows:
        raise ValueError(
            f"workload {workload}: no judged answers with logprobs in the ledger for {model_id or 'any model'}"
        )
    correct = {a.request_id: a.score >= 0.5 for a in rows}
    train = [a for a in rows if not held_back(a.request_id, held_share)]
    test = [a for a in rows if held_back(a.request_id, held_share)]
    if len(test) < 10 or len(train) < 20:
        raise ValueError(f"workload {workload}: {len(rows)} judged answers are too few (needs 30 or more)")
    since = min(a.occurred_at for a in rows)[:10]
    head, head_report = fit_routing_head(train, test, correct, f"ledger: workload {workload} since {since}")
    # the confidence model reads the prior: on the open tiers the new head's, where it applies
    priors = {a.request_id: a.prior for a in rows}
    if head is not None:
        open_tiers = {tier_name(t) for t in OPEN_TIERS}  # where the router's prior is the learned router's
        for a in rows:
            if a.tier in open_tiers and (p := head.probability(a.prompt_form)) is not None:
                priors[a.request_id] = p
    features = {a.request_id: Features.from_signals(a.signals, priors[a.request_id]) for a in rows}
    model = fit([features[a.request_id] for a in train], [correct[a.request_id] for a in train], model_id,
                fitted_on=f"ledger: {len(train)} judged answers of workload {workload} since {since}")  # fmt: skip
    train_p = [model.probability(features[a.request_id]) for a in train]
    if max_escalation is not None:
        threshold, how = threshold_for_escalation(train_p, max_escalation), f"at most {max_escalation:.0%} escalations"
    else:
        assert keep_accuracy is not None
        train_ok = [correct[a.request_id] for a in train]
        threshold = threshold_for_accuracy(train_p, train_ok, keep_accuracy)
        how = f"answers kept >= {keep_accuracy:.0%} accurate"

    packaged = parse_policy(policy_path.read_text(), str(policy_path))
    packaged_threshold = packaged.threshold_for(workload)
    outcome = [correct[a.request_id] for a in test]
    before = [score(a.signals, a.prior, model_id, packaged.confidence_model) >= packaged_threshold for a in test]
    after = [model.probability(features[a.request_id]) >= threshold for a in test]

    document = yaml_edit.load(policy_path.read_text())  # its comments stay in the new version
    version = f"{document['version']}+{workload}-{datetime.now(UTC).strftime('%Y%m%d%H%M')}"
    document["version"] = version
    yaml_edit.put(document, "confidence_model", {"weights": list(model.weights), "bias": model.bias,
                                                 "models": [model_id], "fitted_on": model.fitted_on})  # fmt: skip
    calibrated = yaml_edit.block_map(yaml_edit.block_map(document, "workloads"), workload)
    yaml_edit.put(calibrated, "confidence_threshold", round(threshold, 4))
    yaml_edit.put(calibrated, "calibrated", f"from the ledger, {how} on {len(train)} judged answers")
    if head is not None:
        yaml_edit.put(calibrated, "routing_head", {
            "weights": list(head.weights), "bias": head.bias, "min_prior": head.min_prior, "fitted_on": head.fitted_on,
        })  # fmt: skip
    text = yaml_edit.dumped(document)
    parse_policy(text, str(out_path))  # never write a policy the routers would refuse
    out_path.write_text(text)
    return {
        "workload": workload, "model": model_id, "policy": str(out_path), "version": version,
        "judged_answers": len(rows), "trained_on": len(train), "held_back": len(test),
        "threshold": round(threshold, 4), "packaged_threshold": packaged_threshold,
        "confidence_model": model.describe(),
        "held_back_packaged": _decisions(before, outcome), "held_back_calibrated": _decisions(after, outcome),
        "routing_head": head_report,
    }  # fmt: skip


def fit_routing_head(
    train: list[ledger_pb2.JudgedAnswer],
    test: list[ledger_pb2.JudgedAnswer],
    correct: dict[str, bool],
    fitted_on: str,
    shipped: LinearHead | None = None,
) -> tuple[RoutingHead | None, dict[str, Any]]:
    """The workload's own routing head: the shipped classifier's routing head (or `shipped`)
    corrected by the workload's judged prompts (`routing_fit.fit_from_prior`: multiple-choice and
    other prompts weighing alike, how far it may depart chosen by cross-validation on the training
    answers), on whether the small model's answer agreed with the reference; its floor keeps the
    hardest 10% (of the training prompts) off the open tiers, as the packaged policy's does.
    Compared with the shipped head by AUROC on the held-back answers."""
    train = [a for a in train if a.prompt_form]
    test = [a for a in test if a.prompt_form]
    y = np.array([correct[a.request_id] for a in train], dtype=bool)
    if len(train) < 20 or len(test) < 10 or y.all() or not y.any():
        return None, {
            "fitted": False,
            "why": "needs 20 training and 10 held-back answers with prompt forms, both verdicts",
        }
    x = np.array([list(a.prompt_form) for a in train], dtype=np.float64)
    prior = shipped_prior(x.shape[1], shipped)
    families = prompt_families(x)
    fitted, strength = fit_from_prior(x, y, prior or Prior.zero(x.shape[1]), families)
    weights = tuple(float(w) for w in fitted.weights)
    train_p = 1 / (1 + np.exp(-(x @ fitted.weights + fitted.bias)))
    floor = round(float(np.percentile(train_p, 10)), 4)
    head = RoutingHead(weights, fitted.bias, floor, f"{fitted_on} ({len(train)} judged prompts)")
    report: dict[str, Any] = {
        "fitted": True,
        "trained_on": len(train),
        "held_back": len(test),
        "min_prior": head.min_prior,
        "started_from": "shipped prior" if prior is not None else "nothing (the shipped prior reads another form)",
        "strength": round(strength, 4),
        "families": {"multiple_choice": int(families.sum()), "other": int(len(families) - families.sum())},
    }
    outcome = [correct[a.request_id] for a in test]
    if len(set(outcome)) == 2:
        forms = np.array([list(a.prompt_form) for a in test])
        report["held_back_auroc_calibrated"] = round(
            float(roc_auc_score(outcome, [head.probability(f) for f in forms])), 4
        )
        if prior is not None:
            general = 1 / (1 + np.exp(-(forms @ prior.weights + prior.bias)))
            report["held_back_auroc_packaged"] = round(float(roc_auc_score(outcome, general)), 4)
    return head, report
