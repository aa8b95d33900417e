"""Amazon Bedrock through the official `boto3` SDK: the Converse and ConverseStream APIs of
Bedrock Runtime (one request shape for Anthropic, Meta, Mistral, Amazon and Qwen models; the
stream in AWS's binary event-stream framing), usage from the provider. Bedrock gives no token
logprobs: the signals say so, and the router falls back on the tier's prior.

Bedrock is regional: each catalog entry names its AWS region (`cloud_region`, e.g.
eu-central-1 with an `eu.` cross-region inference profile as its `upstream_model`), and the
adapter keeps one client per region, so the request's region constraint, applied by the router
to catalog entries, also picks the endpoint. Credentials come from the standard AWS chain
(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, an IAM role for the pod).

boto3 is synchronous: calls run on the adapter's own thread pool, sized to the connection pool,
so a slow region cannot starve the event loop. Retries are botocore's standard mode: bounded,
exponential backoff with jitter on throttling (Bedrock's rate-limit signal is the
ThrottlingException; it sends no Retry-After), 5xx and dropped connections.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions
import grpc

from tierlift.adapters._backend import (
    BackendError,
    clients_by_region,
    description,
    final_chunk,
    provider_error,
    signals_from_logprobs,
    text_of,
    text_only,
)
from tierlift.core import pricing
from tierlift.core.catalog import Model
from tierlift.core.entry import StartupError
from tierlift.v1 import adapter_pb2, common_pb2

DEFAULT_MAX_TOKENS = 512
POOL = 32  # concurrent calls per adapter process: threads and HTTP connections per region
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
_CODES = {
    "ThrottlingException": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "ServiceQuotaExceededException": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "ValidationException": grpc.StatusCode.INVALID_ARGUMENT,
    "AccessDeniedException": grpc.StatusCode.PERMISSION_DENIED,
    "UnrecognizedClientException": grpc.StatusCode.UNAUTHENTICATED,
    "InvalidSignatureException": grpc.StatusCode.UNAUTHENTICATED,
    "ExpiredTokenException": grpc.StatusCode.UNAUTHENTICATED,
    "ResourceNotFoundException": grpc.StatusCode.NOT_FOUND,
    "ModelTimeoutException": grpc.StatusCode.DEADLINE_EXCEEDED,
}
_HTTP_STATUS = {400: grpc.StatusCode.INVALID_ARGUMENT, 403: grpc.StatusCode.PERMISSION_DENIED}

T = TypeVar("T")
_DONE = object()


class BedrockBackend:
    family = "bedrock"

    def __init__(self, adapter: str, models: Sequence[Model], timeout_s: float, max_retries: int) -> None:
        self.adapter = adapter
        self.models = {m.id: m for m in models}
        session = boto3.session.Session()
        if session.get_credentials() is None:
            raise StartupError(
                f"AWS credentials: none found for adapter {adapter} (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or give the pod an IAM role)"
            )
        config = botocore.config.Config(
            retries={"mode": "standard", "total_max_attempts": max_retries + 1},
            connect_timeout=min(timeout_s, 10.0),
            read_timeout=timeout_s,
            max_pool_connections=POOL,
        )
        self._client_of: dict[str, Any] = clients_by_region(
            adapter,
            models,
            # no endpoint: boto3 calls the region's own, https://bedrock-runtime.<region>.amazonaws.com
            lambda endpoint, region: session.client(
                "bedrock-runtime", region_name=region, endpoint_url=endpoint or None, config=config
            ),
            "AWS region",
        )
        self._pool = ThreadPoolExecutor(max_workers=POOL, thread_name_prefix=f"bedrock-{adapter}")

    def describe(self) -> adapter_pb2.AdapterDescription:
        return description(self.adapter, self.family, list(self.models.values()), api_gives_logprobs=False)

    def _args(self, request: adapter_pb2.GenerateRequest) -> dict[str, Any]:
        model = self.models[request.model]
        p = request.params
        # never dropped silently: the router moves on to a rung that can honour them
        if p.HasField("seed"):
            raise BackendError(grpc.StatusCode.INVALID_ARGUMENT, "params.seed: Bedrock's Converse API takes no seed")
        if p.response_format in ("json_object", "json_schema"):
            raise BackendError(
                grpc.StatusCode.INVALID_ARGUMENT, "params.response_format: Bedrock's Converse API has no JSON mode"
            )
        text_only(request, "the Bedrock adapter", tools=True)
        if p.tool_choice == "none":  # Converse's toolChoice has auto, any and one tool: no "none"
            raise BackendError(
                grpc.StatusCode.INVALID_ARGUMENT, "params.tool_choice: Bedrock's Converse API has no none"
            )
        inference: dict[str, Any] = {"maxTokens": p.max_tokens or DEFAULT_MAX_TOKENS, "temperature": p.temperature}
        if p.top_p:
            inference["topP"] = p.top_p
        if p.stop:
            inference["stopSequences"] = list(p.stop)
        args: dict[str, Any] = {
            "modelId": model.upstream_model or model.id,
            "messages": _turns(request.messages),
            "inferenceConfig": inference,
        }
        system = [{"text": text_of(m)} for m in request.messages if m.role == "system"]
        if system:
            args["system"] = system
        if p.tools:
            args["toolConfig"] = _tool_config(p)
        return args

    async def _call(self, model: Model, call: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise _mapped(exc, model) from exc

    async def generate(self, request: adapter_pb2.GenerateRequest) -> adapter_pb2.GenerateResponse:
        model = self.models[request.model]
        args = self._args(request)
        client = self._client_of[model.id]
        started = time.perf_counter()
        reply = await self._call(model, lambda: client.converse(**args))
        elapsed_ms = (time.perf_counter() - started) * 1000
        content = reply.get("output", {}).get("message", {}).get("content", [])
        uses = [block["toolUse"] for block in content if "toolUse" in block]
        calls = [common_pb2.ToolCall(id=u["toolUseId"], name=u["name"], arguments=json.dumps(u.get("input") or {}))
                 for u in uses]  # fmt: skip
        return adapter_pb2.GenerateResponse(
            text="".join(block.get("text", "") for block in content),
            tool_calls=calls,
            finish_reason=_FINISH.get(reply.get("stopReason", ""), reply.get("stopReason") or "stop"),
            usage=_usage(reply.get("usage")),
            confidence=signals_from_logprobs([]),
            latency_ms=elapsed_ms,
            time_to_first_token_ms=elapsed_ms,
        )

    async def stream(self, request: adapter_pb2.GenerateRequest) -> AsyncIterator[adapter_pb2.GenerateChunk]:
        model = self.models[request.model]
        args = self._args(request)
        client = self._client_of[model.id]
        started = time.perf_counter()
        pieces: list[str] = []
        usage = common_pb2.Usage()
        calls: list[common_pb2.ToolCall] = []
        finish_reason, first_token_ms = "stop", 0.0
        opened = await self._call(model, lambda: client.converse_stream(**args))
        events: Iterator[dict[str, Any]] = iter(opened["stream"])
        try:
            while (event := await self._call(model, lambda: next(events, _DONE))) is not _DONE:
                assert isinstance(event, dict)
                started_use = event.get("contentBlockStart", {}).get("start", {}).get("toolUse")
                if started_use:
                    calls.append(common_pb2.ToolCall(id=started_use["toolUseId"], name=started_use["name"]))
                elif "toolUse" in event.get("contentBlockDelta", {}).get("delta", {}) and calls:
                    calls[-1].arguments += event["contentBlockDelta"]["delta"]["toolUse"].get("input", "")
                elif "contentBlockDelta" in event:
                    text = event["contentBlockDelta"].get("delta", {}).get("text", "")
                    if text:
                        first_token_ms = first_token_ms or (time.perf_counter() - started) * 1000
                        pieces.append(text)
                        yield adapter_pb2.GenerateChunk(text=text)
                elif "messageStop" in event:
                    stop = event["messageStop"].get("stopReason", "")
                    finish_reason = _FINISH.get(stop, stop or finish_reason)
                elif "metadata" in event:
                    usage = _usage(event["metadata"].get("usage"))
        finally:
            opened["stream"].close()
        final = final_chunk("".join(pieces), finish_reason, usage, [], started, first_token_ms)
        for call in calls:
            call.arguments = call.arguments or "{}"
        final.summary.tool_calls.extend(calls)
        yield final

    async def embed(self, request: adapter_pb2.EmbeddingsRequest) -> adapter_pb2.EmbeddingsResponse:
        """InvokeModel with Amazon Titan Text Embeddings' body, one text a call (as that model takes them)."""
        model = self.models[request.model]
        client = self._client_of[model.id]
        started = time.perf_counter()
        vectors, tokens = [], 0
        for text in request.inputs:
            body: dict[str, Any] = {
                "inputText": text,
                **({"dimensions": request.dimensions} if request.dimensions else {}),
            }
            reply = await self._call(model, lambda body=body: client.invoke_model(  # type: ignore[misc]
                modelId=model.upstream_model or model.id, body=json.dumps(body), contentType="application/json",
                accept="application/json"))  # fmt: skip
            answer = json.loads(reply["body"].read())
            vectors.append(common_pb2.Vector(values=answer["embedding"]))
            tokens += int(answer.get("inputTextTokenCount", 0))
        return adapter_pb2.EmbeddingsResponse(vectors=vectors, usage=common_pb2.Usage(input_tokens=tokens),
                                              latency_ms=(time.perf_counter() - started) * 1000)  # fmt: skip

    async def close(self) -> None:
        for client in set(self._client_of.values()):
            client.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _turns(messages: Sequence[common_pb2.Message]) -> list[dict[str, Any]]:
    """Converse's messages: consecutive messages of one role become one turn of several blocks,
    since Converse refuses a conversation whose roles do not alternate (a caller's two user
    messages in a row are common); an assistant's tool calls are `toolUse` blocks, a tool's result
    a `toolResult` block of a user turn."""
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        role = "user" if m.role == "tool" else m.role
        blocks: list[dict[str, Any]] = [{"text": text_of(m)}] if text_of(m) and m.role != "tool" else []
        if m.role == "tool":
            blocks = [{"toolResult": {"toolUseId": m.tool_call_id, "content": [{"text": text_of(m)}]}}]
        blocks += [{"toolUse": {"toolUseId": c.id, "name": c.name, "input": json.loads(c.arguments)}}
                   for c in m.tool_calls]  # fmt: skip
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _tool_config(p: common_pb2.GenerationParams) -> dict[str, Any]:
    tools = [{"toolSpec": {"name": t.name, "description": t.description or t.name,
                           "inputSchema": {"json": json.loads(t.parameters) if t.parameters else {"type": "object"}}}}
             for t in p.tools]  # fmt: skip
    config: dict[str, Any] = {"tools": tools}
    if p.tool_choice == "required":
        config["toolChoice"] = {"any": {}}
    elif p.tool_choice not in ("", "auto"):
        config["toolChoice"] = {"tool": {"name": p.tool_choice}}
    return config


