"""OpenAI-compatible backends: OpenAI itself, Azure OpenAI, Together, Fireworks, Groq,
OpenRouter, and the self-hosted servers' OpenAI APIs. One pooled HTTP client per endpoint (the
catalog's `endpoint`, or the variable its `endpoint_env` names when set), the key from the
model's `api_key_env`.

The wire protocol is spoken by `_openai_http.py` (the official SDK costs ten times its CPU on
every request; tests prove the two send the same). Retries are `_retry.py`'s: 408, 409, 429,
5xx, timeouts and dropped connections, up to `max_retries`, waiting what `retry-after-ms` or
`Retry-After` asks, else backoff with jitter. What still fails is mapped to the gRPC status
the router falls back on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import grpc

from tierlift.adapters import _openai_tools as openai_tools
from tierlift.adapters._backend import (
    BackendError,
    clients_by_model,
    description,
    final_chunk,
    grpc_code_of_http,
    provider_error,
    signals_from_logprobs,
)
from tierlift.adapters._openai_http import ChatCompletionsHTTP, MalformedAnswer, ProviderHTTPError, events
from tierlift.adapters._retry import RETRYABLE_HTTP, backoff, retrying, seconds
from tierlift.core import pricing
from tierlift.core.catalog import Model
from tierlift.v1 import adapter_pb2, common_pb2

DEFAULT_MAX_TOKENS = 512
_ERRORS = (ProviderHTTPError, MalformedAnswer, aiohttp.ClientError, asyncio.TimeoutError)


class OpenAICompatBackend:
    family = "openai"

    def __init__(
        self, adapter: str, models: Sequence[Model], timeout_s: float, max_retries: int, upstream_model: str = ""
    ) -> None:
        self.adapter = adapter
        self.models = {m.id: m for m in models}
        self.max_retries = max_retries
        # Every request goes to this upstream model when set: a local server standing in for a provider.
        self.upstream_model = upstream_model
        self._endpoint_of = {m.id: m.resolved_endpoint(os.environ).rstrip("/") for m in models}
        self._client_of = clients_by_model(
            adapter, models, lambda endpoint, key: ChatCompletionsHTTP(self._auth(key), timeout_s)
        )

    @staticmethod
    def _auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def _url(self, model: Model, path: str = "chat/completions") -> str:
        return f"{self._endpoint_of[model.id]}/{path}"

    def describe(self) -> adapter_pb2.AdapterDescription:
        return description(self.adapter, self.family, list(self.models.values()))

    def _body(self, request: adapter_pb2.GenerateRequest) -> dict[str, Any]:
        model = self.models[request.model]
        p = request.params
        body: dict[str, Any] = {
            "messages": [openai_tools.message(m) for m in request.messages],
            "model": self.upstream_model or model.upstream_model or model.id,
            "max_tokens": p.max_tokens or DEFAULT_MAX_TOKENS,
            "temperature": p.temperature,
        }
        if p.top_p:
            body["top_p"] = p.top_p
        if p.stop:
            body["stop"] = list(p.stop)
        if p.HasField("seed"):
            body["seed"] = p.seed
        if p.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        elif p.response_format == "json_schema":  # checked by core.limits on the way in
            body["response_format"] = {"type": "json_schema", "json_schema": json.loads(p.json_schema)}
        if model.capabilities.logprobs:
            body["logprobs"] = True
        return body | openai_tools.tool_params(p)

    async def _retrying(self, model: Model, call: Any) -> Any:
        return await retrying(call, self.max_retries, _ERRORS, _retry_in, lambda exc: _mapped(exc, model))

    async def generate(self, request: adapter_pb2.GenerateRequest) -> adapter_pb2.GenerateResponse:
        model = self.models[request.model]
        client, url, body = self._client_of[model.id], self._url(model), self._body(request)
        started = time.perf_counter()
        reply = await self._retrying(model, lambda: client.create(url, body))
        try:
            choice = reply["choices"][0]
            text = choice["message"].get("content") or ""
            calls = openai_tools.tool_calls(choice["message"])
            finish_reason = choice.get("finish_reason") or "stop"
            logprobs = _logprobs(choice)
            usage = _usage(reply.get("usage"))
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise _mapped(MalformedAnswer(f"not a chat completion ({exc!r})"), model) from exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        return adapter_pb2.GenerateResponse(
            text=text,
            tool_calls=calls,
            finish_reason=finish_reason,
            usage=usage,
            confidence=signals_from_logprobs(logprobs),
            latency_ms=elapsed_ms,
            time_to_first_token_ms=elapsed_ms,  # not streamed: the whole answer arrives at once
        )

    async def stream(self, request: adapter_pb2.GenerateRequest) -> AsyncIterator[adapter_pb2.GenerateChunk]:
        model = self.models[request.model]
        client, url = self._client_of[model.id], self._url(model)
        body = {**self._body(request), "stream": True, "stream_options": {"include_usage": True}}
        started = time.perf_counter()
        pieces: list[str] = []
        logprobs: list[float] = []
        usage = common_pb2.Usage()
        calls = openai_tools.StreamedCalls()
        finish_reason, first_token_ms = "stop", 0.0
        # retried until the provider says yes; a stream that breaks after that is a fault
        reply = await self._retrying(model, lambda: client.open_stream(url, body))
        try:
            # aclosing: a stream left early (the router cancelled) gives its connection back now
            async with contextlib.aclosing(events(reply)) as chunks:
                async for chunk in chunks:
                    if chunk.get("usage"):
                        usage = _usage(chunk["usage"])
                    for choice in chunk.get("choices") or []:
                        finish_reason = choice.get("finish_reason") or finish_reason
                        logprobs += _logprobs(choice)
                        delta = choice.get("delta") or {}
                        calls.add(delta.get("tool_calls") or [])
                        content = delta.get("content")
                        if content:
                            first_token_ms = first_token_ms or (time.perf_counter() - started) * 1000
                            pieces.append(content)
                            yield adapter_pb2.GenerateChunk(text=content)
        except _ERRORS as exc:
            raise _mapped(exc, model) from exc
        except (TypeError, AttributeError, ValueError) as exc:
            raise _mapped(MalformedAnswer(f"not a chat completion chunk ({exc!r})"), model) from exc
        final = final_chunk("".join(pieces), finish_reason, usage, logprobs, started, first_token_ms)
        final.summary.tool_calls.extend(calls.calls())
        yield final

    async def embed(self, request: adapter_pb2.EmbeddingsRequest) -> adapter_pb2.EmbeddingsResponse:
        """POST /embeddings, floats asked for; one vector per input, in the inputs' order."""
        model = self.models[request.model]
        client, url = self._client_of[model.id], self._url(model, "embeddings")
        body: dict[str, Any] = {"model": self.upstream_model or model.upstream_model or model.id,
                                "input": list(request.inputs), "encoding_format": "float"}  # fmt: skip
        if request.dimensions:
            body["dimensions"] = request.dimensions
        started = time.perf_counter()
        reply = await self._retrying(model, lambda: client.create(url, body))
        try:
            ordered = sorted(reply["data"], key=lambda item: item["index"])
            vectors = [common_pb2.Vector(values=item["embedding"]) for item in ordered]
            usage = common_pb2.Usage(input_tokens=int((reply.get("usage") or {}).get("prompt_tokens", 0)))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise _mapped(MalformedAnswer(f"not an embeddings answer ({exc!r})"), model) from exc
        if len(vectors) != len(request.inputs):
            raise _mapped(MalformedAnswer(f"{len(vectors)} vectors for {len(request.inputs)} inputs"), model)
        elapsed_ms = (time.perf_counter() - started) * 1000
        return adapter_pb2.EmbeddingsResponse(vectors=vectors, usage=usage, latency_ms=elapsed_ms)

    async def close(self) -> None:
        for client in set(self._client_of.values()):
            await client.close()


