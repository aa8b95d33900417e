"""The OpenAI chat-completions protocol over one pooled aiohttp session per endpoint.

Why not the `openai` SDK on the request path: measured at 16 concurrent calls against an
instant upstream, one `chat.completions.create` costs ~1.15 ms of CPU (request transforms,
response models, httpx), a plain aiohttp POST with `json` parsing ~0.1 ms; the adapter is on
every request's path. What the SDK sends is the reference: `tests/integration/
test_openai_http.py` sends the same requests through the SDK and through this client to the
wire server and compares the bodies, paths and headers that reach it.

This module speaks HTTP only: a non-2xx answer raises `ProviderHTTPError` (status, headers,
the provider's error type and message), and network failures raise aiohttp's exceptions;
retrying and mapping to gRPC statuses are the backend's (`openai_compat.py`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp

# An error body is read for its message; more is never needed and a hostile one could be huge.
MAX_ERROR_BODY = 64 * 1024
# A chat completion this large is no answer we can use (a broken or hostile server): refused,
# not held in memory. Output limits keep real answers far below it.
MAX_ANSWER_BODY = 32 * 1024 * 1024
# Connections open to one endpoint at most, as the openai SDK allows: a burst of requests beyond
# it waits for a free connection instead of opening one each (file descriptors, and providers
# that cap connections per client).
MAX_CONNECTIONS = 1000


class ProviderHTTPError(Exception):
    """The provider answered with a non-2xx status (or a stream carried an error event)."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = dict(headers)
        self.kind, self.message = "", body.decode("utf-8", "replace")
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or JSON Python will not read
            parsed = None
        error = parsed.get("error", parsed) if isinstance(parsed, dict) else None
        if isinstance(error, dict):
            self.kind = str(error.get("type") or error.get("code") or "")
            self.message = str(error.get("message") or self.message)
        super().__init__(f"HTTP {status}: {self.message}")


class MalformedAnswer(Exception):
    """The provider answered 2xx with something that is not a chat completion."""


class ChatCompletionsHTTP:
    """POSTs chat-completion bodies to one endpoint. `timeout_s` bounds connecting and each read
    (as the SDK's httpx timeout does), not a whole stream."""

    def __init__(self, headers: Mapping[str, str], timeout_s: float) -> None:
        self._headers = {"Content-Type": "application/json", "Accept": "application/json", **headers}
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        # made on first use: a session belongs to the running event loop
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers=self._headers,
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=30),
                skip_auto_headers=("User-Agent",),
                raise_for_status=False,
            )
        return self._session

    async def create(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        """The parsed chat completion."""
        async with self._open_session().post(url, data=json.dumps(body)) as reply:
            if reply.status >= 300:
                raise ProviderHTTPError(reply.status, reply.headers, await _at_most(reply, MAX_ERROR_BODY))
            answer = await _at_most(reply, MAX_ANSWER_BODY + 1)
            if len(answer) > MAX_ANSWER_BODY:
                raise MalformedAnswer(f"answer: larger than {MAX_ANSWER_BODY} bytes")
            return _json_object(answer, "answer")

    async def open_stream(self, url: str, body: dict[str, Any]) -> aiohttp.ClientResponse:
        """The response of a streamed completion whose status said yes; read it with `events`."""
        reply = await self._open_session().post(url, data=json.dumps(body), headers={"Accept": "text/event-stream"})
        if reply.status >= 300:
            try:
                raise ProviderHTTPError(reply.status, reply.headers, await _at_most(reply, MAX_ERROR_BODY))
            finally:
                reply.release()
        return reply

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def events(reply: aiohttp.ClientResponse) -> AsyncGenerator[dict[str, Any], None]:
    """The JSON objects of a server-sent-event stream until `[DONE]` or its end; the response is
    released afterwards. An `error` object in the stream is the provider's error."""
    data: list[str] = []
    try:
        async for raw in reply.content:
            line = raw.decode("utf-8").rstrip("\r\n")
            if line:
                if line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
                continue  # comments (":"), event: and id: fields carry nothing we use
            if not data:
                continue
            payload, data = "\n".join(data), []
            if payload == "[DONE]":
                return
            event = _json_object(payload.encode(), "stream event")
            if "error" in event:
                raise ProviderHTTPError(reply.status, reply.headers, payload.encode())
            yield event
    finally:
        reply.release()


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nesting past Python's limit, from a provider
        raise MalformedAnswer(f"{what} is not JSON this adapter reads: {data[:80]!r}") from None
    if not isinstance(parsed, dict):
        raise MalformedAnswer(f"{what} is not a JSON object: {data[:80]!r}")
    return parsed


async def _at_most(reply: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, up to `limit` bytes (one read returns only what has arrived)."""
    pieces, size = [], 0
    while size < limit and (piece := await reply.content.read(limit - size)):
        pieces.append(piece)
        size += len(piece)
    return b"".join(pieces)
