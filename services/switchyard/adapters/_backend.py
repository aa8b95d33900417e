"""What every backend implements, and the confidence signals computed from token logprobs."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import grpc

from switchyard.v1 import adapter_pb2, common_pb2

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
