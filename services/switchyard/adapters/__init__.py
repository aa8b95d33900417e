"""Model adapters: one gRPC protocol (`ModelAdapter`), one backend per model family."""

from switchyard.adapters._backend import Backend, BackendError, signals_from_logprobs
from switchyard.adapters._servicer import AdapterServicer

__all__ = ["AdapterServicer", "Backend", "BackendError", "signals_from_logprobs"]
