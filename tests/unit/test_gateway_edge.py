"""The HTTP edge's own guards, over real HTTP (aiohttp's test server; the router is a stand-in):
a key that cannot be a key, a body that cannot be read or never arrives, and anything a handler
did not expect all answer in the caller's API's error schema, never aiohttp's plain-text 500."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tierlift.gateway import _app
from tierlift.v1 import router_pb2

CHAT = {"model": "tierlift/auto", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "tierlift/auto", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


class Router:
    """Stands in for the router: lists no models, and fails a completion as nothing expects."""

    async def ListModels(self, _request: Any, **_options: Any) -> router_pb2.ModelList:
        return router_pb2.ModelList()

    async def Complete(self, _request: Any, **_options: Any) -> Any:
        raise RuntimeError("an internal detail the caller must not see")


@pytest.fixture
async def edge() -> AsyncIterator[TestServer]:
    server = TestServer(_app.build_app(Router(), 5.0, []))  # type: ignore[arg-type]
    await server.start_server()
    yield server
    await server.close()


async def _post(edge: TestServer, path: str, body: bytes, **headers: str) -> tuple[int, dict[str, Any]]:
    async with ClientSession() as session:
        url = edge.make_url(path)
        async with session.post(url, data=body, headers={"Content-Type": "application/json", **headers}) as reply:
            return reply.status, await reply.json(content_type=None)


@pytest.mark.parametrize("header", ["Authorization", "x-api-key"])
async def test_a_key_that_is_not_ascii_is_a_401_in_the_callers_schema(edge: TestServer, header: str) -> None:
    key = "Bearer tl_\u00e9" if header == "Authorization" else "tl_\u00e9"
    status, body = await _post(edge, "/v1/chat/completions", json.dumps(CHAT).encode(), **{header: key})
    assert status == 401 and body["error"]["type"] == "authentication_error" and header in body["error"]["message"]
    status, body = await _post(edge, "/v1/messages", json.dumps(MESSAGES).encode(), **{header: key})
    assert status == 401 and body["type"] == "error" and body["error"]["type"] == "authentication_error"


async def test_a_trace_context_that_is_not_ascii_is_dropped_not_a_failure(edge: TestServer) -> None:
    async with ClientSession() as session:
        headers = {"Authorization": "Bearer tl_x", "traceparent": "00-\u00e9", "tracestate": "a=\u00e9"}
        async with session.get(edge.make_url("/v1/models"), headers=headers) as reply:
            assert reply.status == 200, await reply.text()


@pytest.mark.parametrize(
    ("headers", "body", "param"),
    [
        ({"Content-Type": "application/json; charset=nope"}, json.dumps(CHAT).encode(), "Content-Type"),
        ({"Content-Encoding": "gzip"}, b"\x1f\x8b not gzip at all", "body"),
        ({"Content-Encoding": "deflate"}, b"not deflate", "body"),
        ({"Content-Type": "application/json; charset=utf-16"}, b"\xff", "body"),
    ],
)
async def test_a_body_that_cannot_be_read_is_a_400_naming_what(
    edge: TestServer, headers: dict[str, str], body: bytes, param: str
) -> None:
    status, answer = await _post(edge, "/v1/chat/completions", body, **headers)
    assert (status, answer["error"]["param"]) == (400, param), answer


async def test_a_body_that_stops_arriving_is_refused_after_the_body_timeout(
    edge: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_app, "BODY_TIMEOUT_S", 0.3)
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 500\r\n\r\n{")  # fmt: skip
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408"), head


@pytest.mark.parametrize(("path", "body"), [("/v1/chat/completions", CHAT), ("/v1/messages", MESSAGES)])
async def test_what_a_handler_did_not_expect_is_a_500_in_the_callers_schema_naming_no_internals(
    edge: TestServer, path: str, body: dict[str, Any]
) -> None:
    status, answer = await _post(edge, path, json.dumps(body).encode(), Authorization="Bearer tl_x")
    assert status == 500
    assert "internal detail" not in json.dumps(answer) and "logged" in answer["error"]["message"]
    assert ("type" in answer) == (path == "/v1/messages")  # Anthropic's schema: {"type": "error", ...}
