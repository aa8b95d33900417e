"""The routing prior abstains on prompts unlike its training prompts (no estimate: the router's
neutral start), abstained prompts count as routed at random, and the replay of
`eval-routing --adapt` never scores a row it fed to the fit."""

import csv
from pathlib import Path

import numpy as np
import pytest

from tierlift.classifier import load_classifier
from tierlift.classifier._model import RoutingSupport, load_support
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.evaluation import replay as replay_module
from tierlift.evaluation.data import Outcome, in_training_part
from tierlift.evaluation.nested_routing import grouped_folds
from tierlift.evaluation.replay import replay, split_traffic
from tierlift.evaluation.routing import evaluate_routing, routing_curve
from tierlift.router import Policy, build_plan
from tierlift.router._policy import OPEN_TIERS
from tierlift.v1 import classifier_pb2, common_pb2, router_pb2

T = common_pb2
MMLU = Path(__file__).parents[2] / "data" / "routing" / "mmlu_outcomes.csv"


def classify(text: str) -> classifier_pb2.Classification:
    request = classifier_pb2.ClassifyRequest(messages=[T.Message(role="user", content=text)])
    return load_classifier().classify(request)


def test_support_abstains_far_from_every_centroid() -> None:
    support = RoutingSupport(np.eye(3, dtype=np.float32)[:2], max_distance=0.2)
    near = np.array([[0.99, 0.14, 0.0]], dtype=np.float32)
    far = np.array([[0.0, 0.0, 1.0]], dtype=np.float32)
    empty = np.zeros((1, 3), dtype=np.float32)  # a text with no known token
    assert support.abstains(np.concatenate([near, far, empty])).tolist() == [False, True, True]


def test_shipped_prior_abstains_on_a_far_away_prompt_not_on_a_training_like_one() -> None:
    assert load_support() is not None, "model/routing_support.npz ships beside heads.npz"
    with MMLU.open(newline="") as f:
        trained = next(r["prompt"] for r in csv.DictReader(f) if in_training_part(r["prompt"]))
    seen = classify(trained)
    assert 0 < seen.small_model_ok < 1
    far = classify("ｺﾝﾆﾁﾊ!!! 🙂🙂🙂 xoxo lol ttyl ^_^ <3 ~~~ zzz")
    assert far.small_model_ok == 0  # no estimate
    assert far.complexity == 0
    assert far.prompt_form  # the form is still recorded, for a workload's own head


def test_no_estimate_gives_the_neutral_start_whatever_the_floor() -> None:
    catalog = load_catalog(DEFAULT_CATALOG)
    request = router_pb2.CompleteRequest(tenant="acme", workload="w1", messages=[T.Message(role="user", content="hi")])
    abstained = classifier_pb2.Classification(data_class=T.DATA_CLASS_PUBLIC, token_estimate=10, small_model_ok=0)
    every = {m.adapter for m in catalog.models}
    plan = build_plan(request, abstained, catalog, every, Policy(open_tiers_min_prior=0.99))
    neutral = build_plan(request, abstained, catalog, every, Policy())
    assert plan.ladder[0].tier in OPEN_TIERS  # the cheapest rung: confidence escalation decides
    assert [r.model for r in plan.ladder] == [r.model for r in neutral.ladder]
    assert any("no estimate" in reason for reason in plan.reasons)


def _outcomes(n: int) -> list[Outcome]:
    rng = np.random.default_rng(0)
    return [
        Outcome(
            f"question {i}: " + "x " * int(rng.integers(1, 40)),
            bool(rng.random() < 0.5),
            bool(rng.random() < 0.8),
            "mmlu_outcomes" if i % 3 else "gsm8k_outcomes",
        )
        for i in range(n)
    ]


def test_abstaining_on_every_prompt_is_random_routing() -> None:
    rows = _outcomes(300)
    scores = np.random.default_rng(1).random(300).tolist()
    result = evaluate_routing(scores, rows, [True] * 300)
    assert result["strong_share_needed"] == pytest.approx(result["strong_share_needed_random_routing"], abs=1 / 300)
    assert routing_curve(scores, rows, [False] * 300) == routing_curve(scores, rows)


def test_replay_never_scores_a_row_it_fed(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _outcomes(400)
    fed, rest = split_traffic(rows, 150, seed=3)
    assert len(fed) == 150 and sorted(fed + rest) == list(range(400))
    fitted_on: list[str] = []
    original = replay_module.fit_routing_head  # type: ignore[attr-defined]

    def spy(train, test, correct, fitted_on_text):  # type: ignore[no-untyped-def]
        fitted_on.extend(a.request_id for a in [*train, *test])
        return original(train, test, correct, fitted_on_text)

    asked: list[str] = []

    def shipped(prompts: list[str]) -> list[float]:
        asked.extend(prompts)
        return [0.5] * len(prompts)

    monkeypatch.setattr(replay_module, "fit_routing_head", spy)
    result = replay(rows, 150, shipped, seed=3)
    assert sorted(fitted_on) == sorted(f"replay-{i}" for i in fed)
    assert set(asked) == {rows[i].prompt for i in rest}
    assert result["fed"] == 150 and result["evaluated"] == 250
    assert result["by_source"]["all"]["rows"] == 250
    assert {"adapted", "shipped", "random"} <= result["by_source"]["gsm8k_outcomes"].keys()


def test_nested_folds_hold_out_whole_subjects_and_whole_sources() -> None:
    rows = [Outcome(f"q{i}", True, True, "mmlu_outcomes", f"subject{i % 7}") for i in range(70)]
    rows += [Outcome(f"g{i}", True, True, "gsm8k_outcomes", "gsm8k_outcomes") for i in range(20)]
    folds = grouped_folds(np.arange(len(rows)), rows)
    assert len(folds) == 6  # five by subject, one with GSM8K held out
    for train, test in folds:
        assert not {rows[i].group for i in train} & {rows[i].group for i in test}
    assert {rows[i].source for i in folds[-1][1]} == {"gsm8k_outcomes"}
    assert sorted(np.concatenate([test for _, test in folds]).tolist()) == list(range(len(rows)))
