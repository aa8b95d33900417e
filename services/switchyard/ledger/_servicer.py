"""The Ledger gRPC servicer: spend reports and per-request attempt lists."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc

from switchyard.core import money
from switchyard.core.catalog import TIERS
from switchyard.ledger._store import LedgerStore, total
from switchyard.v1 import ledger_pb2, ledger_pb2_grpc


def _timestamp(field: str, value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not an RFC 3339 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class LedgerServicer(ledger_pb2_grpc.LedgerServicer):
    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    async def GetSpend(
        self, request: ledger_pb2.SpendQuery, context: grpc.aio.ServicerContext
    ) -> ledger_pb2.SpendReport:
        try:
            since, until = _timestamp("since", request.since), _timestamp("until", request.until)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        lines = await asyncio.to_thread(self.store.spend, request.tenant, request.workload, since, until)
        return ledger_pb2.SpendReport(
            lines=[
                ledger_pb2.SpendLine(
                    tenant=line["tenant"],
                    workload=line["workload"],
                    tier=TIERS[line["tier"]],
                    model=line["model"],
                    attempts=line["attempts"],
                    input_tokens=line["input_tokens"],
                    output_tokens=line["output_tokens"],
                    cost_usd=money.to_wire(line["cost_usd"]),
                )
                for line in lines
            ],
            total_cost_usd=money.to_wire(total(lines)),
            total_attempts=sum(line["attempts"] for line in lines),
        )

    async def ListAttempts(
        self, request: ledger_pb2.AttemptQuery, context: grpc.aio.ServicerContext
    ) -> ledger_pb2.AttemptList:
        if not request.request_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request_id: must be set")
        rows = await asyncio.to_thread(self.store.attempts_for, request.request_id)
        return ledger_pb2.AttemptList(
            attempts=[
                ledger_pb2.LedgerAttempt(
                    event_id=r["event_id"],
                    request_id=r["request_id"],
                    attempt_index=r["attempt_index"],
                    tenant=r["tenant"],
                    workload=r["workload"],
                    tier=TIERS[r["tier"]],
                    model=r["model"],
                    outcome=r["outcome"],
                    input_tokens=r["input_tokens"],
                    output_tokens=r["output_tokens"],
                    cost_usd=money.to_wire(r["cost_usd"]),
                    price_version=r["price_version"],
                )
                for r in rows
            ]
        )
