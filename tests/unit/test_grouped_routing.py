"""The grouped evaluation on synthetic outcomes whose difficulty lies in the prompt's form (many
numbers: the weak model fails) while each subject has its own embedding: a router of form
transfers to held-out subjects, one that learned subjects' embeddings cannot."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from tierlift.classifier._prompt_form import NAMES, prompt_form
from tierlift.evaluation.data import Outcome
from tierlift.evaluation.grouped_routing import grouped_evaluation


def synthetic(n_subjects: int = 10, per_subject: int = 60) -> tuple[list[Outcome], np.ndarray]:
    draw = random.Random(3)
    rows, vectors = [], []
    for s in range(n_subjects):
        centre = np.random.default_rng(s).normal(size=16)
        for i in range(per_subject):
            numeric = draw.random() < 0.4
            prompt = (f"Compute {' + '.join(str(draw.randint(10, 999)) for _ in range(6))} for case {i}."
                      if numeric else f"Which statement about topic {s} is best supported, case {i}?")  # fmt: skip
            weak = not numeric if draw.random() < 0.9 else numeric
            rows.append(Outcome(prompt, weak, True, "mmlu_outcomes" if s < n_subjects - 2 else "other", f"subject-{s}"))
            v = centre + np.random.default_rng(1000 * s + i).normal(scale=0.3, size=16)
            vectors.append(v / np.linalg.norm(v))
    return rows, np.array(vectors, dtype=np.float32)


def test_a_router_of_form_beats_random_on_subjects_it_never_saw() -> None:
    rows, embeddings = synthetic()
    report = grouped_evaluation(rows, embeddings)
    assert report["subjects"] == 8 and set(report["held_out_sources"]) == {"mmlu_outcomes", "other"}
    by_method = {r["method"]: r for r in report["held_out_subjects"]}
    form = by_method["form"]
    assert form["strong_share_needed"] < form["strong_share_needed_random_routing"] - 0.1
    assert form["auroc"] > 0.8
    assert by_method["embedding"]["auroc"] < 0.7  # subjects' embeddings say nothing about a new subject


def test_prompt_form_is_a_fixed_length_vector_on_a_small_scale() -> None:
    for text in ("", "hi", "What is 2.5 + 3?\nA. 5\nB. 5.5\nC. 6\nD. 7", "x" * 100_000, "Statement 1 | I. a\nII. b"):
        vector = prompt_form(text)
        assert vector.shape == (len(NAMES),) and np.all(np.isfinite(vector)) and np.abs(vector).max() < 20


def test_prompt_form_reads_options_and_decimals_as_before_on_floods_of_digits_and_blank_lines() -> None:
    """The option and decimal patterns were rewritten to stay linear on a run of digits or blank
    lines (both were quadratic: 100K newlines took seconds); what they find is unchanged."""
    named = dict(zip(NAMES, range(len(NAMES)), strict=True))
    question = "Which is largest?\n\nA. 2.5\n  B) 3\n(C) 4\nD. 1"
    vector = prompt_form(question)
    assert vector[named["options"]] == pytest.approx(4 / 4)
    assert vector[named["decimals"]] == 1.0
    assert vector[named["log_stem_chars"]] == pytest.approx(math.log1p(len("Which is largest?\n\n")) / 8)
    for text in ("7" * 100_000, "\n" * 100_000, "1.\n" * 30_000):
        vector = prompt_form(text)
        assert vector[named["options"]] == 0 and vector[named["decimals"]] == 0


def test_prompt_form_counts_its_words_in_one_pass_as_it_did_in_five() -> None:
    """One alternation finds each counted word once: "false" counts as a negation and for
    true_false, "which of the following" as a judgement and for which. Letters that IGNORECASE
    equates with ASCII ones (the long s for s, the Kelvin sign for k) match too, and count the same."""
    named = dict(zip(NAMES, range(len(NAMES)), strict=True))
    text = "Which of the following is FALSE? Not the be\u017ft, most li\u212aely: the total of each, never."
    vector = prompt_form(text)
    assert vector[named["negations"]] == pytest.approx(math.log1p(3))  # false, not, never
    assert vector[named["judgement_words"]] == pytest.approx(math.log1p(3))  # which of the following, best, most likely
    assert vector[named["quantity_words"]] == pytest.approx(math.log1p(2))  # total, each
    assert vector[named["which"]] == 1.0 and vector[named["true_false"]] == 1.0
    assert prompt_form("Is it so?")[named["true_false"]] == 0.0
