"""The two topologies answer alike: the same request through the OpenAI edge and over gRPC, the
same billing in the ledger, the same refusals, whether each component is its own process
(`microservices`) or the request path is one process (`combined`, `tierlift serve`)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc

from tests.stack_keys import wait_until_router_knows
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc

CATALOG = load_catalog(DEFAULT_CATALOG)
PROMPT = "What is the capital of France?"


def _key(stack: Stack, tenant: str, role: str) -> str:
    with stack.channel("ledger") as channel:
        created = ledger_pb2_grpc.LedgerStub(channel).CreateKey(
            ledger_pb2.KeyRequest(tenant=tenant, role=role, description="topology test"), timeout=10
        )
    wait_until_router_knows(stack, created.secret, tenant)
    return created.secret


def _edge(stack: Stack, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(
        f"{stack.openai_base_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"} if key else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return reply.status, json.loads(reply.read()), dict(reply.headers)
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read()), dict(refused.headers)


def _billed(stack: Stack, request_id: str) -> tuple[Any, ...]:
    """The ledger's row of the request's one attempt, checked against the catalog's price."""
    with stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        deadline = time.monotonic() + 20
        while not (rows := list(ledger.ListAttempts(ledger_pb2.AttemptQuery(request_id=request_id)).attempts)):
            assert time.monotonic() < deadline, f"ledger did not bill {request_id}"
            time.sleep(0.1)
    [row] = rows
    model = CATALOG.get(row.model)
    assert model is not None
    assert Decimal(row.cost_usd) == model.cost(row.input_tokens, row.output_tokens) > 0
    return row.tier, row.model, row.outcome, row.tenant, row.price_version


def _code(call: Any) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def _observe(stack: Stack) -> dict[str, Any]:
    """What a caller sees of `stack`: answers, billing and refusals, in a form to compare."""
    seen: dict[str, Any] = {}
    app, other, viewer = stack.keys["app"], _key(stack, "other", "app"), _key(stack, "dev", "viewer")
    body = {"model": "tierlift/auto", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 16}
    status, answer, headers = _edge(stack, app, body)
    seen["edge_story"] = (headers.get("x-tierlift-tier"), headers.get("x-tierlift-model"))
    assert status == 200, answer
    seen["edge"] = (answer["model"], answer["choices"][0]["message"]["content"], answer["usage"])
    assert "paris" in seen["edge"][1].lower()
    seen["edge_billed"] = _billed(stack, answer["id"].removeprefix("chatcmpl-"))

    request = router_pb2.CompleteRequest(
        tenant="dev",
        workload="faq",
        messages=[common_pb2.Message(role="user", content=PROMPT)],
        params=common_pb2.GenerationParams(max_tokens=16),
    )
    with stack.channel("router", app) as channel:
        router = router_pb2_grpc.RouterStub(channel)
        reply = router.Complete(request, timeout=120)
        seen["grpc"] = (reply.tier, reply.model, reply.text, reply.usage.input_tokens, reply.usage.output_tokens)
        seen["grpc_billed"] = _billed(stack, reply.request_id)
        chunks = list(router.CompleteStream(request, timeout=120))
        assert chunks[-1].HasField("final")
        seen["grpc_stream"] = ("".join(c.text for c in chunks[:-1]), chunks[-1].final.model)
        seen["stream_billed"] = _billed(stack, chunks[-1].final.request_id)
    for name, key in (("other_tenant", other), ("viewer", viewer), ("no_key", "")):
        with stack.channel("router", key or "x") as channel:
            seen[f"grpc_{name}"] = _code(lambda: router_pb2_grpc.RouterStub(channel).Complete(request, timeout=30))
        status, error, _ = _edge(stack, key, body)
        seen[f"edge_{name}"] = (status, error.get("error", {}).get("type"))
    return seen


def test_combined_topology_answers_bills_and_refuses_as_microservices(tmp_path: Path) -> None:
    observed = {}
    for topology in ("microservices", "combined"):
        stack = Stack(tmp_path / topology, topology=topology)
        stack.state_dir.mkdir()
        stack.start()
        try:
            observed[topology] = _observe(stack)
        finally:
            codes = stack.stop()
        assert all(code == 0 for code in codes.values()), codes  # both stop gracefully
    microservices, combined = observed["microservices"], observed["combined"]
    assert combined["grpc_other_tenant"] == grpc.StatusCode.PERMISSION_DENIED
    assert combined["grpc_viewer"] == grpc.StatusCode.PERMISSION_DENIED
    assert combined["grpc_no_key"] == grpc.StatusCode.UNAUTHENTICATED
    assert combined == microservices
