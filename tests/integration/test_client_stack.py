"""The client library against the real stack: an answer with its story, streaming, a call that
retries through a router restart (one execution, one bill), a viewer's spend, typed errors."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from tierlift.client import Completion, InvalidRequest, PermissionDenied, Tierlift
from tierlift.devstack import Stack
from tierlift.v1 import ledger_pb2, ledger_pb2_grpc

FRANCE = "What is the capital of France?"


def client(stack: Stack, **kwargs: object) -> Tierlift:
    return Tierlift(stack.addrs["router"], api_key=stack.keys["app"], workload="client",
                    ledger_address=stack.addrs["ledger"], **kwargs)  # type: ignore[arg-type]  # fmt: skip


def attempts_of(stack: Stack, request_id: str) -> list[ledger_pb2.LedgerAttempt]:
    with stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        query = ledger_pb2.AttemptQuery(request_id=request_id)
        for _ in range(200):
            if ledger.ListAttempts(query, timeout=10).attempts:
                time.sleep(0.5)  # anything published twice would arrive now
                return list(ledger.ListAttempts(query, timeout=10).attempts)
            time.sleep(0.05)
    return []


def test_complete_and_stream(stack: Stack) -> None:
    with client(stack) as tl:
        answer = tl.complete(FRANCE, max_tokens=8)
        assert "Paris" in answer.text and answer.tier == "LOCAL" and isinstance(answer.cost_usd, Decimal)
        assert answer.attempts == 1 and answer.request_id
        pieces = list(tl.stream(FRANCE, max_tokens=8))
    assert isinstance(pieces[-1], Completion) and "Paris" in "".join(p for p in pieces[:-1] if isinstance(p, str))


def test_a_call_retried_through_a_router_restart_runs_and_bills_once(stack: Stack) -> None:
    port = int(stack.addrs["router"].rsplit(":", 1)[1])
    stack.stop_service("router")
    result: dict[str, Completion] = {}

    def call() -> None:
        with client(stack, max_attempts=40) as tl:
            result["answer"] = tl.complete("What is the capital of Italy?", max_tokens=8, timeout_s=120)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(1.0)  # the client meets UNAVAILABLE and backs off meanwhile
    stack.start_service("router", port=port)
    caller.join(120)
    answer = result["answer"]
    assert answer.text
    assert len(attempts_of(stack, answer.request_id)) == answer.attempts == 1


def test_a_viewer_reads_its_spend_and_errors_are_typed(stack: Stack) -> None:
    with stack.channel("ledger") as channel:
        viewer = (
            ledger_pb2_grpc.LedgerStub(channel)
            .CreateKey(ledger_pb2.KeyRequest(tenant="dev", role="viewer"), timeout=10)
            .secret
        )
    time.sleep(0.3)
    with Tierlift(stack.addrs["router"], api_key=viewer, ledger_address=stack.addrs["ledger"]) as tl:
        assert tl.spend().total_attempts >= 1
        with pytest.raises(PermissionDenied):
            tl.spend(tenant="someone-else")
    with client(stack) as tl, pytest.raises(InvalidRequest) as err:
        tl.complete(FRANCE, temperature=9.0)
    assert err.value.field == "params.temperature"


def test_feedback_on_an_answer_reaches_the_quality_report_once(stack: Stack) -> None:
    with client(stack) as tl:
        answer = tl.complete(FRANCE, max_tokens=8)
        first = tl.feedback(answer, "good", comment="right and short")
        assert tl.feedback(answer.request_id, "good", comment="right and short") == first  # a retry: the same event
        with pytest.raises(ValueError, match="rating"):
            tl.feedback(answer, "great")
        with pytest.raises(InvalidRequest) as err:
            tl.feedback("", "bad")
        assert err.value.field == "request_id"
    with stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        for _ in range(100):
            lines = ledger.GetQuality(ledger_pb2.QualityQuery(workload="client"), timeout=10).lines
            if any(line.feedback for line in lines):
                break
            time.sleep(0.1)
    [line] = [line for line in lines if line.feedback]
    assert (line.model, line.feedback, line.feedback_score) == (answer.model, 1, 1.0)
