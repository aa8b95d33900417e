"""The OpenAI-compatible edge through the official `openai` SDK (sync, async, streaming) and raw
HTTP, against the real stack: answers, the story in headers, OpenAI-format errors with the HTTP
status the SDKs act on, and 16 concurrent clients without an error."""

from __future__ import annotations

import asyncio
import json
import secrets
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest

from tests.stack_keys import wait_until_router_knows
from tierlift.devstack import Stack
from tierlift.v1 import ledger_pb2, ledger_pb2_grpc

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


def client(stack: Stack, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.openai_base_url, api_key=key or stack.keys["app"], max_retries=0)


def test_without_an_exporter_the_callers_trace_reaches_the_router_logs(stack: Stack) -> None:
    """The session's stack exports no traces: the router's log lines for a request still carry
    the caller's trace id, under the router's own span id."""
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    raw = client(stack).chat.completions.with_raw_response.create(
        model="tierlift/auto", messages=FRANCE, max_tokens=8,
        extra_headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
    )  # fmt: skip
    request_id = raw.headers["x-tierlift-request-id"]
    answered = [json.loads(line) for line in stack.log_path("router").read_text().splitlines() if request_id in line]
    assert answered and all(line["trace_id"] == trace_id for line in answered)
    assert all(line["span_id"] != caller_span for line in answered)  # the router's own SERVER span


def test_the_sdk_gets_paris_with_the_story_in_the_headers(stack: Stack) -> None:
    raw = client(stack).chat.completions.with_raw_response.create(model="tierlift/auto", messages=FRANCE, max_tokens=8)
    reply = raw.parse()
    assert "Paris" in reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert raw.headers["x-tierlift-tier"] == "LOCAL" and raw.headers["x-tierlift-model"] == "gemma-3-270m-cpu"
    assert raw.headers["x-tierlift-attempts"] == "1" and raw.headers["x-tierlift-escalated"] == "false"
    assert float(raw.headers["x-tierlift-cost-usd"]) > 0
    # the request is in the ledger under the key's tenant, at the cost the header said
    with stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        request_id = raw.headers["x-tierlift-request-id"]
        for _ in range(100):
            if rows := ledger.ListAttempts(ledger_pb2.AttemptQuery(request_id=request_id), timeout=10).attempts:
                break
            asyncio.run(asyncio.sleep(0.1))
    assert rows[0].tenant == "dev" and rows[0].cost_usd == raw.headers["x-tierlift-cost-usd"]


def test_streaming_gives_the_same_answer_and_the_usage_chunk(stack: Stack) -> None:
    chunks = list(client(stack).chat.completions.create(
        model="tierlift/auto", messages=FRANCE, max_tokens=8, stream=True, stream_options={"include_usage": True}
    ))  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_the_async_sdk_at_16_concurrent_clients_sees_no_error(stack: Stack) -> None:
    async def run() -> list[str]:
        sdk = openai.AsyncOpenAI(base_url=stack.openai_base_url, api_key=stack.keys["app"], max_retries=0)
        async with sdk:

            async def one() -> str:
                reply = await sdk.chat.completions.create(model="tierlift/auto", messages=FRANCE, max_tokens=4)
                return reply.choices[0].message.content or ""

            return list(await asyncio.gather(*(one() for _ in range(32))))

    answers = asyncio.run(run())
    assert len(answers) == 32 and all("Paris" in a for a in answers)


def _status(stack: Stack, key: str, body: dict[str, Any] | bytes) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{stack.openai_base_url}/chat/completions", data=data, method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "tierlift/auto", "messages": FRANCE, "tools": [{"type": "function"}]}, 400, "tools[0]"),
        (
            {"model": "tierlift/auto", "messages": FRANCE, "response_format": {"type": "json_schema"}},
            400,
            "response_format",
        ),
        ({"model": "tierlift/auto", "messages": FRANCE, "seed": "7"}, 400, "seed"),
        ({"model": "tierlift/auto", "messages": FRANCE, "n": 3}, 400, "n"),
        ({"model": "tierlift/auto", "messages": FRANCE, "temperature": 9}, 400, "temperature"),
        ({"model": "tierlift/auto", "messages": []}, 400, "messages"),
        ({"model": "gpt-7", "messages": FRANCE}, 404, "model"),
        (b'{"model": "tierlift/auto", "messages": [', 400, "body"),
        # JSON that Python's reader refuses, not only bad JSON: nesting past its recursion limit,
        # a number of over 4,300 digits (both answered 500 before)
        (b"[" * 100_000 + b"]" * 100_000, 400, "body"),
        (b'{"model": "tierlift/auto", "max_tokens": ' + b"9" * 5_000 + b"}", 400, "body"),
    ],
)
def test_bad_requests_get_openai_errors_naming_the_parameter(
    stack: Stack, body: dict[str, Any] | bytes, status: int, param: str
) -> None:
    got, error = _status(stack, stack.keys["app"], body)
    assert got == status, error
    assert error["error"]["param"] == param and error["error"]["type"]


