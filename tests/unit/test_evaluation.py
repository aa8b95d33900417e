"""The evaluation arithmetic, checked against small cases worked by hand."""

import json
import math
import random
from pathlib import Path

import pytest

from tierlift.adapters import signals_from_logprobs
from tierlift.evaluation.calibration import calibrate, threshold_for_accuracy, threshold_for_escalation
from tierlift.evaluation.data import Outcome, Task
from tierlift.evaluation.local_tier import escalation_curve, grade, prompt_of
from tierlift.evaluation.routing import evaluate_routing, routing_curve
from tierlift.router._confidence import ConfidenceModel, Features, score
from tierlift.router._policy_source import DEFAULT_POLICY, load_policy


def outcome(weak: bool, strong: bool) -> Outcome:
    return Outcome("q", weak, strong, "t")


def test_routing_curve_sends_the_least_likely_prompts_to_the_strong_model_first() -> None:
    # weak fails on the two prompts the router scores lowest; the strong model gets both right
    outcomes = [outcome(False, True), outcome(True, True), outcome(False, True), outcome(True, False)]
    scores = [0.1, 0.9, 0.2, 0.8]
    curve = routing_curve(scores, outcomes)
    # order by score: prompts 0, 2, 3, 1. None strong: weak right on 2 of 4; prompt 0 strong: 3;
    # 0 and 2: 4; 0, 2 and 3 (strong wrong on 3): 3; all four strong: 3
    assert [a for _, a in curve] == [0.5, 0.75, 1.0, 0.75, 0.75]
    result = evaluate_routing(scores, outcomes)
    assert result["strong_share_needed"] == 0.25  # 95% of 0.75 = 0.7125, reached with one call of four
    # random routing: 0.5 + s * (0.75 - 0.5) >= 0.7125  =>  s >= 0.85
    assert result["strong_share_needed_random_routing"] == pytest.approx(0.85)


@pytest.mark.parametrize(
    ("answer", "right"),
    [("Paris", True), ("paris.", True), ("Paris is the capital", True), ("Lyon", False), ("", False)],
)
def test_exact_answers_are_graded_after_normalising(answer: str, right: bool) -> None:
    assert grade(Task("Capital of France?", ("Paris",), {}, "t"), answer) is right


def test_a_numeric_answer_is_the_last_number_on_the_first_line() -> None:
    task = Task("What is 17 plus 25?", ("42",), {}, "t")
    assert grade(task, "17 + 25 = 42")
    assert not grade(task, "17 + 25 = 43\nno, 42")


def test_options_are_not_listed_right_answer_first() -> None:
    tasks = [Task(f"Question {i}?", (), {"right": 1.0, "wrong": 0.0, "other": 0.0}, "t") for i in range(20)]
    firsts = {prompt_of(t).split("Options: ")[1].split(",")[0] for t in tasks}
    assert len(firsts) > 1  # the order depends on the question, not on the file


def test_multiple_choice_takes_the_first_option_named() -> None:
    task = Task("Is it plausible?", (), {"plausible": 1.0, "implausible": 0.0}, "t")
    assert grade(task, "plausible, I think")
    assert not grade(task, "implausible")
    assert not grade(task, "no idea")


def test_escalation_curve_and_thresholds() -> None:
    confidences = [0.1, 0.2, 0.8, 0.9]
    correct = [False, True, True, True]
    curve = escalation_curve(confidences, correct)
    assert curve[0] == {
        "escalated_share": 0.0,
        "threshold": 0.1,
        "kept_accuracy": 0.75,
        "accuracy_if_escalations_right": 0.75,
    }
    assert curve[1]["kept_accuracy"] == 1.0  # escalating the least confident (wrong) answer
    assert threshold_for_escalation(confidences, 0.25) == 0.2  # escalates only 0.1: 25%
    assert threshold_for_accuracy(confidences, correct, 0.99) == 0.2


def test_calibrate_writes_a_policy_the_routers_accept(tmp_path: Path) -> None:
    rng = random.Random(3)
    answers = []
    for _ in range(200):
        right = rng.random() < 0.5
        mean = rng.uniform(-0.6, 0.0) if right else rng.uniform(-2.5, -0.4)  # right answers: surer tokens
        answers.append(
            {
                "correct": right,
                "has_logprobs": True,
                "mean_logprob": mean,
                "min_logprob": mean * 3,
                "low_prob_share": 0.1,
                "tokens": 8,
                "prior": 0.5,
            }
        )
    eval_file = tmp_path / "eval.json"
    eval_file.write_text(json.dumps({"model": "gemma-3-270m-cpu", "answers": answers}))
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(DEFAULT_POLICY.read_text())

    calibrate(eval_file, policy_file, "faq", max_escalation=0.3, keep_accuracy=None)

    policy = load_policy(policy_file)
    assert policy.confidence_model is not None
    assert policy.confidence_model.weights[0] > 0  # surer tokens, likelier right
    threshold = policy.threshold_for("faq")
    features = [Features(True, a["mean_logprob"], a["min_logprob"], 0.1, 8, 0.5) for a in answers]
    escalated = sum(policy.confidence_model.probability(f) < threshold for f in features)
    assert escalated <= 0.3 * len(answers)
    # edited in place, twice: every comment is still above the key it was written for, and what
    # was added reads as blocks
    calibrate(eval_file, policy_file, "qa", max_escalation=0.2, keep_accuracy=None)
    written = policy_file.read_text()
    assert _key_below_each_comment(written) == _key_below_each_comment(DEFAULT_POLICY.read_text())
    assert "\nworkloads:\n  faq:\n    confidence_threshold: " in written and "\n  qa:\n" in written
    assert load_policy(policy_file).threshold_for("faq") == threshold


def _key_below_each_comment(text: str) -> dict[str, str]:
    lines = text.splitlines()
    return {
        line: next(below for below in lines[i + 1 :] if not below.startswith("#")).split(":")[0]
        for i, line in enumerate(lines)
        if line.startswith("#")
    }


def test_a_confidence_model_scores_only_the_models_it_was_fitted_on() -> None:
    model = ConfidenceModel((0.0, 0.0, 0.0, 0.0, 0.0), bias=5.0, models=("gemma-3-270m-cpu",))
    signals = signals_from_logprobs([math.log(0.5)] * 4)
    assert score(signals, 0.5, "gemma-3-270m-cpu", model) == pytest.approx(1 / (1 + math.exp(-5)))
    assert score(signals, 0.5, "gpt-5", model) == pytest.approx(0.5 * (1 - 0.5 * 0))  # heuristic: geometric mean


def test_bad_evaluation_input_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tierlift.cli import main

    bad = tmp_path / "outcomes.csv"
    bad.write_text('prompt,weak_correct,strong_correct\n"q",maybe,True\n')
    assert main(["eval-routing", "--outcomes", str(bad), "--out", str(tmp_path / "r.json")]) == 2
    assert f"{bad}:2: expected True or False, got 'maybe'" in capsys.readouterr().err
    assert main(["eval", "--tasks", str(tmp_path / "missing"), "--out", str(tmp_path / "e.json")]) == 2
