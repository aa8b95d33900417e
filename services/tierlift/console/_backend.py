"""The console's only way to data and actions: the Ledger's and the Assessor's gRPC APIs, called
with the logged-in user's own key. So the console adds no authority of its own: the ledger scopes
a viewer to its tenant and refuses what a role may not do, and audits name the user's key, exactly
as they do for the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from tierlift.v1 import assessor_pb2_grpc, ledger_pb2, ledger_pb2_grpc

TIMEOUT_S = 15.0


class NotForConsole(Exception):
    """The key is valid but may not use the console (an app key): the message says why."""


@dataclass
class Backend:
    ledger: ledger_pb2_grpc.LedgerStub
    assessor: assessor_pb2_grpc.AssessorStub | None  # None: rollouts are not shown (no assessor address)

    async def call(self, stub: Any, method: str, request: Any, key: str) -> Any:
        """One unary call on `stub` presenting `key` (grpc.aio.AioRpcError on refusal)."""
        return await getattr(stub, method)(request, timeout=TIMEOUT_S, metadata=(("authorization", f"Bearer {key}"),))

    async def ledger_call(self, method: str, request: Any, key: str) -> Any:
        return await self.call(self.ledger, method, request, key)

    async def role_of(self, key: str) -> str:
        """The key's role, from what the ledger lets it do: the ledger has no "who am I" call, and
        the console must not guess from the key's text. A reader may GetReport; finance and admin
        may ListAudit; only admin may ListKeys. An invalid key raises the ledger's UNAUTHENTICATED."""
        try:
            await self.ledger_call("GetReport", ledger_pb2.SpendQuery(since="2999-01-01T00:00:00Z"), key)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
                raise NotForConsole("this key's role may not read the ledger (an app key?)") from None
            raise
        for method, request, role in (
            ("ListKeys", ledger_pb2.KeyQuery(), "admin"),
            ("ListAudit", ledger_pb2.AuditQuery(limit=1), "finance"),
        ):
            try:
                await self.ledger_call(method, request, key)
                return role
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.PERMISSION_DENIED:
                    raise
        return "viewer"
