"""The Ledger gRPC servicer: spend reports, attempts, budgets, API keys and the audit trail.
Every read is scoped by the caller: a viewer sees its own tenant, finance and admin every one
(`tenant=""` means "all" only for them)."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import grpc

from tierlift.core import money
from tierlift.core.catalog import TIERS
from tierlift.core.identity import current_principal
from tierlift.core.ids import is_slug, shown
from tierlift.ledger._budgets import ACTIONS, DEFAULT_SOFT_RATIO, PERIODS, BudgetWatcher
from tierlift.ledger._evidence import judged_answers, rollout_evidence
from tierlift.ledger._keys import DEFAULT_GRACE_S, MAX_GRACE_S, KeyKeeper, as_api_key
from tierlift.ledger._kinds import USAGE_COLUMNS, KindTotal, kind_spend, kinds_of_sum, summed_kinds
from tierlift.ledger._quality import QualityStore
from tierlift.ledger._requests import OUTCOMES, add_routing_mix, find_requests, outcomes_of, routing_mix, summary
from tierlift.ledger._store import LedgerStore, total
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc


def _timestamp(field: str, value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field}: {shown(value)} is not an RFC 3339 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _scoped(context: grpc.aio.ServicerContext, tenant: str) -> str:
    """The tenant this caller may read: its own, or any for finance and admin."""
    principal = current_principal()
    if principal.sees_every_tenant:
        return tenant
    if tenant not in ("", principal.tenant):
        await context.abort(
            grpc.StatusCode.PERMISSION_DENIED, f"tenant: this key reads tenant {principal.tenant!r} only"
        )
    return principal.tenant


def _kind_spend(kind: KindTotal) -> ledger_pb2.KindSpend:
    return ledger_pb2.KindSpend(kind=kind.kind, tokens=kind.tokens, cost_usd=_to_wire(kind.cost_usd))


# money.to_wire quantizes first, so equal amounts give one string: a 7-day GetSpend has ~7,000 kinds,
# most of them costing 0
_to_wire = functools.lru_cache(maxsize=4096)(money.to_wire)


class LedgerServicer(ledger_pb2_grpc.LedgerServicer):
    def __init__(self, store: LedgerStore, budgets: BudgetWatcher, keys: KeyKeeper, quality: QualityStore) -> None:
        self.store = store
        self.budgets = budgets
        self.keys = keys
        self.quality = quality

    async def GetQuality(
        self, request: ledger_pb2.QualityQuery, context: grpc.aio.ServicerContext
    ) -> ledger_pb2.QualityReport:
        try:
            since, until = _timestamp("since", request.since), _timestamp("until", request.until)
            if request.workload and not is_slug(request.workload):
                raise ValueError(f"workload: {shown(request.workload)} is not a lowercase slug")
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        tenant = await _scoped(context, request.tenant)
        until = until or datetime.now(UTC)
        since = since or until - timedelta(days=7)
        return await asyncio.to_thread(self.quality.report, tenant, request.workload, since, until)

    async def GetRolloutEvidence(
        self, request: ledger_pb2.EvidenceQuery, context: grpc.aio.ServicerContext
    ) -> ledger_pb2.RolloutEvidence:
        try:
            since = _timestamp("since", request.since)
            if not request.rollout_id or len(request.rollout_id) > 64:
                raise ValueError("rollout_id: required, at most 64 characters")
            if bool(request.control_model) != bool(request.candidate_model):
                raise ValueError("control_model, candidate_model: both (a model rollout) or neither (a policy rollout)")
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        return await asyncio.to_thread(
            rollout_evidence, self.quality.engine, request.rollout_id, since or datetime.fromtimestamp(0, UTC),
            request.control_model, request.candidate_model,
        )  # fmt: skip

    async def ListOutcomes(
        self, request: ledger_pb2.OutcomeQuery, context: grpc.aio.ServicerContext
    ) -> ledger_pb2.OutcomeList:
        try:
            since = _timestamp("since", request.since)
            if not is_slug(request.workload):
                raise ValueError(f"workload: {shown(request.workload)} is not a lowercase slug")
            if len(request.model) > 128:
                raise ValueError("model: longer than 128 characters")
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        since = since or datetime.now(UTC) - timedelta(days=30)
        return await asyncio.to_thread(
            judged_answers, self.quality.engine, request.workload, request.model, since, request.limit
        )

    async def GetSpend(
        self, request: ledger_pb2.SpendQuery, context: grpc.aio.ServicerContext
    ) -> ledger_pb2.SpendReport:
        try:
            since, until = _timestamp("since", request.since), _timestamp("until", request.until)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        tenant = await _scoped(context, request.tenant)
        spend = asyncio.to_thread(self.store.spend, tenant, request.workload, since, until, request.by_model)
        if request.with_days:  # the days as GetReport has them, read at once on a second connection
            daily = asyncio.to_thread(
                self.store.daily, tenant, request.workload, since and since.date(), until and until.date()
            )
            lines, days = await asyncio.gather(spend, daily)
        else:
            lines, days = await spend, []
        if request.omit_line_kinds:  # the window's kinds alone, from the lines' sums
            kinds: list[list[KindTotal]] = [[] for _ in lines]
            window = kinds_of_sum(lines)
        else:
            kinds = [kind_spend(line) for line in lines]  # each line's, once: a 7-day window has ~1,200 lines
            window = summed_kinds(kinds)
        return ledger_pb2.SpendReport(
            days=daily_spend(days),
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
                    kinds=[_kind_spend(kind) for kind in line_kinds],
                    estimated_attempts=line["estimated_attempts"],
                    unsettled_attempts=line["unsettled_attempts"],
                )
                for line, line_kinds in zip(lines, kinds, strict=True)
            ],
            total_cost_usd=money.to_wire(total(lines)),
            total_attempts=sum(line["attempts"] for line in lines),
            kinds=[_kind_spend(kind) for kind in window],
        )

    async def ListAttempts(
        self, request: ledger_pb2.AttemptQuery, context: grpc.aio.ServicerContext
    ) -> ledger_pb2.AttemptList:
        if not request.request_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request_id: must be set")
        rows = await asyncio.to_thread(self.store.attempts_for, request.request_id)
        principal = current_principal()
        if not principal.sees_every_tenant:
            rows = [r for r in rows if r["tenant"] == principal.tenant]  # another tenant's: as if none
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
                    usage=common_pb2.Usage(**{k: r[k] for k in USAGE_COLUMNS}),
                    kinds=[_kind_spend(kind) for kind in kind_spend(r)],
                    latency_ms=r["latency_ms"],
                    confidence=r["confidence"],
                    estimated=r["estimated"],
                    unsettled=r["unsettled"],
                    reason=r["reason"],
                    error=r["error"],
                )
                for r in rows
            ]
        )

    async def ListRequests(
        self, request: ledger_pb2.RequestQuery, context: grpc.aio.ServicerContext
    ) -> ledger_pb2.RequestList:
        try:
            since, until = _timestamp("since", request.since), _timestamp("until", request.until)
            if request.outcome not in OUTCOMES:
                raise ValueError(f"outcome: {shown(request.outcome)} is not one of {', '.join(OUTCOMES[1:])}")
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        tenant = await _scoped(context, request.tenant)
        rows = await asyncio.to_thread(find_requests, self.store.engine, request, tenant, since, until)
        return ledger_pb2.RequestList(requests=[summary(row) for row in rows])

    async def GetReport(self, request: ledger_pb2.SpendQuery, context: grpc.aio.ServicerContext) -> ledger_pb2.Report:
        try:
            since, until = _timestamp("since", request.since), _timestamp("until", request.until)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        tenant = await _scoped(context, request.tenant)
        # the days' spend and one read of the window's request outcomes (the daily rollups and the
        # part-days: both the outcome counts and the routing mix), at once on two connections
        days, mix = await asyncio.gather(
            asyncio.to_thread(
                self.store.daily, tenant, request.workload, since and since.date(), until and until.date()
            ),
            asyncio.to_thread(routing_mix, self.store.engine, tenant, request.workload, since, until),
        )
        report = build_report(days, outcomes_of(mix))
        add_routing_mix(report, mix)
        return report

    async def SetBudget(self, request: ledger_pb2.Budget, context: grpc.aio.ServicerContext) -> ledger_pb2.Budget:
        try:
            row = budget_row(request)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        await asyncio.to_thread(self.store.set_budget, row)
        await self.budgets.check()  # a new or changed limit may change a state
        target = f"{row['tenant']}/{row['workload'] or '*'}/{row['period']}"
        detail = f"{row['limit_usd']} USD, {row['action']}" + (", strict" if row["strict"] else "")
        await self.keys.audit(current_principal(), "budget.set", target, detail)
        return await self._with_state(row)

    async def ListBudgets(
        self, request: ledger_pb2.BudgetQuery, context: grpc.aio.ServicerContext
    ) -> ledger_pb2.BudgetList:
        rows = await asyncio.to_thread(self.store.budgets, await _scoped(context, request.tenant))
        return ledger_pb2.BudgetList(budgets=[await self._with_state(r) for r in rows])

    async def DeleteBudget(self, request: ledger_pb2.Budget, context: grpc.aio.ServicerContext) -> ledger_pb2.Budget:
        target = f"{request.tenant}/{request.workload or '*'}/{request.period}"
        deleted = await self.budgets.delete(request.tenant, request.workload, request.period)
        if deleted is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"budget: no budget {shown(target)}")
        assert deleted is not None
        detail = f"was {money.to_wire(deleted['limit_usd'])} USD, {deleted['action']}"
        await self.keys.audit(current_principal(), "budget.deleted", target, detail)
        return await self._with_state(deleted)

    async def CreateKey(
        self, request: ledger_pb2.KeyRequest, context: grpc.aio.ServicerContext
    ) -> ledger_pb2.CreatedKey:
        try:
            return await self.keys.create(current_principal(), request)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise

    async def ListKeys(self, request: ledger_pb2.KeyQuery, context: grpc.aio.ServicerContext) -> ledger_pb2.KeyList:
        rows = await asyncio.to_thread(self.keys.store.rows, request.tenant)
        return ledger_pb2.KeyList(keys=[as_api_key(r) for r in rows])

    async def RevokeKey(self, request: ledger_pb2.KeyId, context: grpc.aio.ServicerContext) -> ledger_pb2.ApiKey:
        revoked = await self.keys.revoke(current_principal(), request.key_id)
        if revoked is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"key_id: no key {shown(request.key_id)}")
        assert revoked is not None
        return revoked

    async def RotateKey(
        self, request: ledger_pb2.KeyRotation, context: grpc.aio.ServicerContext
    ) -> ledger_pb2.CreatedKey:
        grace_s = request.grace_s or DEFAULT_GRACE_S
        if grace_s > MAX_GRACE_S:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"grace_s: {grace_s} is over {MAX_GRACE_S:,}")
        try:
            rotated = await self.keys.rotate(current_principal(), request.key_id, grace_s)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            raise
        if rotated is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"key_id: no key {shown(request.key_id)}")
        assert rotated is not None
        return rotated

    async def ListAudit(
        self, request: ledger_pb2.AuditQuery, context: grpc.aio.ServicerContext
    ) -> ledger_pb2.AuditList:
        try:
            since = _timestamp("since", request.since)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        limit = min(request.limit or 100, 1000)
        return ledger_pb2.AuditList(entries=await asyncio.to_thread(self.keys.store.audit_entries, since, limit))

    async def _with_state(self, row: dict[str, Any]) -> ledger_pb2.Budget:
        spent, state = await asyncio.to_thread(self.budgets.evaluate, row)
        return ledger_pb2.Budget(
            tenant=row["tenant"], workload=row["workload"], period=row["period"],
            limit_usd=money.to_wire(row["limit_usd"]), soft_ratio=row["soft_ratio"], action=row["action"],
            spent_usd=money.to_wire(spent), state=state, strict=bool(row.get("strict", False)),
        )  # fmt: skip


def budget_row(budget: ledger_pb2.Budget) -> dict[str, Any]:
    """Validate a budget; ValueError names the field."""
    if not is_slug(budget.tenant):
        raise ValueError(f"tenant: {shown(budget.tenant)} is not a lowercase slug")
    if budget.workload and not is_slug(budget.workload):
        raise ValueError(f"workload: {shown(budget.workload)} is not a lowercase slug")
    if budget.period not in PERIODS:
        raise ValueError(f"period: {shown(budget.period)} is not one of {list(PERIODS)}")
    if budget.action not in ACTIONS:
        raise ValueError(f"action: {shown(budget.action)} is not one of {list(ACTIONS)}")
    try:
        limit = money.amount(budget.limit_usd)
    except ValueError as exc:
        raise ValueError(f"limit_usd: {shown(budget.limit_usd)} {exc}") from None
    soft = budget.soft_ratio or DEFAULT_SOFT_RATIO
    if not 0 < soft <= 1:
        raise ValueError(f"soft_ratio: {budget.soft_ratio} is outside (0, 1]")
    return {"tenant": budget.tenant, "workload": budget.workload, "period": budget.period, "limit_usd": limit,
            "soft_ratio": soft, "action": budget.action, "updated_at": datetime.now(UTC),
            "strict": budget.strict}  # fmt: skip


def build_report(days: list[dict[str, Any]], outcomes: list[dict[str, Any]]) -> ledger_pb2.Report:
    total_cost = sum((d["cost_usd"] for d in days), Decimal(0))
    requests = sum(o["requests"] for o in outcomes)
    answered = sum(o["requests"] for o in outcomes if o["answered"])
    escalated = sum(o["requests"] for o in outcomes if o["escalated"])
    by_tier: dict[str, int] = {}
    for o in outcomes:
        if o["answered"]:
            by_tier[o["final_tier"]] = by_tier.get(o["final_tier"], 0) + o["requests"]
    per_1k = total_cost / requests * 1000 if requests else Decimal(0)
    return ledger_pb2.Report(
        days=daily_spend(days),
        requests=requests,
        answered=answered,
        escalated=escalated,
        escalation_rate=escalated / requests if requests else 0.0,
        answered_by_tier={tier: n / answered for tier, n in by_tier.items()},
        total_cost_usd=money.to_wire(total_cost),
        cost_per_1k_requests_usd=money.to_wire(per_1k),
    )


def daily_spend(days: list[dict[str, Any]]) -> list[ledger_pb2.DailySpend]:
    """LedgerStore.daily's rows (by day and tier) as Report.days and SpendReport.days hold them."""
    return [
        ledger_pb2.DailySpend(
            day=d["day"].isoformat(),
            tier=TIERS[d["tier"]],
            attempts=d["attempts"],
            input_tokens=d["input_tokens"],
            output_tokens=d["output_tokens"],
            cost_usd=money.to_wire(d["cost_usd"]),
            kinds=[_kind_spend(kind) for kind in kind_spend(d)],
        )
        for d in days
    ]
