"""The learned router judged honestly: trained and scored by cross-validation where whole groups
are held out (MMLU subjects; whole sources), beside the random-row split that flatters a router
which learned topics. Each method is trained inside every fold on that fold's training rows only.

Methods: `embedding` (logistic regression on MiniLM embeddings: the recipe of the head shipped
until 2026-11), `form` (logistic regression on the prompt's form, classifier/_prompt_form.py),
`knn` (the share of "a small model suffices" among the 50 nearest training prompts by embedding
cosine, a RouteLLM-style similarity baseline), and `random` (the straight line between the two
models). The figure that matters is the share of calls sent to the strong model to keep 95% of
its accuracy, on rows of groups the method never saw."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, KFold
from sklearn.preprocessing import StandardScaler

from tierlift.classifier._prompt_form import prompt_forms
from tierlift.evaluation.data import Outcome
from tierlift.evaluation.routing import evaluate_routing

Method = Callable[[NDArray[np.int64], NDArray[np.int64]], NDArray[np.float64]]
FOLDS = 5
NEIGHBOURS = 50


def suffices(o: Outcome) -> bool:
    """The label the head learns: the small model's answer is as good as the strong one's."""
    return o.weak_correct or not o.strong_correct


def methods(embeddings: NDArray[np.float32], forms: NDArray[np.float32], y: NDArray[np.bool_]) -> dict[str, Method]:
    def embedding(train: NDArray[np.int64], test: NDArray[np.int64]) -> NDArray[np.float64]:
        model = LogisticRegression(C=0.5, max_iter=3000).fit(embeddings[train], y[train])
        return model.predict_proba(embeddings[test])[:, 1]

    def form(train: NDArray[np.int64], test: NDArray[np.int64]) -> NDArray[np.float64]:
        scaler = StandardScaler().fit(forms[train])
        model = LogisticRegression(C=1.0, max_iter=3000).fit(scaler.transform(forms[train]), y[train])
        return model.predict_proba(scaler.transform(forms[test]))[:, 1]

    def knn(train: NDArray[np.int64], test: NDArray[np.int64]) -> NDArray[np.float64]:
        similarity = embeddings[test] @ embeddings[train].T  # MiniLM vectors are unit length
        nearest = np.argpartition(-similarity, NEIGHBOURS, axis=1)[:, :NEIGHBOURS]
        return y[train][nearest].mean(axis=1).astype(np.float64)

    return {"embedding": embedding, "form": form, "knn": knn}


def _scored(name: str, scores: NDArray[np.float64], rows: Sequence[Outcome], y: NDArray[np.bool_]) -> dict[str, Any]:
    result = evaluate_routing(scores.tolist(), rows)
    return {
        "method": name,
        "strong_share_needed": result["strong_share_needed"],
        "strong_share_needed_random_routing": result["strong_share_needed_random_routing"],
        "auroc": round(float(roc_auc_score(y, scores)), 4) if 0 < y.sum() < len(y) else None,
        # calibration: the mean squared gap between the score and what happened (a constant at the
        # base rate scores base_rate x (1 - base_rate); lower is better)
        "brier": round(float(np.mean((scores - y) ** 2)), 4),
        "brier_base_rate": round(float(y.mean() * (1 - y.mean())), 4),
        "accuracy_at_half_strong": result["accuracy_at_half_strong"],
    }


def _cross_validated(
    splits: list[tuple[NDArray[np.int64], NDArray[np.int64]]], rows: Sequence[Outcome], y: NDArray[np.bool_],
    fitted: dict[str, Method],
) -> list[dict[str, Any]]:  # fmt: skip
    """Out-of-fold scores of every row covered by a test fold, pooled, per method."""
    tested = np.concatenate([test for _, test in splits])
    results = []
    for name, method in fitted.items():
        scores = np.zeros(len(rows))
        for train, test in splits:
            scores[test] = method(train, test)
        results.append(_scored(name, scores[tested], [rows[i] for i in tested], y[tested]))
    return results


def grouped_evaluation(rows: Sequence[Outcome], embeddings: NDArray[np.float32], seed: int = 7) -> dict[str, Any]:
    y = np.array([suffices(o) for o in rows])
    fitted = methods(embeddings, prompt_forms([o.prompt for o in rows]), y)
    index = np.arange(len(rows))
    mmlu = index[[o.source == "mmlu_outcomes" for o in rows]]
    subjects = np.array([rows[i].group for i in mmlu])
    sources = sorted({o.source for o in rows})
    report: dict[str, Any] = {
        "rows": len(rows), "subjects": len(set(subjects)), "sources": sources,
        "label": "a small model suffices: weak model right, or strong model wrong too",
    }  # fmt: skip
    random_rows = [(index[a], index[b]) for a, b in KFold(FOLDS, shuffle=True, random_state=seed).split(index)]
    report["random_rows"] = _cross_validated(random_rows, rows, y, fitted)
    by_subject = [(mmlu[a], mmlu[b]) for a, b in GroupKFold(FOLDS).split(mmlu, groups=subjects)]
    report["held_out_subjects"] = _cross_validated(by_subject, rows, y, fitted)
    per_source: dict[str, Any] = {}
    for held in sources:  # train on every other source, score the held-out one
        split = [(index[[o.source != held for o in rows]], index[[o.source == held for o in rows]])]
        per_source[held] = _cross_validated(split, rows, y, fitted)
    report["held_out_sources"] = per_source
    return report
