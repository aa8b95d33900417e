"""`tierlift eval-routing --adapt N`: how much a workload's own routing head helps once it has
seen N of its requests. The outcome rows are replayed as one organisation's traffic in a fixed
shuffled order; the first N become judged shadow outcomes (the label: the small model's answer
was as good as the strong one's) and go through the fit `tierlift calibrate --from-ledger` makes
(`calibration.fit_routing_head`: the shipped routing head corrected by those rows, how far chosen
by cross-validation on them alone, with its own held-back share); the adapted prior, the shipped
classifier's prior and random routing are then scored on the rows after them, which no fit and
no choice of the fit's strength saw."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from tierlift.classifier._prompt_form import prompt_forms
from tierlift.evaluation.calibration import fit_routing_head, held_back
from tierlift.evaluation.data import Outcome
from tierlift.evaluation.grouped_routing import suffices
from tierlift.evaluation.routing import evaluate_routing
from tierlift.v1 import ledger_pb2

HELD_SHARE = 0.3  # as calibrate_from_ledger holds back


def split_traffic(rows: Sequence[Outcome], n: int, seed: int) -> tuple[list[int], list[int]]:
    """The indices of the first `n` rows of the shuffled traffic (fed to the fit) and of the rest."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    return order[:n], order[n:]


def judged(rows: Sequence[Outcome], indices: Sequence[int]) -> list[ledger_pb2.JudgedAnswer]:
    """The rows as the ledger keeps a shadow-judged answer: its prompt's form and the verdict."""
    forms = prompt_forms([rows[i].prompt for i in indices])
    return [
        ledger_pb2.JudgedAnswer(
            request_id=f"replay-{i}",
            prompt_form=[round(float(v), 4) for v in form],
            score=1.0 if suffices(rows[i]) else 0.0,
            occurred_at="replay",
        )
        for i, form in zip(indices, forms, strict=True)
    ]


def _shares(
    adapted: Sequence[float], shipped: Sequence[float], rows: Sequence[Outcome]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    a = evaluate_routing(adapted, rows)
    s = evaluate_routing(shipped, rows, [p == 0 for p in shipped])  # 0: the shipped prior abstained
    summary = {
        "rows": len(rows),
        "adapted": a["strong_share_needed"],
        "shipped": s["strong_share_needed"],
        "random": a["strong_share_needed_random_routing"],
        "shipped_abstained_share": s["abstained_share"],
    }
    return summary, a, s


def replay(
    rows: Sequence[Outcome], n: int, shipped_prior: Callable[[list[str]], list[float]], seed: int = 7
) -> dict[str, Any]:
    fed, rest = split_traffic(rows, n, seed)
    if not rest:
        raise ValueError(f"--adapt {n}: no rows left to evaluate ({len(rows)} in all)")
    answers = judged(rows, fed)
    correct = {a.request_id: a.score >= 0.5 for a in answers}
    train = [a for a in answers if not held_back(a.request_id, HELD_SHARE)]
    test = [a for a in answers if held_back(a.request_id, HELD_SHARE)]
    head, report = fit_routing_head(train, test, correct, f"replay: first {n} rows, seed {seed}")
    evaluated = [rows[i] for i in rest]
    shipped = shipped_prior([o.prompt for o in evaluated])
    if head is not None:
        adapted = [head.probability(f) or 0.0 for f in prompt_forms([o.prompt for o in evaluated]).tolist()]
    else:  # as live: without a workload head, the router uses the classifier's prior
        adapted = list(shipped)
    overall, a, s = _shares(adapted, shipped, evaluated)
    by_source = {"all": overall}
    for source in sorted({o.source for o in evaluated}):
        part = [k for k, o in enumerate(evaluated) if o.source == source]
        by_source[source] = _shares([adapted[k] for k in part], [shipped[k] for k in part],
                                    [evaluated[k] for k in part])[0]  # fmt: skip
    return {
        "adapt": n,
        "seed": seed,
        "fed": len(fed),
        "evaluated": len(evaluated),
        "routing_head": report,
        "by_source": by_source,
        "curve": {"adapted": a["curve"], "shipped": s["curve"]},
        "weak_accuracy": a["weak_accuracy"],
        "strong_accuracy": a["strong_accuracy"],
    }
