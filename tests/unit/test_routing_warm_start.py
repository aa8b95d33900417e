"""A workload's routing head starts from the shipped prior: with no judged prompts it is the
shipped head, with prompts that say nothing new it stays near it, and with prompts that show a
weakness the shipped head cannot see it departs from it. `calibrate --from-ledger` and
`eval-routing --adapt` share that one fit."""

import numpy as np
import pytest

from tierlift.classifier._model import LinearHead
from tierlift.evaluation.calibration import fit_routing_head
from tierlift.evaluation.data import Outcome
from tierlift.evaluation.replay import replay
from tierlift.evaluation.routing_fit import STRENGTHS, Prior, fit_from_prior, fit_toward
from tierlift.v1 import ledger_pb2

WIDTH = 6
PRIOR_WEIGHTS = np.array([1.5, -2.0, 0.8, 0.0, 1.2, -0.6])


def _shipped() -> LinearHead:
    return LinearHead(("needs_strong", "small_ok"), PRIOR_WEIGHTS.reshape(-1, 1), np.array([0.3]))


def _answers(x: np.ndarray, y: np.ndarray, prefix: str) -> tuple[list[ledger_pb2.JudgedAnswer], dict[str, bool]]:
    answers = [
        ledger_pb2.JudgedAnswer(request_id=f"{prefix}-{i}", prompt_form=row.tolist(), score=float(label))
        for i, (row, label) in enumerate(zip(x, y, strict=True))
    ]
    return answers, {a.request_id: bool(label) for a, label in zip(answers, y, strict=True)}


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_with_no_judged_prompts_the_fit_is_the_shipped_prior() -> None:
    prior = Prior.from_head(_shipped())
    head, strength = fit_from_prior(np.zeros((0, WIDTH)), np.zeros(0, dtype=bool), prior)
    assert head.weights.tolist() == PRIOR_WEIGHTS.tolist() and head.bias == 0.3
    assert strength == STRENGTHS[-1]


def test_replay_of_no_requests_scores_the_shipped_prior() -> None:
    rows = [Outcome(f"question {i}?", i % 2 == 0, i % 3 != 0, "mmlu_outcomes") for i in range(60)]
    result = replay(rows, 0, lambda prompts: [(len(p) % 7) / 7 for p in prompts], seed=1)
    assert not result["routing_head"]["fitted"]
    assert result["curve"]["adapted"] == result["curve"]["shipped"]


def test_a_few_prompts_that_agree_with_the_prior_keep_it() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, WIDTH))
    y = 1 / (1 + np.exp(-(x @ PRIOR_WEIGHTS + 0.3))) > rng.random(60)  # the verdicts the prior predicts
    train, correct = _answers(x[:40], y[:40], "train")
    test, held = _answers(x[40:], y[40:], "held")
    head, report = fit_routing_head(train, test, correct | held, "agreeing", shipped=_shipped())
    assert head is not None and report["started_from"] == "shipped prior"
    assert _cosine(np.array(head.weights), PRIOR_WEIGHTS) > 0.98
    # what the 40 prompts alone would give: the same direction, but far less surely
    alone = fit_toward(x[:40], y[:40], Prior.zero(WIDTH), 1.0)
    assert _cosine(alone.weights, PRIOR_WEIGHTS) < _cosine(np.array(head.weights), PRIOR_WEIGHTS) - 0.02


def test_prompts_with_a_weakness_the_prior_cannot_see_move_the_head() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, WIDTH))
    y = 1 / (1 + np.exp(4 * x[:, 3])) > rng.random(400)  # feature 3, which the prior ignores, decides
    fitted, strength = fit_from_prior(x, y, Prior.from_head(_shipped()))
    assert strength < 10
    assert fitted.weights[3] < -1.5  # the prior's weight there is 0


def test_a_very_strong_pull_keeps_the_prior_up_to_the_base_rate() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(200, WIDTH))
    y = x[:, 3] > 0
    fitted = fit_toward(x, y, Prior.from_head(_shipped()), 1e9)
    assert fitted.weights == pytest.approx(PRIOR_WEIGHTS, abs=1e-4)


def test_a_shipped_head_of_another_form_width_gives_a_fit_from_nothing() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(100, WIDTH + 1))
    y = x[:, 0] > 0
    train, correct = _answers(x[:70], y[:70], "train")
    test, held = _answers(x[70:], y[70:], "held")
    head, report = fit_routing_head(train, test, correct | held, "wider", shipped=_shipped())
    assert head is not None and report["started_from"].startswith("nothing")
    assert "held_back_auroc_packaged" not in report
