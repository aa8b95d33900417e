"""Ledger.ListOutcomes' judged answers (ledger/_evidence.py `judged_answers`, what `tierlift
calibrate --from-ledger` fits on), on planted rows in SQLite and a private PostgreSQL: a model
path's live answers a shadow judged, and its explored answers, each joined to the exploration
run's own attempt (`<request>.explore.<model>`, kind shadow) for its signals and prior."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from tierlift.ledger._evidence import judged_answers
from tierlift.ledger._schema import attempts, metadata, quality_scores, requests
from tierlift.ledger._store import make_engine

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = (
        f"sqlite:///{tmp_path / 'ledger.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    made = make_engine(url)
    metadata.create_all(made)
    try:
        yield made
    finally:
        with made.begin() as conn:  # one PostgreSQL for the module: empty it for the next test
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
        made.dispose()


def _attempt(event_id: str, request_id: str, model: str, tier: str, minutes: int, **extra: Any) -> dict[str, Any]:
    at = NOW - timedelta(minutes=minutes)
    return {"event_id": event_id, "request_id": request_id, "attempt_index": 0, "tenant": "acme", "workload": "sums",
            "tier": tier, "model": model, "adapter": "a", "outcome": "ANSWERED", "input_tokens": 10,
            "output_tokens": 3, "cost_usd": Decimal("0.0001"), "input_usd_per_million": Decimal("1"),
            "output_usd_per_million": Decimal("2"), "price_version": "v1", "latency_ms": 50.0, "confidence": 0.9,
            "occurred_at": at, "recorded_at": at, "kind": "live", "has_logprobs": True, "mean_logprob": -0.1,
            "min_logprob": -0.5, "low_prob_share": 0.0, "signal_tokens": 3, "prior": 0.8, **extra}  # fmt: skip


def _score(request_id: str, model: str, reference: str, score: float, source: str) -> dict[str, Any]:
    return {"event_id": f"{request_id}.{source}.{model}.scored", "request_id": request_id, "tenant": "acme",
            "workload": "sums", "model": model, "reference_model": reference, "method": "normalised",
            "score": score, "source": source, "occurred_at": NOW}  # fmt: skip


def _request(request_id: str, final_model: str, form: list[float]) -> dict[str, Any]:
    return {"request_id": request_id, "event_id": f"{request_id}.done", "tenant": "acme", "workload": "sums",
            "answered": True, "final_tier": "LOCAL" if final_model == "small" else "CLOSED",
            "final_model": final_model, "attempt_count": 1, "escalated": False, "total_cost_usd": Decimal("0.0001"),
            "occurred_at": NOW, "prompt_form": json.dumps(form)}  # fmt: skip


def _plant(engine: Engine) -> None:
    """r1: a live answer of `small`, shadow-judged. r2: the learned router started on `big`; an
    exploration run also asked `small`, and the assessor judged it against `big`'s answer. r3: an
    explore verdict whose run the ledger has no attempt of. r4: an explore verdict beside a plain
    shadow run of the same model (another event id). r5: an exploration run of `tiny`. r6: an
    exploration run older than the window."""
    explored = {"kind": "shadow", "has_logprobs": True, "mean_logprob": -0.8, "min_logprob": -2.5,
                "low_prob_share": 0.3, "signal_tokens": 12, "prior": 0.31, "confidence": 0.42}  # fmt: skip
    rows = [
        _attempt("r1.attempt.0", "r1", "small", "LOCAL", 5),
        _attempt("r2.attempt.0", "r2", "big", "CLOSED", 4, has_logprobs=False, prior=0.0),
        _attempt("r2.explore.small", "r2", "small", "LOCAL", 4, **explored),
        _attempt("r3.attempt.0", "r3", "big", "CLOSED", 3),
        _attempt("r4.attempt.0", "r4", "big", "CLOSED", 2),
        _attempt("r4.shadow.small", "r4", "small", "LOCAL", 2, kind="shadow"),
        _attempt("r5.attempt.0", "r5", "big", "CLOSED", 1),
        _attempt("r5.explore.tiny", "r5", "tiny", "LOCAL", 1, **explored),
        _attempt("r6.attempt.0", "r6", "big", "CLOSED", 3 * 24 * 60),
        _attempt("r6.explore.small", "r6", "small", "LOCAL", 3 * 24 * 60, **explored),
    ]
    scores = [_score("r1", "small", "ref", 1.0, "shadow"), _score("r2", "small", "big", 0.0, "explore"),
              _score("r3", "small", "big", 1.0, "explore"), _score("r4", "small", "big", 1.0, "explore"),
              _score("r5", "tiny", "big", 0.0, "explore"), _score("r6", "small", "big", 0.0, "explore")]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(attempts), rows)
        conn.execute(insert(quality_scores), scores)
        conn.execute(insert(requests), [_request("r1", "small", [0.1, 0.2]), _request("r2", "big", [0.7, 0.9])])


def test_explored_verdicts_come_with_their_runs_signals_and_prior_beside_live_ones(engine: Engine) -> None:
    _plant(engine)
    listed = judged_answers(engine, "sums", "small", SINCE, 0)
    assert listed.model == "small"
    assert [a.request_id for a in listed.answers] == ["r2", "r1"]  # newest first
    explored, live = listed.answers
    assert explored.score == 0.0 and explored.reference_model == "big" and explored.tier == "LOCAL"
    assert explored.signals.has_logprobs and explored.signals.token_count == 12
    assert explored.signals.mean_logprob == pytest.approx(-0.8) and explored.signals.min_logprob == pytest.approx(-2.5)
    assert explored.signals.low_prob_token_share == pytest.approx(0.3)
    assert explored.prior == pytest.approx(0.31) and explored.confidence == pytest.approx(0.42)
    assert list(explored.prompt_form) == pytest.approx([0.7, 0.9])
    assert live.score == 1.0 and live.reference_model == "ref" and live.prior == pytest.approx(0.8)
    assert live.outcome == "ANSWERED" and list(live.prompt_form) == pytest.approx([0.1, 0.2])


def test_explored_verdicts_are_the_judged_models_own_and_need_their_run(engine: Engine) -> None:
    _plant(engine)
    # by default the workload's busiest LOCAL model: `small` (only its live answers count)
    assert [a.request_id for a in judged_answers(engine, "sums", "", SINCE, 0).answers] == ["r2", "r1"]
    tiny = judged_answers(engine, "sums", "tiny", SINCE, 0)
    assert [a.request_id for a in tiny.answers] == ["r5"] and tiny.answers[0].prior == pytest.approx(0.31)
    assert judged_answers(engine, "other", "small", SINCE, 0).answers == []
    assert [a.request_id for a in judged_answers(engine, "sums", "small", SINCE, 1).answers] == ["r2"]
    older = judged_answers(engine, "sums", "small", NOW - timedelta(days=4), 0)
    assert [a.request_id for a in older.answers] == ["r2", "r1", "r6"]


def test_an_exploration_run_as_the_router_bills_it_and_its_verdict_as_stored_are_joined(engine: Engine) -> None:
    """The rows as the ledger's ingest makes them: the run's attempt billed by the router
    (router/_shadow.py `billed`, under the event id its exploration gives) and priced, and the
    assessor's QualityScored (the cheap model judged, the live one its reference)."""
    from tierlift.core.catalog import load_catalog
    from tierlift.core.config import DEFAULT_CATALOG
    from tierlift.ledger import price_attempt
    from tierlift.ledger._quality import score_row
    from tierlift.router._shadow import EXPLORATION_REASON, billed
    from tierlift.v1 import common_pb2, events_pb2, router_pb2

    catalog = load_catalog(DEFAULT_CATALOG)
    cheap, live = catalog.get("gemma-3-270m-cpu"), catalog.get("gpt-5-mini")
    assert cheap is not None and live is not None
    request = router_pb2.CompleteRequest(tenant="acme", workload="sums")
    run = router_pb2.Attempt(
        index=0, tier=cheap.tier_value, model=cheap.id, adapter=cheap.adapter, outcome=router_pb2.OUTCOME_ANSWERED,
        usage=common_pb2.Usage(input_tokens=20, output_tokens=4), reason=EXPLORATION_REASON, prior=0.27,
        confidence=0.35, signals=common_pb2.ConfidenceSignals(has_logprobs=True, mean_logprob=-0.9, min_logprob=-3.0,
                                                               low_prob_token_share=0.5, token_count=4),
    )  # fmt: skip
    event = billed("req-7", request, run, f"req-7.explore.{cheap.id}")
    event.occurred_at.FromDatetime(NOW)
    scored = events_pb2.QualityScored(
        event_id=f"req-7.explore.{cheap.id}.finished.scored", request_id="req-7", tenant="acme", workload="sums",
        model=cheap.id, reference_model=live.id, method="normalised", score=1.0, source="explore",
    )  # fmt: skip
    scored.occurred_at.FromDatetime(NOW)
    with engine.begin() as conn:
        conn.execute(insert(attempts), [price_attempt(event, catalog)])
        conn.execute(insert(quality_scores), [score_row(scored.SerializeToString())])
    (answer,) = judged_answers(engine, "sums", cheap.id, SINCE, 0).answers
    assert (answer.request_id, answer.score, answer.reference_model, answer.tier) == ("req-7", 1.0, live.id, "LOCAL")
    assert answer.prior == pytest.approx(0.27) and answer.confidence == pytest.approx(0.35)
    assert answer.signals.has_logprobs and answer.signals.token_count == 4
    assert answer.signals.low_prob_token_share == pytest.approx(0.5)
