"""What every backend implements, and the confidence signals computed from token logprobs."""

from __future__ import annotations

import math
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol, TypeVar

import grpc

from tierlift.core.catalog import Model
from tierlift.core.config import secret
from tierlift.core.entry import StartupError
from tierlift.core.scrub import KEY_SHAPED
from tierlift.v1 import adapter_pb2, common_pb2

# A token below this probability counts as "low probability" in the signals.
LOW_PROB = 0.2
_LOW_LOGPROB = math.log(LOW_PROB)


# What a provider's HTTP status means for the router; 5xx and anything else: UNAVAILABLE.
_GRPC_CODE_OF_HTTP = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def grpc_code_of_http(status: int) -> grpc.StatusCode:
    return _GRPC_CODE_OF_HTTP.get(status, grpc.StatusCode.UNAVAILABLE)


class BackendError(Exception):
    """A failed generation with the gRPC status it maps to (INVALID_ARGUMENT for a prompt
    the model cannot take, UNAVAILABLE for a backend that is down or overloaded, ...).
    `message` goes to the caller; `detail` (the provider's whole answer) only to the log."""

    def __init__(self, code: grpc.StatusCode, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail or message


class Backend(Protocol):
    family: str

    def describe(self) -> adapter_pb2.AdapterDescription: ...

    async def generate(self, request: adapter_pb2.GenerateRequest) -> adapter_pb2.GenerateResponse: ...

    def stream(self, request: adapter_pb2.GenerateRequest) -> AsyncIterator[adapter_pb2.GenerateChunk]: ...

    async def close(self) -> None: ...


def description(
    adapter: str, family: str, models: Sequence[Model], api_gives_logprobs: bool = True
) -> adapter_pb2.AdapterDescription:
    """What an adapter serves: logprobs when its API gives them and a model's catalog entry says so."""
    return adapter_pb2.AdapterDescription(
        adapter=adapter,
        backend=family,
        models=[m.id for m in models],
        logprobs=api_gives_logprobs and any(m.capabilities.logprobs for m in models),
        streaming=True,
    )


def text_of(message: common_pb2.Message) -> str:
    """A message's text: its content, or its text parts one per line (never glued together)."""
    return message.content or "\n".join(p.text for p in message.parts if p.text)


def text_only(request: adapter_pb2.GenerateRequest, backend: str, tools: bool = False) -> None:
    """Refuse what a backend's mapping does not carry (tools and tool turns unless `tools`,
    images), naming the field: never dropped silently. The catalog's capabilities keep such
    requests off these models; this holds for a caller that reaches the adapter some other way."""
    p = request.params
    if not tools and (p.tools or p.tool_choice or p.HasField("parallel_tool_calls")):
        raise BackendError(grpc.StatusCode.INVALID_ARGUMENT, f"params.tools: {backend} does not map tools")
    for i, m in enumerate(request.messages):
        if not tools and (m.tool_calls or m.role == "tool"):
            raise BackendError(grpc.StatusCode.INVALID_ARGUMENT, f"messages[{i}]: {backend} does not map tool turns")
        if any(p.type != "text" for p in m.parts):
            raise BackendError(grpc.StatusCode.INVALID_ARGUMENT, f"messages[{i}].parts: {backend} takes text only")


def final_chunk(
    text: str,
    finish_reason: str,
    usage: common_pb2.Usage,
    logprobs: Sequence[float],
    started: float,
    first_token_ms: float,
) -> adapter_pb2.GenerateChunk:
    """A stream's last chunk: the whole answer's summary, timed from `started` (perf_counter)."""
    return adapter_pb2.GenerateChunk(
        final=True,
        summary=adapter_pb2.GenerateResponse(
            text=text,
            finish_reason=finish_reason,
            usage=usage,
            confidence=signals_from_logprobs(logprobs),
            latency_ms=(time.perf_counter() - started) * 1000,
            time_to_first_token_ms=first_token_ms,
        ),
    )


def signals_from_logprobs(logprobs: Sequence[float]) -> common_pb2.ConfidenceSignals:
    if not logprobs:
        return common_pb2.ConfidenceSignals(has_logprobs=False)
    return common_pb2.ConfidenceSignals(
        has_logprobs=True,
        mean_logprob=sum(logprobs) / len(logprobs),
        min_logprob=min(logprobs),
        low_prob_token_share=sum(lp < _LOW_LOGPROB for lp in logprobs) / len(logprobs),
        token_count=len(logprobs),
    )


Client = TypeVar("Client")


def clients_by_model(adapter: str, models: Sequence[Model], make: Callable[[str, str], Client]) -> dict[str, Client]:
    """One SDK client per (endpoint, API key), shared by the models that use it; returns
    {model id: client}. A missing endpoint or key stops the adapter at start, naming it."""
    made: dict[tuple[str, str], Client] = {}
    by_model: dict[str, Client] = {}
    for m in models:
        endpoint = m.resolved_endpoint(os.environ)
        if not endpoint:
            raise StartupError(f"catalog: model {m.id} has no endpoint for adapter {adapter}")
        key = "not-needed"  # e.g. vLLM inside the cluster
        if m.api_key_env:
            key = secret(m.api_key_env)
            if not key:
                raise StartupError(
                    f"{m.api_key_env}: not set, nor {m.api_key_env}_FILE, nor a file in TIERLIFT_SECRETS_DIR "
                    f"(API key of model {m.id})"
                )
        if (endpoint, key) not in made:
            made[(endpoint, key)] = make(endpoint, key)
        by_model[m.id] = made[(endpoint, key)]
    return by_model


def clients_by_region(
    adapter: str, models: Sequence[Model], make: Callable[[str, str], Client], region_kind: str
) -> dict[str, Client]:
    """The regional clouds (Bedrock, Vertex AI): one SDK client per (endpoint, cloud region),
    shared by the models that use it; returns {model id: client}. The endpoint may be "" (the
    region's public one, which the SDK derives); a model without `cloud_region` stops the adapter
    at start. The cloud's own credentials come from the environment, not from an API key."""
    made: dict[tuple[str, str], Client] = {}
    by_model: dict[str, Client] = {}
    for m in models:
        if not m.cloud_region:
            raise StartupError(f"catalog: model {m.id} has no cloud_region (the {region_kind} adapter {adapter} calls)")
        where = (m.resolved_endpoint(os.environ), m.cloud_region)
        if where not in made:
            made[where] = make(*where)
        by_model[m.id] = made[where]
    return by_model


MAX_ERROR_MESSAGE = 200


def sanitised(message: str) -> str:
    """Bounded, with anything key-shaped removed: what a caller may see of a provider's error."""
    cleaned = KEY_SHAPED.sub("[redacted]", " ".join(message.split()))
    return cleaned if len(cleaned) <= MAX_ERROR_MESSAGE else cleaned[: MAX_ERROR_MESSAGE - 3] + "..."


def provider_error(
    code: grpc.StatusCode, provider: str, exc: Exception, status: int = 0, kind: str = "", message: str = ""
) -> BackendError:
    """What a provider's failure becomes: the caller gets the status, the provider's HTTP status,
    its error type and its message, sanitised; the log gets everything the SDK said."""
    http = f" HTTP {status}" if status else ""
    summary = f"{provider}{http}: {kind or exc.__class__.__name__}: {sanitised(message or str(exc))}"
    return BackendError(code, summary, detail=f"{provider}{http}: {exc.__class__.__name__}: {exc}")


def map_error(exc: Exception, table: Sequence[tuple[type[Exception], grpc.StatusCode]], provider: str) -> BackendError:
    """For the SDKs whose errors carry `status_code` and a JSON `body` (openai, anthropic): the
    first matching (exception class, status) in `table`; list subclasses first."""
    code = next((c for cls, c in table if isinstance(exc, cls)), grpc.StatusCode.UNKNOWN)
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    kind = error.get("type") or error.get("code") if isinstance(error, dict) else None
    text = error.get("message") if isinstance(error, dict) and error.get("message") else getattr(exc, "message", "")
    return provider_error(code, provider, exc, getattr(exc, "status_code", 0) or 0, kind or "", str(text or ""))