def _logprobs(choice: dict[str, Any]) -> list[float]:
    """The chosen tokens' logprobs of a choice (or a streamed choice's delta); finite ones only."""
    content = (choice.get("logprobs") or {}).get("content") or []
    values = [float(token["logprob"]) for token in content]
    return [v for v in values if math.isfinite(v)]


def _usage(usage: dict[str, Any] | None) -> common_pb2.Usage:
    """OpenAI's usage, already in our convention: prompt_tokens counts cached and audio tokens,
    completion_tokens reasoning ones. vLLM and SGLang report cached_tokens too (with prefix
    caching's stats on); providers that give no details leave the kinds at 0."""
    if not usage:
        return common_pb2.Usage()
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    return pricing.normalised(
        common_pb2.Usage(
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            cache_read_input_tokens=int(prompt.get("cached_tokens") or 0),
            # a cached audio token is a cache read: `normalised` caps audio at what is left
            audio_input_tokens=int(prompt.get("audio_tokens") or 0),
            reasoning_output_tokens=int(completion.get("reasoning_tokens") or 0),
        )
    )


def _retry_in(exc: Exception, attempt: int) -> float | None:
    """None for an answer not worth retrying; else what the provider asked for (`retry-after-ms`,
    else `Retry-After` in seconds), else our backoff. `x-should-retry`, OpenAI's own hint, wins.
    An answer that came (2xx) but is no chat completion is not asked again: the provider may have
    billed it, and it would likely answer the same."""
    if isinstance(exc, MalformedAnswer):
        return None
    if isinstance(exc, ProviderHTTPError):
        hint = _header(exc.headers, "x-should-retry")
        if hint == "false" or (exc.status not in RETRYABLE_HTTP and hint != "true"):
            return None
        if (ms := seconds(_header(exc.headers, "retry-after-ms"))) is not None:
            return ms / 1000
        if (delay := seconds(_header(exc.headers, "retry-after"))) is not None:
            return delay
    return backoff(attempt)


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)


def _mapped(exc: Exception, model: Model) -> BackendError:
    if isinstance(exc, ProviderHTTPError):
        code = grpc_code_of_http(exc.status)
        return provider_error(code, model.provider, exc, exc.status, exc.kind, exc.message)
    if isinstance(exc, asyncio.TimeoutError):
        return provider_error(grpc.StatusCode.DEADLINE_EXCEEDED, model.provider, exc, message="no answer in time")
    return provider_error(grpc.StatusCode.UNAVAILABLE, model.provider, exc)  # dropped connections, malformed answers


AZURE_API_VERSION = "2024-10-21"  # the GA data-plane version; AZURE_OPENAI_API_VERSION overrides


class AzureOpenAIBackend(OpenAICompatBackend):
    """Azure OpenAI: the catalog's `endpoint` (or AZURE_OPENAI_ENDPOINT) is the resource,
    `upstream_model` the deployment name; requests go to
    /openai/deployments/<deployment>/chat/completions?api-version=... with an `api-key` header,
    as the SDK's AsyncAzureOpenAI sends them."""

    family = "azure"

    @staticmethod
    def _auth(key: str) -> dict[str, str]:
        return {"api-key": key}

    def _url(self, model: Model, path: str = "chat/completions") -> str:
        version = os.environ.get("AZURE_OPENAI_API_VERSION", AZURE_API_VERSION)
        deployment = quote(self.upstream_model or model.upstream_model or model.id, safe="")
        return f"{self._endpoint_of[model.id]}/openai/deployments/{deployment}/{path}?api-version={version}"
