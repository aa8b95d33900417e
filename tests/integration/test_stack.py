"""One real request through router -> classifier -> llama.cpp adapter -> JetStream -> ledger."""

from __future__ import annotations

import re
import time
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from tests.topology import own_process
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc

CATALOG = load_catalog(DEFAULT_CATALOG)


def ask(text: str, tenant: str = "acme", **fields: object) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        tenant=tenant,
        workload="faq",
        messages=[common_pb2.Message(role="user", content=text)],
        params=common_pb2.GenerationParams(max_tokens=16),
        **fields,  # type: ignore[arg-type]
    )


def wait_for_ledger(ledger: ledger_pb2_grpc.LedgerStub, request_id: str, count: int) -> list[ledger_pb2.LedgerAttempt]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = list(ledger.ListAttempts(ledger_pb2.AttemptQuery(request_id=request_id)).attempts)
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"ledger did not record {count} attempts of {request_id} within 20s")


def test_local_model_answers_and_the_ledger_prices_the_attempt(
    router: router_pb2_grpc.RouterStub, ledger: ledger_pb2_grpc.LedgerStub
) -> None:
    reply = router.Complete(ask("What is the capital of France?"), timeout=120)
    assert reply.tier == common_pb2.TIER_LOCAL and reply.model == "gemma-3-270m-cpu"
    assert "paris" in reply.text.lower()
    assert 0.0 < reply.confidence <= 1.0
    [attempt] = reply.attempts
    assert attempt.usage.input_tokens > 0 and attempt.usage.output_tokens > 0

    [row] = wait_for_ledger(ledger, reply.request_id, 1)
    gemma = CATALOG.get("gemma-3-270m-cpu")
    assert gemma is not None
    expected = gemma.cost(attempt.usage.input_tokens, attempt.usage.output_tokens)
    assert Decimal(row.cost_usd) == expected == Decimal(attempt.cost_usd) > 0
    assert (row.tier, row.model, row.outcome) == (common_pb2.TIER_LOCAL, "gemma-3-270m-cpu", "ANSWERED")
    assert (row.input_tokens, row.output_tokens) == (attempt.usage.input_tokens, attempt.usage.output_tokens)
    assert row.price_version == CATALOG.version

    spend = ledger.GetSpend(ledger_pb2.SpendQuery(tenant="acme"))
    assert Decimal(spend.total_cost_usd) >= expected


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (router_pb2.CompleteRequest(tenant="acme", workload="faq"), "messages"),
        (ask("hello", tenant="ACME Corp!"), "tenant"),
        (ask("word " * 20_000), "messages"),
    ],
    ids=["empty-messages", "bad-tenant", "oversized-prompt"],
)
def test_bad_input_is_invalid_argument_naming_the_field_and_the_stack_keeps_serving(
    router: router_pb2_grpc.RouterStub, request_: router_pb2.CompleteRequest, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        router.Complete(request_, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert err.value.details().startswith(f"{field}: ")  # type: ignore[attr-defined]
    assert router.Complete(ask("What is 2 + 2?"), timeout=120).text


def test_stream_returns_text_then_the_priced_story(router: router_pb2_grpc.RouterStub) -> None:
    chunks = list(router.CompleteStream(ask("What is the capital of Italy?"), timeout=120))
    text = "".join(c.text for c in chunks[:-1])
    final = chunks[-1].final
    assert text.strip() == final.text
    assert final.attempts[0].usage.output_tokens > 0
    assert not final.attempts[0].usage_estimated  # llama.cpp counts a stream's tokens itself
    assert Decimal(final.total_cost_usd) > 0


def test_adapter_down_is_unavailable_with_its_name_then_recovers(
    stack: Stack, router: router_pb2_grpc.RouterStub
) -> None:
    own_process(stack, "adapter-llamacpp-local")
    assert stack.stop_service("adapter-llamacpp-local") == 0  # SIGTERM drains and exits 0
    try:
        with pytest.raises(grpc.RpcError) as err:
            router.Complete(ask("What is the capital of Spain?"), timeout=30)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        assert "llamacpp-local" in err.value.details()  # type: ignore[attr-defined]

        with pytest.raises(grpc.RpcError) as err:
            router.Complete(ask("My SSN is 123-45-6789, what should I do?"), timeout=30)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    finally:
        # Same port, so the router's channel reconnects.
        port = int(stack.addrs["adapter-llamacpp-local"].rsplit(":", 1)[1])
        stack.start_service("adapter-llamacpp-local", port=port)
    assert _answers_within(router, ask("What is the capital of Spain?"), seconds=15)


def _answers_within(router: router_pb2_grpc.RouterStub, request: router_pb2.CompleteRequest, seconds: float) -> bool:
    """The router's channel reconnects with a short backoff; until then requests fail fast."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return bool(router.Complete(request, timeout=120).text)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:  # type: ignore[attr-defined]
                raise
            time.sleep(0.2)


def test_cli_reports_budgets_and_advice_against_the_running_ledger(
    stack: Stack, router: router_pb2_grpc.RouterStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tierlift.cli import main

    router.Complete(ask("What is the capital of Germany?", tenant="cli-test"), timeout=120)
    ledger = ["--ledger", stack.addrs["ledger"], "--key", stack.keys["admin"]]
    deadline = time.monotonic() + 20
    while main(["report", "--tenant", "cli-test", "--csv", str(tmp_path / "r.csv"), "--html", str(tmp_path / "r.html"),
                *ledger]) == 0 and len((tmp_path / "r.csv").read_text().splitlines()) < 2:  # fmt: skip
        assert time.monotonic() < deadline, "the attempt did not reach the report"
        time.sleep(0.2)
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert rows[0].startswith("day,tier,attempts,input_tokens,output_tokens,cost_usd,cache_read_tokens,")
    assert ",LOCAL,1," in rows[1]
    assert "<svg" in (tmp_path / "r.html").read_text()

    assert main(["budget", "set", "--tenant", "cli-test", "--period", "day", "--limit", "5", *ledger]) == 0
    assert main(["budget", "list", "--tenant", "cli-test", *ledger]) == 0
    listed = re.search(r"day\s+([\d.]+) of 5\.000000000000 USD\s+ok", capsys.readouterr().out)
    assert listed and Decimal(listed.group(1)) > 0  # the attempt counts against the budget

    assert main(["advise", "--tenant", "cli-test", *ledger]) == 0
    out = capsys.readouterr().out
    assert "measured over 1 day(s)" in out and "recommendation:" in out
    assert "gemma-3-270m-cpu (LOCAL, quality 0.60): 1 replica(s) of 2 vCPU" in out
    assert main(["advise", "--tenant", "cli-test", "--tokens-per-day", "5000000", *ledger]) == 0
    assert "what if: 5,000,000 tokens/day at that mix" in capsys.readouterr().out