def test_a_bad_key_is_401_and_another_tenants_workload_is_403_through_the_sdk(stack: Stack) -> None:
    with pytest.raises(openai.AuthenticationError) as unauthenticated:
        client(stack, "tl_000000000000_nope").chat.completions.create(model="tierlift/auto", messages=FRANCE)
    assert unauthenticated.value.status_code == 401
    with stack.channel("ledger") as channel:
        limited = (
            ledger_pb2_grpc.LedgerStub(channel)
            .CreateKey(ledger_pb2.KeyRequest(tenant="tenant-g", role="app", workloads=["faq"]), timeout=10)
            .secret
        )
    wait_until_router_knows(stack, limited, "tenant-g")
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client(stack, limited).chat.completions.create(
            model="tierlift/auto", messages=FRANCE, extra_headers={"x-tierlift-workload": "payroll"}
        )
    assert denied.value.status_code == 403 and "workload" in str(denied.value)


def test_a_caller_may_pin_a_catalog_model_and_pass_a_seed(stack: Stack) -> None:
    sdk = client(stack)
    reply = sdk.chat.completions.create(
        model="gemma-3-270m-cpu", messages=FRANCE, max_tokens=8, seed=7, temperature=0.8
    )
    again = sdk.chat.completions.create(
        model="gemma-3-270m-cpu", messages=FRANCE, max_tokens=8, seed=7, temperature=0.8
    )
    assert reply.model == "gemma-3-270m-cpu" and reply.choices[0].message.content == again.choices[0].message.content
    with pytest.raises(openai.UnprocessableEntityError) as err:  # pinned to a model not deployed here
        sdk.chat.completions.create(model="gpt-5", messages=FRANCE, max_tokens=8)
    assert err.value.status_code == 422 and "not one of the models the request pinned" in str(err.value)


def test_a_tenant_named_in_a_header_cannot_override_the_keys_tenant(stack: Stack) -> None:
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client(stack).chat.completions.create(
            model="tierlift/auto", messages=FRANCE, extra_headers={"x-tierlift-tenant": "someone-else"}
        )
    assert "tenant" in str(denied.value)


def test_models_and_health(stack: Stack) -> None:
    names = [m.id for m in client(stack).models.list().data]
    assert names[0] == "tierlift/auto" and "tierlift/local-only" in names and "gemma-3-270m-cpu" in names
    for name in ("tierlift/auto", "gemma-3-270m-cpu"):
        assert client(stack).models.retrieve(name).id == name
    with pytest.raises(openai.NotFoundError) as missing:
        client(stack).models.retrieve("gpt-7")
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    with urllib.request.urlopen(f"http://{stack.addrs['gateway']}/health", timeout=10) as response:
        assert response.status == 200


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/tierlift/auto", "/v1/models/gpt-7"])
def test_the_models_are_listed_only_to_a_caller_with_a_valid_key(stack: Stack, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer tl_000000000000_nope"}):
        request = urllib.request.Request(f"http://{stack.addrs['gateway']}{path}", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
        assert json.loads(refused.value.read())["error"]["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        client(stack, "tl_000000000000_nope").models.list()


def _raw(stack: Stack, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    root = stack.openai_base_url.removesuffix("/v1")
    auth = {"Authorization": f"Bearer {stack.keys['app']}", **(headers or {})}
    request = urllib.request.Request(f"{root}{path}", data=body or None, method=method, headers=auth)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get("Content-Type"), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type"), json.loads(exc.read())


def test_the_edge_answers_in_openais_error_schema_everywhere(stack: Stack) -> None:
    """An unknown path, another method and an over-long body are JSON errors as OpenAI's (they
    were aiohttp's plain text); a lone surrogate is a 400 naming its field (it was a 500); an
    Idempotency-Key over 128 characters is a 400, not the 409 of a key reused."""
    status, kind, body = _raw(stack, "POST", "/v1/nothing-here", b"{}")
    assert (status, kind, body["error"]["type"]) == (404, "application/json; charset=utf-8", "not_found_error")
    status, _, body = _raw(stack, "GET", "/v1/chat/completions")
    assert status == 405 and "GET is not allowed" in body["error"]["message"]
    status, _, body = _raw(stack, "POST", "/v1/chat/completions", b"x" * (9 * 1024 * 1024),
                           {"Content-Type": "application/json"})  # fmt: skip
    assert status == 413 and body["error"]["param"] == "body"
    for field, body_ in (("messages[0].content", {"messages": [{"role": "user", "content": "hi \ud800"}]}),
                         ("stop", {"messages": FRANCE, "stop": "\udfff"}),
                         ("user", {"messages": FRANCE, "user": "a\ud800b"})):  # fmt: skip
        raw = json.dumps({"model": "tierlift/auto", **body_}).encode()  # json.dumps writes \ud800 as an escape
        status, answer = _status(stack, stack.keys["app"], raw)
        assert (status, answer["error"]["param"]) == (400, field), answer
    body = json.dumps({"model": "tierlift/auto", "messages": FRANCE}).encode()
    status, _, answer = _raw(stack, "POST", "/v1/chat/completions", body,
                             {"Content-Type": "application/json", "Idempotency-Key": "k" * 129})  # fmt: skip
    assert (status, answer["error"]["param"]) == (400, "idempotency_key"), answer
