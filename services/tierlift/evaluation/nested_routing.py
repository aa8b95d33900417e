"""The routing prior's recipe chosen and judged by nested grouped cross-validation
(`tierlift eval-routing --nested`): which form features, which regularisation C, and where the
prior abstains (no estimate: the router's neutral start) on prompts unlike its training prompts.

Groups are MMLU subjects, and GSM8K as a source of its own. Outer folds: five by subject (GSM8K
in training) and one with GSM8K held out (trained on MMLU alone). Inside each outer fold's
training rows the same folds are made again (inner folds), every candidate is scored on them,
and the candidate whose worst inner fold needs the smallest strong share relative to random
routing is chosen (ties: the lower mean); the outer fold, never looked at, then gives the figure.
Abstaining on every prompt is a candidate, and it equals random routing.

Abstention is by distance in the classifier's static embedding space: 1 - the cosine similarity
to the nearest of `CENTROIDS` k-means centroids of the training prompts; the prior abstains
beyond a quantile of the training prompts' own distances. The loosest quantile is 0.99, not
"never": grouped folds cannot measure a prompt farther from every training prompt than the
data's own, so the farthest 1% of that distribution is always left to the neutral start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.cluster import MiniBatchKMeans
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from tierlift.classifier._model import RoutingSupport
from tierlift.classifier._prompt_form import NAMES
from tierlift.evaluation.data import Outcome
from tierlift.evaluation.grouped_routing import suffices
from tierlift.evaluation.routing import evaluate_routing

CENTROIDS = 200
SUBJECT_FOLDS = 5
_LENGTH = {"log_chars", "log_words", "log_lines", "log_option_chars", "log_stem_chars", "log_sentences"}
_NUMBERS = {"digit_share", "log_numbers", "log_largest_number", "decimals", "operators"}
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "all": NAMES,
    "no_length": tuple(n for n in NAMES if n not in _LENGTH),
    "no_length_numbers": tuple(n for n in NAMES if n not in _LENGTH | _NUMBERS),
}
CS = (0.01, 1.0)
QUANTILES = (0.99, 0.95, 0.9, 0.75, 0.5, 0.0)  # abstain beyond this quantile of training distances; 0: always
Index = NDArray[np.int64]


@dataclass(frozen=True)
class Candidate:
    features: str
    c: float
    quantile: float

    def name(self) -> str:
        return f"features={self.features} C={self.c} abstain_quantile={self.quantile}"


CANDIDATES = [Candidate(f, c, q) for f in FEATURE_SETS for c in CS for q in QUANTILES]


def fit_support(embeddings: NDArray[np.float32], quantile: float, seed: int = 0, chosen: str = "") -> RoutingSupport:
    """Centroids of unit `embeddings` and the distance beyond which the prior abstains."""
    k = min(CENTROIDS, len(embeddings))
    km = MiniBatchKMeans(k, random_state=seed, n_init=1, batch_size=2048).fit(embeddings)
    centroids = km.cluster_centers_ / (np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True) + 1e-12)
    support = RoutingSupport(centroids.astype(np.float32), 0.0, chosen)
    distances = support.distances(embeddings)
    max_distance = -1.0 if quantile <= 0 else float(np.quantile(distances, quantile))
    return RoutingSupport(support.centroids, max_distance, chosen)


def fit_head(
    forms: NDArray[np.float32], y: NDArray[np.bool_], features: str, c: float
) -> tuple[NDArray[np.float64], float]:
    """Logistic regression on the named features, standardised, folded back onto all of `NAMES`
    (zero weight for a feature left out): (weights, bias) on the raw form vector."""
    columns = [NAMES.index(n) for n in FEATURE_SETS[features]]
    scaler = StandardScaler().fit(forms[:, columns])
    model = LogisticRegression(C=c, max_iter=3000).fit(scaler.transform(forms[:, columns]), y)
    weights = np.zeros(len(NAMES))
    weights[columns] = model.coef_[0] / scaler.scale_
    bias = float(model.intercept_[0] - (scaler.mean_ / scaler.scale_) @ model.coef_[0])
    return weights, bias


def grouped_folds(index: Index, rows: list[Outcome]) -> list[tuple[Index, Index]]:
    """Folds by MMLU subject (other sources always in training), then each other source held out."""
    mmlu = index[[rows[i].source == "mmlu_outcomes" for i in index]]
    other = index[[rows[i].source != "mmlu_outcomes" for i in index]]
    subjects = [rows[i].group for i in mmlu]
    folds = [
        (np.concatenate([mmlu[a], other]), mmlu[b]) for a, b in GroupKFold(SUBJECT_FOLDS).split(mmlu, groups=subjects)
    ]
    for source in sorted({rows[i].source for i in other}):
        held = np.array([rows[i].source == source for i in index])
        folds.append((index[~held], index[held]))
    return folds


def _fold_table(
    train: Index, test: Index, rows: list[Outcome], forms: NDArray[np.float32], embeddings: NDArray[np.float32]
) -> dict[Candidate, dict[str, float]]:
    """Every candidate fitted on `train` and scored on `test`."""
    y = np.array([suffices(rows[i]) for i in train])
    support = fit_support(embeddings[train], 0.5)
    training_distances = support.distances(embeddings[train])
    test_distances = support.distances(embeddings[test])
    test_rows = [rows[i] for i in test]
    table = {}
    for features in FEATURE_SETS:
        for c in CS:
            weights, bias = fit_head(forms[train], y, features, c)
            scores = 1 / (1 + np.exp(-(forms[test] @ weights + bias)))
            for q in (*QUANTILES, 1.0):  # 1.0: never abstain, for comparison only
                limit = -1.0 if q <= 0 else np.inf if q >= 1 else float(np.quantile(training_distances, q))
                abstained = test_distances > limit
                result = evaluate_routing(scores.tolist(), test_rows, abstained.tolist())
                needed, random = result["strong_share_needed"], result["strong_share_needed_random_routing"]
                table[Candidate(features, c, q)] = {
                    "strong_share_needed": needed,
                    "strong_share_needed_random_routing": random,
                    "ratio_to_random": round(needed / random, 4) if random else 1.0,
                    "abstained_share": result["abstained_share"],
                }
    return table


def select(
    index: Index, rows: list[Outcome], forms: NDArray[np.float32], embeddings: NDArray[np.float32]
) -> tuple[Candidate, list[dict[str, Any]]]:
    """The candidate with the smallest worst-fold ratio to random over the grouped folds of
    `index` (ties: the smaller mean), and its figures on each of those folds."""
    folds = grouped_folds(index, rows)
    tables = [_fold_table(train, test, rows, forms, embeddings) for train, test in folds]

    def criterion(candidate: Candidate) -> tuple[float, float]:
        ratios = [t[candidate]["ratio_to_random"] for t in tables]
        return max(ratios), float(np.mean(ratios))

    best = min(CANDIDATES, key=criterion)
    per_fold = [
        {"groups": sorted({rows[i].group for i in test}), "rows": len(test), **table[best]}
        for (_, test), table in zip(folds, tables, strict=True)
    ]
    return best, per_fold


def nested_evaluation(
    rows: list[Outcome], forms: NDArray[np.float32], embeddings: NDArray[np.float32]
) -> dict[str, Any]:
    index = np.arange(len(rows))
    outer = []
    for train, test in grouped_folds(index, rows):
        chosen, inner = select(train, rows, forms, embeddings)
        table = _fold_table(train, test, rows, forms, embeddings)
        outer.append({
            "held_out_groups": sorted({rows[i].group for i in test}),
            "rows": len(test),
            "chosen": chosen.name(),
            "inner_worst_ratio": max(f["ratio_to_random"] for f in inner),
            **table[chosen],
            "previous_recipe": table[Candidate("all", 1.0, 1.0)] | {"note": "all features, C=1, no abstention"},
        })  # fmt: skip
        print(f"  outer fold {len(outer)} ({len(test)} rows): {chosen.name()}: {table[chosen]}", flush=True)
    final, folds = select(index, rows, forms, embeddings)
    return {
        "rows": len(rows),
        "criterion": "the worst inner fold's strong share needed for 95% of the strong model's accuracy, "
        "relative to random routing (then the mean); abstained prompts are routed at random",
        "candidates": len(CANDIDATES),
        "outer_folds": outer,
        "worst_outer_ratio": max(f["ratio_to_random"] for f in outer),
        "shipped_choice": {
            "chosen": final.name(),
            "features": final.features,
            "c": final.c,
            "abstain_quantile": final.quantile,
            "folds": folds,
            "note": "chosen on all the project's grouped folds: these per-fold figures are those it was "
            "chosen on (optimistic); the outer folds above are the honest estimate of the recipe",
        },
    }
