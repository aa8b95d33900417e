"""How a router call fails: a gRPC status, a message naming the field or the reason, and, where
the caller should come back, how soon."""

from __future__ import annotations

import grpc


class RequestFailed(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.retry_after_s = code, message, retry_after_s

    async def abort(self, context: grpc.aio.ServicerContext) -> None:
        if self.retry_after_s is not None:
            context.set_trailing_metadata((("retry-after", f"{self.retry_after_s:.2f}"),))
        await context.abort(self.code, self.message)
