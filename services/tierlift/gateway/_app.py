"""The gateway's HTTP handlers (aiohttp): POST /v1/chat/completions (JSON or SSE), POST
/v1/messages (Anthropic's Messages API, JSON or its SSE events), POST /v1/responses (OpenAI's
Responses API, stateless, JSON or its typed SSE events), POST /v1/embeddings, GET /v1/models and
/v1/models/{id}, GET /health. The caller's `Authorization: Bearer` key travels to
the router as gRPC metadata: the router authenticates it and takes the tenant from it. The
models are the router's answer too (`Router.ListModels`), so a caller without a valid key gets
401 there as everywhere but /health."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import grpc
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from tierlift.core.logging import get_logger
from tierlift.gateway import _anthropic as ant
from tierlift.gateway import _embeddings as emb
from tierlift.gateway import _openai as oai
from tierlift.gateway import _responses as rsp
from tierlift.gateway._names import callers_terms
from tierlift.v1 import router_pb2, router_pb2_grpc

log = get_logger(__name__)
MAX_BODY = 8 * 1024 * 1024
# a body that stops arriving (a client that sends its headers and then trickles or nothing) is
# refused after this long, rather than holding a connection and a handler without end
BODY_TIMEOUT_S = 30.0
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
ROUTER = web.AppKey("router", router_pb2_grpc.RouterStub)
TIMEOUT_S = web.AppKey("timeout_s", float)
# catalog model ids a caller may pin: a chat completion naming another is refused here (404)
CATALOG = web.AppKey("catalog", tuple[str, ...])


def _from_rpc(exc: grpc.aio.AioRpcError, request: web.Request) -> oai.OpenAIError:
    """The router's error as the caller's API has it, its field named as the caller sent it."""
    hint = next((str(v) for k, v in (exc.trailing_metadata() or ()) if k == "retry-after"), None)
    return oai.from_grpc(exc.code(), callers_terms(request.path, exc.details() or ""), hint)


def _error(exc: oai.OpenAIError) -> web.Response:
    headers = {"Retry-After": exc.retry_after} if exc.retry_after else {}
    return web.json_response(exc.body(), status=exc.status, headers=headers)


_PASSED_ON = ("traceparent", "tracestate")  # W3C trace context: the router's span joins the caller's trace


def _header_value(value: str) -> bool:
    """Whether a header can travel as gRPC metadata: printable ASCII (RFC 9110 allows other
    bytes, which aiohttp reads as Latin-1; no key or trace context holds them)."""
    return value.isascii() and value.isprintable()


def _metadata(request: web.Request) -> tuple[tuple[str, str], ...]:
    """The caller's key (a Bearer token, or Anthropic's `x-api-key`) and trace context, as gRPC
    metadata for the router. A trace context that is not ASCII is dropped, as W3C Trace Context
    says an unreadable one is (a key that is not ASCII is refused first, by `caller_headers`)."""
    pairs = [(name, value) for name in _PASSED_ON if (value := request.headers.get(name)) and _header_value(value)]
    if auth := request.headers.get("Authorization", ""):
        pairs.append(("authorization", auth))
    elif key := request.headers.get("x-api-key", ""):
        pairs.append(("authorization", f"Bearer {key}"))
    return tuple(pairs)


async def _json_body(request: web.Request) -> Any:
    """The parsed body; an OpenAIError (the caller's protocol maps it) when it is not JSON, not
    readable (an unknown charset, a broken compression), or not all there within BODY_TIMEOUT_S."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise oai.OpenAIError(413, f"body: larger than {MAX_BODY} bytes", "invalid_request_error", "body")
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            text = await request.text()
    except TimeoutError:
        raise oai.OpenAIError(408, f"body: not received within {BODY_TIMEOUT_S:.0f} s", "invalid_request_error",
                              "body") from None  # fmt: skip
    except LookupError:
        raise oai.invalid("Content-Type", f"charset {request.charset!r} is not one this server reads") from None
    except UnicodeDecodeError:
        raise oai.invalid("body", f"is not valid {request.charset or 'UTF-8'} text") from None
    except (HttpProcessingError, RequestPayloadError) as exc:  # a compression that does not decompress
        cause = exc.__cause__ if isinstance(exc, RequestPayloadError) and exc.__cause__ else exc
        raise oai.invalid("body", f"cannot be read ({type(cause).__name__})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise oai.invalid("body", "is not valid JSON") from None
    except (ValueError, RecursionError):  # valid JSON Python will not read
        raise oai.invalid("body", "nests too deep or holds a number too long to read") from None


def _anthropic_error(error: ant.AnthropicError) -> web.Response:
    headers = {"Retry-After": error.retry_after} if error.retry_after else {}
    return web.json_response(error.body(), status=error.status, headers=headers)


async def messages(request: web.Request) -> web.StreamResponse:
    """Anthropic's Messages API on the same router (gateway/_anthropic.py)."""
    try:
        try:
            body = await _json_body(request)
        except oai.OpenAIError as exc:
            raise ant.from_openai(exc) from None
        pinnable: tuple[str, ...] = request.app[CATALOG]
        completion, stream = ant.to_request(body, request.headers, pinnable)
    except ant.AnthropicError as exc:
        return _anthropic_error(exc)
    if stream:
        return await _anthropic_stream(request, request.app[ROUTER], completion, request.app[TIMEOUT_S])
    return await _answer(request, completion, ant.message, lambda exc: _anthropic_error(ant.from_openai(exc)))


async def _anthropic_stream(
    request: web.Request, router: router_pb2_grpc.RouterStub, completion: router_pb2.CompleteRequest, deadline_s: float
) -> web.StreamResponse:
    call = router.CompleteStream(completion, timeout=deadline_s, metadata=_metadata(request))
    response: web.StreamResponse | None = None
    text_open = False
    try:
        async for piece in call:
            if response is None:
                response = web.StreamResponse(headers=_SSE_HEADERS)
                await response.prepare(request)
                await _event(
                    response, "message_start", ant.message_start(piece.request_id, piece.model or piece.final.model)
                )
            if piece.text and not text_open:
                block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
                await _event(response, "content_block_start", block)
                text_open = True
            if piece.text:
                delta = {"type": "text_delta", "text": piece.text}
                await _event(
                    response, "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
                )
            if piece.HasField("final"):
                for name, payload in ant.closing_events(piece.final, text_open):
                    await _event(response, name, payload)
    except grpc.aio.AioRpcError as exc:
        error = ant.from_openai(_from_rpc(exc, request))
        if response is None:
            return _anthropic_error(error)
        await _event(response, "error", error.body())
    assert response is not None
    await response.write_eof()
    return response


async def responses(request: web.Request) -> web.StreamResponse:
    """OpenAI's Responses API, stateless, on the same router (gateway/_responses.py)."""
    try:
        pinnable: tuple[str, ...] = request.app[CATALOG]
        completion, stream = rsp.to_request(await _json_body(request), request.headers, pinnable)
    except oai.OpenAIError as exc:
        return _error(exc)
    if not stream:
        return await _answer(request, completion, lambda reply: rsp.response(reply, completion))
    router, timeout = request.app[ROUTER], request.app[TIMEOUT_S]
    call = router.CompleteStream(completion, timeout=timeout, metadata=_metadata(request))
    events = rsp.StreamEvents(completion)
    response: web.StreamResponse | None = None
    try:
        async for piece in call:
            if response is None:
                response = web.StreamResponse(headers=_SSE_HEADERS)
                await response.prepare(request)
                for name, payload in events.started(piece.request_id, piece.model or piece.final.model):
                    await _event(response, name, payload)
            for name, payload in events.text(piece.request_id, piece.text) if piece.text else ():
                await _event(response, name, payload)
            for name, payload in events.finished(piece.final) if piece.HasField("final") else ():
                await _event(response, name, payload)
    except grpc.aio.AioRpcError as exc:
        error = _from_rpc(exc, request)
        if response is None:
            return _error(error)
        await _event(response, "error", {"type": "error", "code": error.code, "message": error.message,
                                          "param": error.param, "sequence_number": events.sequence})  # fmt: skip
    assert response is not None
    await response.write_eof()
    return response


async def _event(response: web.StreamResponse, name: str, payload: dict[str, Any]) -> None:
    await response.write(f"event: {name}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode())


async def chat_completions(request: web.Request) -> web.StreamResponse:
    try:
        pinnable: tuple[str, ...] = request.app[CATALOG]
        completion, _model, stream, include_usage = oai.to_request(await _json_body(request), request.headers, pinnable)
    except oai.OpenAIError as exc:
        return _error(exc)
    if not stream:
        return await _answer(request, completion, oai.completion)
    return await _stream(request, request.app[ROUTER], completion, request.app[TIMEOUT_S], include_usage)


async def embeddings(request: web.Request) -> web.Response:
    """OpenAI's embeddings on Router.Embed: the same policy, data-class limits and ledger."""
    try:
        pinnable: tuple[str, ...] = request.app[CATALOG]
        embed, encoding = emb.to_request(await _json_body(request), request.headers, pinnable)
        reply = await request.app[ROUTER].Embed(embed, timeout=request.app[TIMEOUT_S], metadata=_metadata(request))
    except oai.OpenAIError as exc:
        return _error(exc)
    except grpc.aio.AioRpcError as exc:
        return _error(_from_rpc(exc, request))
    return web.json_response(emb.embeddings(reply, encoding), headers={"x-tierlift-request-id": reply.request_id,
                             "x-tierlift-model": reply.model, "x-tierlift-cost-usd": reply.total_cost_usd})  # fmt: skip


async def _answer(
    request: web.Request,
    completion: router_pb2.CompleteRequest,
    render: Callable[[router_pb2.CompleteResponse], dict[str, Any]],
    error: Callable[[oai.OpenAIError], web.Response] = lambda exc: _error(exc),
) -> web.Response:
    """One routed answer, rendered in the caller's protocol, with the story in headers."""
    try:
        reply = await request.app[ROUTER].Complete(
            completion, timeout=request.app[TIMEOUT_S], metadata=_metadata(request)
        )
    except grpc.aio.AioRpcError as exc:
        return error(_from_rpc(exc, request))
    return web.json_response(render(reply), headers=oai.story_headers(reply))


async def _stream(
    request: web.Request,
    router: router_pb2_grpc.RouterStub,
    completion: router_pb2.CompleteRequest,
    deadline_s: float,
    include_usage: bool,
) -> web.StreamResponse:
    call = router.CompleteStream(completion, timeout=deadline_s, metadata=_metadata(request))
    response: web.StreamResponse | None = None
    try:
        async for piece in call:
            # every chunk carries the request's id and the model streaming it, as OpenAI's do
            request_id, model = piece.request_id, piece.model or piece.final.model
            if response is None:  # the first chunk: the request was accepted, headers can go
                response = web.StreamResponse(
                    headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
                )
                await response.prepare(request)
                await _send(response, oai.chunk(request_id, model, {"role": "assistant", "content": ""}))
            if piece.HasField("final"):
                reply = piece.final
                if reply.tool_calls:  # whole calls in one delta: the SDKs join deltas by index alike
                    calls = [{"index": i, **c} for i, c in enumerate(oai.tool_calls(reply.tool_calls))]
                    await _send(response, oai.chunk(request_id, model, {"tool_calls": calls}))
                finish = oai.chunk(request_id, model, {}, oai.finish_reason(reply))
                await _send(response, finish | {"tierlift": oai.story_headers(reply)})
                if include_usage:
                    await _send(response, oai.usage_chunk(reply))
            elif piece.text:
                await _send(response, oai.chunk(request_id, model, {"content": piece.text}))
    except grpc.aio.AioRpcError as exc:
        error = _from_rpc(exc, request)
        if response is None:
            return _error(error)
        await _send(response, error.body())  # after the headers: the error goes in the stream
    assert response is not None
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def _send(response: web.StreamResponse, payload: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode())


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "tierlift"}


_LIST_TIMEOUT_S = 10.0


async def _catalog_models(request: web.Request) -> list[str]:
    """The catalog's models, asked of the router on the caller's key (which it authenticates)."""
    try:
        reply = await request.app[ROUTER].ListModels(
            router_pb2.ListModelsRequest(), timeout=_LIST_TIMEOUT_S, metadata=_metadata(request)
        )
    except grpc.aio.AioRpcError as exc:
        raise _from_rpc(exc, request) from None
    return list(reply.models)


async def models(request: web.Request) -> web.Response:
    try:
        catalog = await _catalog_models(request)
    except oai.OpenAIError as exc:
        return _error(exc)
    return web.json_response({"object": "list", "data": [_model(n) for n in (*oai.MODELS, *catalog)]})


async def model(request: web.Request) -> web.Response:
    """One model, as `client.models.retrieve(id)` asks (ids may hold a '/': tierlift/auto)."""
    try:
        catalog = await _catalog_models(request)
        return web.json_response(_model(oai.known_model(request.match_info["model"], catalog)))
    except oai.OpenAIError as exc:
        return _error(exc)


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _in_callers_schema(request: web.Request, error: oai.OpenAIError) -> web.Response:
    """An error in the schema of the API the caller speaks: Anthropic's on /v1/messages, else OpenAI's."""
    return _anthropic_error(ant.from_openai(error)) if request.path == "/v1/messages" else _error(error)


def caller_headers(request: web.Request) -> oai.OpenAIError | None:
    """A key that cannot be a key (not printable ASCII) is a 401 here, before anything reads it."""
    for name in ("Authorization", "x-api-key"):
        if name in request.headers and not _header_value(request.headers[name]):
            return oai.OpenAIError(401, f"{name}: holds characters no API key has", "authentication_error",
                                   code="invalid_api_key")  # fmt: skip
    return None


@web.middleware
async def openai_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error in the caller's API's schema, as the SDKs expect, never plain text: aiohttp's
    own refusals (no such path, another method, a body over the limit); a key that cannot be one;
    and, as the last guard, anything a handler did not expect (a 500 that names no internals, its
    traceback in the log)."""
    if (refused := caller_headers(request)) is not None:
        return _in_callers_schema(request, refused)
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = {404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error"}.get(exc.status)
        message = {
            404: f"no route {request.method} {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"body: larger than {MAX_BODY} bytes",
        }.get(exc.status, exc.reason)
        error = oai.OpenAIError(exc.status, message, kind or "api_error", "body" if exc.status == 413 else None)
        return _in_callers_schema(request, error)
    except ConnectionResetError:  # the caller left mid-body: nobody to answer, nothing to log
        return web.Response(status=400)
    except Exception:
        log.exception("request_failed_unexpectedly", method=request.method, path=request.path)
        error = oai.OpenAIError(500, "the gateway failed on this request; it is logged", "api_error")
        return _in_callers_schema(request, error)


def build_app(router: router_pb2_grpc.RouterStub, timeout_s: float, catalog_models: list[str]) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[openai_errors])
    app[ROUTER], app[TIMEOUT_S], app[CATALOG] = router, timeout_s, tuple(catalog_models)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/responses", responses)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model:.+}", model)
    app.router.add_get("/health", health)
    return app