def _usage(usage: dict[str, Any] | None) -> common_pb2.Usage:
    """Converse's usage in our convention. Its inputTokens leaves cache reads and writes out (as
    Anthropic's does; totalTokens adds them): ours counts them. cacheDetails splits the writes by
    TTL. Converse reports no reasoning apart: a model's thinking is in outputTokens."""
    if not usage:
        return common_pb2.Usage()
    read, written = int(usage.get("cacheReadInputTokens") or 0), int(usage.get("cacheWriteInputTokens") or 0)
    an_hour = sum(int(d.get("inputTokens") or 0) for d in usage.get("cacheDetails") or [] if d.get("ttl") == "1h")
    return pricing.normalised(
        common_pb2.Usage(
            input_tokens=int(usage.get("inputTokens") or 0) + read + written,
            output_tokens=int(usage.get("outputTokens") or 0),
            cache_read_input_tokens=read,
            cache_write_input_tokens=written,
            cache_write_1h_input_tokens=an_hour,
        )
    )


def _mapped(exc: Exception, model: Model) -> BackendError:
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        kind = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = _CODES.get(kind) or _HTTP_STATUS.get(status, grpc.StatusCode.UNAVAILABLE)
        return provider_error(code, model.provider, exc, status, kind, str(error.get("Message", "")))
    if isinstance(exc, (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)):
        return provider_error(grpc.StatusCode.DEADLINE_EXCEEDED, model.provider, exc)
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return provider_error(grpc.StatusCode.UNAUTHENTICATED, model.provider, exc)
    return provider_error(grpc.StatusCode.UNAVAILABLE, model.provider, exc)  # connection errors
