"""OpenAI-compatible backends through the official `openai` SDK: OpenAI itself, Azure OpenAI,
Together, Fireworks, Groq, OpenRouter, and the self-hosted servers' OpenAI APIs. One client per endpoint (the catalog's
`endpoint`, or the variable its `endpoint_env` names when set), the key from the model's `api_key_env`.

Retries are the SDK's own: bounded, exponential backoff with jitter, honouring `Retry-After`
on 429 and retrying 5xx and dropped connections. What still fails is mapped to the gRPC
status the router falls back on.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import openai
from openai import AsyncAzureOpenAI, AsyncOpenAI

from tierlift.adapters._backend import clients_by_model, map_error, signals_from_logprobs
from tierlift.core.catalog import Model
from tierlift.v1 import adapter_pb2, common_pb2

DEFAULT_MAX_TOKENS = 512
# Checked in order: subclasses before their bases.
_ERRORS: list[tuple[type[Exception], grpc.StatusCode]] = [
    (openai.RateLimitError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (openai.APITimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (openai.APIConnectionError, grpc.StatusCode.UNAVAILABLE),
    (openai.BadRequestError, grpc.StatusCode.INVALID_ARGUMENT),
    (openai.UnprocessableEntityError, grpc.StatusCode.INVALID_ARGUMENT),
    (openai.AuthenticationError, grpc.StatusCode.UNAUTHENTICATED),
    (openai.PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (openai.NotFoundError, grpc.StatusCode.NOT_FOUND),
    (openai.APIStatusError, grpc.StatusCode.UNAVAILABLE),  # 5xx and anything else
]


class OpenAICompatBackend:
    family = "openai"

    def __init__(
        self, adapter: str, models: Sequence[Model], timeout_s: float, max_retries: int, upstream_model: str = ""
    ) -> None:
        self.adapter = adapter
        self.models = {m.id: m for m in models}
        # Every request goes to this upstream model when set: a local server standing in for a provider.
        self.upstream_model = upstream_model
        self._client_of = clients_by_model(
            adapter, models, lambda endpoint, key: self._client(endpoint, key, timeout_s, max_retries)
        )

    @staticmethod
    def _client(endpoint: str, key: str, timeout_s: float, max_retries: int) -> AsyncOpenAI:
        return AsyncOpenAI(base_url=endpoint, api_key=key, timeout=timeout_s, max_retries=max_retries)

    def describe(self) -> adapter_pb2.AdapterDescription:
        return adapter_pb2.AdapterDescription(
            adapter=self.adapter,
            backend=self.family,
            models=list(self.models),
            logprobs=any(m.capabilities.logprobs for m in self.models.values()),
            streaming=True,
        )

    def _args(self, request: adapter_pb2.GenerateRequest) -> dict[str, Any]:
        model = self.models[request.model]
        p = request.params
        args: dict[str, Any] = {
            "model": self.upstream_model or model.upstream_model or model.id,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": p.max_tokens or DEFAULT_MAX_TOKENS,
            "temperature": p.temperature,
        }
        if p.top_p:
            args["top_p"] = p.top_p
        if p.stop:
            args["stop"] = list(p.stop)
        if p.HasField("seed"):
            args["seed"] = p.seed
        if p.response_format == "json_object":
            args["response_format"] = {"type": "json_object"}
        if model.capabilities.logprobs:
            args["logprobs"] = True
        return args

    async def generate(self, request: adapter_pb2.GenerateRequest) -> adapter_pb2.GenerateResponse:
        model = self.models[request.model]
        started = time.perf_counter()
        try:
            reply = await self._client_of[model.id].chat.completions.create(**self._args(request))
        except openai.OpenAIError as exc:
            raise map_error(exc, _ERRORS, model.provider) from exc
        choice = reply.choices[0]
        logprobs = [t.logprob for t in (choice.logprobs.content or [])] if choice.logprobs else []
        elapsed_ms = (time.perf_counter() - started) * 1000
        return adapter_pb2.GenerateResponse(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason or "stop",
            usage=_usage(reply.usage),
            confidence=signals_from_logprobs(logprobs),
            latency_ms=elapsed_ms,
            time_to_first_token_ms=elapsed_ms,  # not streamed: the whole answer arrives at once
        )

    async def stream(self, request: adapter_pb2.GenerateRequest) -> AsyncIterator[adapter_pb2.GenerateChunk]:
        model = self.models[request.model]
        started = time.perf_counter()
        pieces: list[str] = []
        logprobs: list[float] = []
        usage = common_pb2.Usage()
        finish_reason, first_token_ms = "stop", 0.0
        try:
            stream = await self._client_of[model.id].chat.completions.create(
                **self._args(request), stream=True, stream_options={"include_usage": True}
            )
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices:
                    finish_reason = choice.finish_reason or finish_reason
                    if choice.logprobs and choice.logprobs.content:
                        logprobs += [t.logprob for t in choice.logprobs.content]
                    if choice.delta.content:
                        first_token_ms = first_token_ms or (time.perf_counter() - started) * 1000
                        pieces.append(choice.delta.content)
                        yield adapter_pb2.GenerateChunk(text=choice.delta.content)
        except openai.OpenAIError as exc:
            raise map_error(exc, _ERRORS, model.provider) from exc
        yield adapter_pb2.GenerateChunk(
            final=True,
            summary=adapter_pb2.GenerateResponse(
                text="".join(pieces),
                finish_reason=finish_reason,
                usage=usage,
                confidence=signals_from_logprobs(logprobs),
                latency_ms=(time.perf_counter() - started) * 1000,
                time_to_first_token_ms=first_token_ms,
            ),
        )

    async def close(self) -> None:
        for client in set(self._client_of.values()):
            await client.close()


def _usage(usage: Any) -> common_pb2.Usage:
    if usage is None:
        return common_pb2.Usage()
    return common_pb2.Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)


AZURE_API_VERSION = "2024-10-21"  # the GA data-plane version; AZURE_OPENAI_API_VERSION overrides


class AzureOpenAIBackend(OpenAICompatBackend):
    """Azure OpenAI through the SDK's Azure client: the catalog's `endpoint` (or
    AZURE_OPENAI_ENDPOINT) is the resource, `upstream_model` the deployment name; requests go to
    /openai/deployments/<deployment>/chat/completions?api-version=... with an `api-key` header."""

    family = "azure"

    @staticmethod
    def _client(endpoint: str, key: str, timeout_s: float, max_retries: int) -> AsyncOpenAI:
        version = os.environ.get("AZURE_OPENAI_API_VERSION", AZURE_API_VERSION)
        return AsyncAzureOpenAI(
            azure_endpoint=endpoint, api_key=key, api_version=version, timeout=timeout_s, max_retries=max_retries
        )
