"""The classifier's labels as the router asks for them: a request the router has classified
shortly before is answered from memory, without the round trip.

Apps send the same prompts again and again (templates, retries, probes). The classifier keeps
its own cache, shared by every router replica, but reaching it is a gRPC call: on a repeated
prompt that call is most of the classifier's cost to a request. Labels are a function of the
request alone (the messages, the declared data class, the tenant that partitions the cache), so
remembering them is exact while the classifier's version stays; the time-to-live bounds how long
a new classifier (better detectors, say) waits behind old labels.
"""

from __future__ import annotations

import cachetools

from tierlift.core.ids import content_key
from tierlift.router import _metrics as metrics
from tierlift.v1 import classifier_pb2, classifier_pb2_grpc

_CACHED, _ASKED = {"tierlift.cached": True}, {"tierlift.cached": False}


class Classifications:
    """Calls the classifier; remembers up to `size` answers for `ttl_s` each (size 0: never)."""

    def __init__(
        self, classifier: classifier_pb2_grpc.ClassifierStub, timeout_s: float, size: int = 4096, ttl_s: float = 60.0
    ) -> None:
        self._classifier = classifier
        self._timeout_s = timeout_s
        self._remembered: cachetools.TTLCache[bytes, classifier_pb2.Classification] | None = (
            cachetools.TTLCache(maxsize=size, ttl=ttl_s) if size > 0 and ttl_s > 0 else None
        )

    async def classify(self, request: classifier_pb2.ClassifyRequest) -> classifier_pb2.Classification:
        """The labels; raises grpc.aio.AioRpcError as the stub does. The answer is shared between
        the requests it serves: read it, copy it, never change it."""
        key = content_key(request) if self._remembered is not None else b""
        if self._remembered is not None and (labels := self._remembered.get(key)) is not None:
            metrics.classifications.add(1, _CACHED)
            return labels
        metrics.classifications.add(1, _ASKED)  # with the cache off too: the hit rate reads 0, not nothing
        labels = await self._call(request)
        if self._remembered is not None:
            self._remembered[key] = labels
        return labels

    async def _call(self, request: classifier_pb2.ClassifyRequest) -> classifier_pb2.Classification:
        labels: classifier_pb2.Classification = await self._classifier.Classify(request, timeout=self._timeout_s)
        return labels
