"""The assessor's judges and drift watch, without a bus: what agrees, what cannot be judged
when the texts were not kept, and when a model path's agreement raises an alert."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_rpc_fuzz import messages
from tierlift.assessor._drift import DriftWatch
from tierlift.assessor._judges import judge
from tierlift.assessor._llm_judge import judge_prompt, parse_verdict
from tierlift.assessor._suite import Item, SuiteError, SuiteMissing, load_suite, passes
from tierlift.core.text_match import normalise
from tierlift.router._shadow import answers
from tierlift.v1 import common_pb2, events_pb2, router_pb2

REQUEST = router_pb2.CompleteRequest(messages=[common_pb2.Message(role="user", content="Sum?")])


def spec(method: str, **fields: object) -> events_pb2.JudgeSpec:
    return events_pb2.JudgeSpec(method=method, **fields)  # type: ignore[arg-type]


def test_exact_and_normalised_matches_are_judged_from_digests_even_without_text() -> None:
    for kept in (True, False):
        same_words = answers(REQUEST, " The total is 1,000.50. ", "the total is 1000.5", kept)
        assert judge(spec("normalised"), same_words, None).score == 1.0
        assert judge(spec("exact"), same_words, None).score == 0.0
        assert judge(spec("exact"), answers(REQUEST, "42", "42", kept), None).score == 1.0
        assert judge(spec("normalised"), answers(REQUEST, "42", "43", kept), None).score == 0.0
    assert normalise(" The total is 1,000.50. ") == "the total is 1000.5"


def test_text_judges_decline_when_the_text_was_not_kept() -> None:
    digests_only = answers(REQUEST, '{"a": 1}', '{"a": 1}', text_kept=False)
    verdict = judge(spec("json_schema", json_schema="{}"), digests_only, None)
    assert verdict.score is None and "does not keep" in verdict.detail


def test_json_schema_validity_of_the_live_answer() -> None:
    schema = json.dumps({"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}}})
    assert (
        judge(spec("json_schema", json_schema=schema), answers(REQUEST, '{"total": 3}', "x", True), None).score == 1.0
    )
    missing = judge(spec("json_schema", json_schema=schema), answers(REQUEST, '{"sum": 3}', "x", True), None)
    assert missing.score == 0.0 and "total" in missing.detail
    assert judge(spec("json_schema", json_schema=schema), answers(REQUEST, "three", "x", True), None).score == 0.0


def test_an_answer_or_schema_the_judge_cannot_read_is_undecided_never_an_exception() -> None:
    # a model writes the answer: JSON too deep for the reader, or a number too long for it, raised
    # out of the judge and failed the assessor's batch at every redelivery (judging stopped)
    schema = json.dumps({"type": "array"})
    for text in ("[" * 100_000 + "]" * 100_000, "1" * 5_000):
        verdict = judge(spec("json_schema", json_schema=schema), answers(REQUEST, text, "x", True), None)
        assert verdict.score is None and "cannot be read" in verdict.detail
    deep = json.dumps({"$ref": "#/nowhere"})
    verdict = judge(spec("json_schema", json_schema=deep), answers(REQUEST, "{}", "x", True), None)
    assert verdict.score is None and "cannot be checked" in verdict.detail
    for broken in ("{", "[]", json.dumps({"type": 5})):  # an event may carry what the policy refuses
        verdict = judge(spec("json_schema", json_schema=broken), answers(REQUEST, "{}", "x", True), None)
        assert verdict.score is None and "json_schema" in verdict.detail


@settings(max_examples=300, deadline=None)
@given(
    shadow=messages(events_pb2.ShadowFinished.DESCRIPTOR, events_pb2.ShadowFinished),
    schema=st.sampled_from(["{", "[]", '{"type": 5}', '{"$ref": "#/x"}', '{"type": "object"}', "1" * 5000, "{}"]),
    text=st.sampled_from(["", "{", "[" * 5000, '{"a": 1}', "1e999999", "9" * 5000, "[1, 2]"]),
)
def test_the_judge_answers_any_shadow_event_without_raising(
    shadow: events_pb2.ShadowFinished, schema: str, text: str
) -> None:
    shadow.answers.text_kept, shadow.answers.live_text = True, text
    if shadow.judge.method in ("", "json_schema"):
        shadow.judge.method, shadow.judge.json_schema = "json_schema", schema
    verdict = judge(shadow.judge, shadow.answers, None)
    assert verdict.score in (None, 0.0, 1.0)


def test_embedding_similarity_agrees_at_the_threshold() -> None:
    vectors = {"Paris.": np.array([1.0, 0.0]), "It is Paris": np.array([0.9, 0.43589]), "Berlin": np.array([0, 1.0])}

    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([vectors[t] for t in texts])

    close = judge(spec("embedding", agree_at=0.85), answers(REQUEST, "Paris.", "It is Paris", True), embed)
    assert close.score == 1.0 and "cosine 0.900" in close.detail
    assert judge(spec("embedding", agree_at=0.85), answers(REQUEST, "Paris.", "Berlin", True), embed).score == 0.0


def test_drift_alerts_on_a_fall_from_baseline_or_below_the_floor_once_per_episode() -> None:
    watch = DriftWatch(window=10, floor=0.6, max_drop=0.05)
    assert all(watch.add("qa", "candidate", 1.0) is None for _ in range(10))  # baseline 100%
    alert = watch.add("qa", "candidate", 0.0)
    assert alert is not None and (alert.observed, alert.baseline, alert.window) == (0.9, 1.0, 10)
    assert "fell from 100.0% to 90.0%" in alert.reason
    assert watch.add("qa", "candidate", 0.0) is None  # the same episode: no second alert
    for _ in range(10):
        watch.add("qa", "candidate", 1.0)  # recovered: the next fall alerts again
    assert watch.add("qa", "candidate", 0.0) is not None
    # another path with a poor baseline: the floor still applies
    low = DriftWatch(window=5, floor=0.6)
    alerts = [low.add("qa", "weak", score) for score in (1.0, 0.0, 0.0, 1.0, 0.0)]
    assert alerts[-1] is not None and "below the floor of 60%" in alerts[-1].reason


def test_the_llm_judges_verdict_is_read_from_its_reply() -> None:
    assert parse_verdict("A") == "A" and parse_verdict("tie.") == "TIE" and parse_verdict("Answer B is better") == "B"
    assert parse_verdict("Both are fine") is None
    prompt = judge_prompt("Correct sums win.", "user: 2+2?", "4", "5")
    assert "Rubric: Correct sums win." in prompt and "Answer A:\n4" in prompt and "Answer B:\n5" in prompt


def test_golden_sets_load_with_clear_errors_and_each_check_decides(tmp_path: Path) -> None:
    good = tmp_path / "faq.jsonl"
    good.write_text(
        '{"prompt": "2+2?", "reference": "4"}\n\n'
        '{"messages": [{"role": "user", "content": "Give JSON"}], "reference": {"type": "object"}, '
        '"check": "json_schema"}\n'
    )
    plain, schema = load_suite(good)
    assert plain.check == "normalised" and plain.messages[0].content == "2+2?"
    assert passes(plain, " 4. ")[0] and not passes(plain, "5")[0]
    assert passes(schema, '{"a": 1}')[0] and not passes(schema, "[1]")[0]
    assert passes(Item([], "Paris", "contains"), "It is PARIS.")[0]
    assert passes(Item([], r"\b4\d\b", "regex"), "about 42")[0]
    why = passes(Item([], "4", "exact"), "four")[1]
    assert why == "exact: expected '4', got 'four'"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "reference": "y", "check": "vibes"}\n')
    with pytest.raises(SuiteError, match=r"bad.jsonl:1: check 'vibes' is not one of"):
        load_suite(bad)
    bad.write_text('{"prompt": "no reference"}\n')
    with pytest.raises(SuiteError, match=r"bad.jsonl:1: not an item"):
        load_suite(bad)
    with pytest.raises(SuiteMissing):
        load_suite(tmp_path / "none.jsonl")
    # found when the set ran, each failed the whole run (an exception out of the check)
    unusable = [('"reference": "(", "check": "regex"', "not a regular expression"),
                ('"reference": {"type": 5}, "check": "json_schema"', "json_schema is not a JSON Schema")]  # fmt: skip
    for line, why in unusable:
        bad.write_text('{"prompt": "x", ' + line + "}\n")
        with pytest.raises(SuiteError, match=f"bad.jsonl:1: reference: {why}"):
            load_suite(bad)
    assert not passes(schema, "[" * 100_000 + "]" * 100_000)[0]  # a model's answer Python cannot read
    packaged = Path(__file__).parents[2] / "services/tierlift/suites/cli.jsonl"
    assert len(load_suite(packaged)) == 5


def test_a_suite_run_naming_no_models_runs_the_workloads_live_path(tmp_path: Path) -> None:
    import asyncio

    from tierlift.assessor._suite import LIVE, MemoryBaselines, SuiteRunner

    (tmp_path / "faq.jsonl").write_text('{"prompt": "2+2?", "reference": "4"}\n{"prompt": "3+3?", "reference": "6"}\n')
    seen: list[router_pb2.CompleteRequest] = []
    published: list[events_pb2.QualityScored] = []

    class Router:
        async def Complete(self, request: router_pb2.CompleteRequest, **_call: float) -> router_pb2.CompleteResponse:
            seen.append(request)
            return router_pb2.CompleteResponse(text="4", model="gemma-3-270m-cpu")

    async def publish(subject: str, event: events_pb2.QualityScored, event_id: str) -> None:
        published.append(event)

    runner = SuiteRunner(Router(), publish, MemoryBaselines({}), tmp_path)  # type: ignore[arg-type]
    report = asyncio.run(runner.run("faq", []))
    (path,) = report.paths
    assert (path.model, path.items, path.passed, path.baseline) == (LIVE, 2, 1, -1.0)
    assert [list(r.constraints.models) for r in seen] == [[], []]  # routed as the workload's traffic, unpinned
    assert path.failures == ["item 2 (gemma-3-270m-cpu): normalised: expected '6', got '4'"]
    assert {e.model for e in published} == {"gemma-3-270m-cpu"}  # each score is the answering model's
