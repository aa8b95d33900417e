"""Model adapters: one gRPC protocol (`ModelAdapter`), one backend per model family."""

from tierlift.adapters._backend import Backend, BackendError, signals_from_logprobs
from tierlift.adapters._servicer import AdapterServicer

__all__ = ["AdapterServicer", "Backend", "BackendError", "signals_from_logprobs"]
