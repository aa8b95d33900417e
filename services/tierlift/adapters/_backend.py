"""What every backend implements, and the confidence signals computed from token logprobs."""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol, TypeVar

import grpc

from tierlift.core.catalog import Model
from tierlift.core.entry import StartupError
from tierlift.v1 import adapter_pb2, common_pb2

# A token below this probability counts as "low probability" in the signals.
LOW_PROB = 0.2
_LOW_LOGPROB = math.log(LOW_PROB)


class BackendError(Exception):
    """A failed generation with the gRPC status it maps to (INVALID_ARGUMENT for a prompt
    the model cannot take, UNAVAILABLE for a backend that is down or overloaded, ...)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Backend(Protocol):
    family: str

    def describe(self) -> adapter_pb2.AdapterDescription: ...

    async def generate(self, request: adapter_pb2.GenerateRequest) -> adapter_pb2.GenerateResponse: ...

    def stream(self, request: adapter_pb2.GenerateRequest) -> AsyncIterator[adapter_pb2.GenerateChunk]: ...

    async def close(self) -> None: ...


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
            key = os.environ.get(m.api_key_env, "")
            if not key:
                raise StartupError(f"{m.api_key_env}: not set (API key of model {m.id})")
        if (endpoint, key) not in made:
            made[(endpoint, key)] = make(endpoint, key)
        by_model[m.id] = made[(endpoint, key)]
    return by_model


def map_error(exc: Exception, table: Sequence[tuple[type[Exception], grpc.StatusCode]], provider: str) -> BackendError:
    """The first matching (exception class, status) in `table`; list subclasses first."""
    code = next((c for cls, c in table if isinstance(exc, cls)), grpc.StatusCode.UNKNOWN)
    status = getattr(exc, "status_code", None)
    http = f" HTTP {status}" if status else ""
    return BackendError(code, f"{provider}{http}: {exc.__class__.__name__}: {exc}")
