"""A workload's routing head starts from the shipped prior: with no judged prompts it is the
shipped head, with prompts that say nothing new it stays near it, and with prompts that show a
weakness the shipped head cannot see it departs from it. `calibrate --from-ledger` and
`eval-routing --adapt` share that one fit. Where the traffic mixes prompt families (multiple-choice
questions and open ones), each family weighs alike in the fit, so a weakness of the minority
family's prompts moves the head too."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tierlift.classifier._model import LinearHead
from tierlift.classifier._prompt_form import NAMES, prompt_forms
from tierlift.evaluation.calibration import fit_routing_head
from tierlift.evaluation.data import Outcome
from tierlift.evaluation.replay import replay
from tierlift.evaluation.routing_fit import (
    MIN_FAMILY_ROWS,
    OPTIONS,
    STRENGTHS,
    Prior,
    family_weights,
    fit_from_prior,
    fit_toward,
    prompt_families,
)
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


def test_prompt_families_tell_multiple_choice_questions_from_other_prompts() -> None:
    forms = prompt_forms([
        "Which gas do plants absorb?\nA. Oxygen\nB. Carbon dioxide\nC. Nitrogen\nD. Helium\nAnswer:",
        "Tom has 3 boxes of 12 pencils and gives away 5. How many pencils are left?",
        "Write a haiku about the sea.",
    ]).astype(np.float64)  # fmt: skip
    assert prompt_families(forms).tolist() == [1, 0, 0]
    assert prompt_families(np.ones((2, WIDTH))).tolist() == [0, 0]  # another form: one family


def test_each_large_family_weighs_alike_and_a_small_one_as_its_rows() -> None:
    weights = family_weights(np.array([1] * 30 + [0] * MIN_FAMILY_ROWS))
    assert weights[:30].sum() == pytest.approx(weights[30:].sum())
    assert weights.sum() == pytest.approx(30 + MIN_FAMILY_ROWS)
    # a family too small to speak for itself: every row counts once
    assert family_weights(np.array([1] * 30 + [0] * (MIN_FAMILY_ROWS - 1))).tolist() == [1.0] * (29 + MIN_FAMILY_ROWS)
    three = family_weights(np.array([2] * 3 + [1] * 40 + [0] * 20))
    assert three[:3].tolist() == [1.0] * 3 and three[3:43].sum() == pytest.approx(three[43:].sum()) == 30
    assert family_weights(np.zeros(5, dtype=np.int64)).tolist() == [1.0] * 5
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(80, WIDTH)), rng.random(80) < 0.6
    prior = Prior.from_head(_shipped())
    unweighted = fit_toward(x, y, prior, 10.0)
    weighted = fit_toward(x, y, prior, 10.0, family_weights(prompt_families(x)))
    assert weighted.weights == pytest.approx(unweighted.weights)


def test_a_weakness_of_the_minority_familys_prompts_moves_the_head_the_pooled_fit_barely_moves() -> None:
    """360 multiple-choice prompts whose verdicts the prior predicts, and 40 open ones where it
    misses one feature: weighing the families alike, the head learns that feature and ranks open
    prompts better than the fit that counts every row alike, multiple-choice ones as well."""
    rng = np.random.default_rng(9)
    width, weak = len(NAMES), NAMES.index("log_largest_number")
    weights = rng.normal(scale=0.3, size=width)
    weights[[weak, OPTIONS]] = 0.0
    prior = Prior(weights, 0.5)

    def rows(n: int, multiple_choice: bool) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, width))
        x[:, OPTIONS] = 1.0 if multiple_choice else 0.0
        logit = x @ weights + 0.5 - (0.0 if multiple_choice else 3 * x[:, weak])
        return x, 1 / (1 + np.exp(-logit)) > rng.random(n)

    (xm, ym), (xo, yo) = rows(360, True), rows(40, False)
    x, y = np.vstack([xm, xo]), np.concatenate([ym, yo])
    balanced, _ = fit_from_prior(x, y, prior)
    pooled, _ = fit_from_prior(x, y, prior, families=np.zeros(len(y), dtype=np.int64))
    assert balanced.weights[weak] < pooled.weights[weak] - 0.1

    def auroc(head: Prior, rows_: tuple[np.ndarray, np.ndarray]) -> float:
        return float(roc_auc_score(rows_[1], rows_[0] @ head.weights))

    fresh_open, fresh_choice = rows(2000, False), rows(2000, True)
    assert auroc(balanced, fresh_open) > auroc(pooled, fresh_open) + 0.02
    assert auroc(balanced, fresh_choice) > auroc(pooled, fresh_choice) - 0.01
