"""What the ledger derives from a request's row and its attempts together, kept in the transaction
that writes either: the daily request outcome rollups (`daily_requests`: ended requests per UTC day,
tenant, workload, answered, final tier, final model, data class and escalated, and how many of the
answered ones fell back, i.e. have a live FAULT attempt of the same request and tenant:
`_requests.routing_mix`), and the answered requests' latencies (`answer_latencies`: each live
ANSWERED attempt on the request's final model, with the request's tenant, workload and time:
`_quality.QualityStore.report`).

A request's row and its attempts arrive apart (RequestSettled carries the answering attempts, the
failed ones come as AttemptFinished, unsettled rows are billed later and settled later still), so
one transaction's `OutcomeChanges` collects both what it did to request rows (stored, or replaced:
a placeholder by the real outcome, a failed run by an answered one) and by how much it changed each
request's count of live FAULT attempts; `flush` then moves the rollups by exactly that, in the same
transaction. On PostgreSQL two ledgers (or the attempt and request consumers of one) may write a
request and its fault at once, each blind to the other's uncommitted row: `flush` takes a
transaction-scoped advisory lock per request first, so the second to take it sees the first's rows,
and counts the faults after it. SQLite has one writer at a time. A request's latencies are simply
rebuilt from its row and attempts whenever either changed (a request's handful of rows)."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Integer, and_, bindparam, delete, func, select, text
from sqlalchemy.dialects import postgresql

from tierlift.ledger._schema import FAULT, LIVE, answer_latencies, attempts, daily_requests, requests

KEYS = ("tenant", "workload", "answered", "final_tier", "final_model", "data_class", "escalated")
# what a request row is counted by, and what it is found by
REQUEST_COLUMNS = ("request_id", "event_id", "occurred_at", *KEYS)
_LOCK_CLASS = 0x746C  # the advisory locks' first key ("tl"): these locks' own space
_LOCK = text("SELECT count(pg_advisory_xact_lock(:class, k)) FROM unnest(:keys) AS k").bindparams(
    bindparam("keys", type_=postgresql.ARRAY(Integer)), bindparam("class", type_=Integer)
)


def _is_fault(row: Mapping[str, Any]) -> bool:
    return row.get("kind", "live") == "live" and row["outcome"] == "FAULT"


def _is_answer(row: Mapping[str, Any]) -> bool:
    return row.get("kind", "live") == "live" and row["outcome"] == "ANSWERED"


def _day(row: Mapping[str, Any]) -> date:
    at: datetime = row["occurred_at"]  # SQLite gives stored times back without their zone (UTC)
    return (at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)).date()


class OutcomeChanges:
    """What one transaction did that the request rollups count (see the module)."""

    def __init__(self) -> None:
        self.requests: list[tuple[Mapping[str, Any] | None, Mapping[str, Any]]] = []
        self.faults: Counter[tuple[str, str]] = Counter()
        self.answers: set[str] = set()  # requests whose latencies to rebuild

    def stored(self, old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> None:
        """Request row `new` was inserted (`old` None) or put in place of `old`."""
        self.requests.append((old, new))
        self.answers.add(new["request_id"])

    def attempts(self, added: Iterable[Mapping[str, Any]], removed: Iterable[Mapping[str, Any]] = ()) -> None:
        """Attempt rows added and taken away (the stored row a late outcome replaced)."""
        added, removed = list(added), list(removed)
        for row in added:
            if _is_fault(row):
                self.faults[row["request_id"], row["tenant"]] += 1
        for row in removed:
            if _is_fault(row):
                self.faults[row["request_id"], row["tenant"]] -= 1
        self.answers |= {row["request_id"] for row in (*added, *removed) if _is_answer(row)}

    def flush(self, conn: Connection, insert: Any) -> None:
        """Move the rollups by what was collected (`insert`: the dialect's INSERT)."""
        faults = {key: n for key, n in self.faults.items() if n}
        involved = {key[0] for key in faults} | {
            row["request_id"] for pair in self.requests for row in pair if row is not None and row["answered"]
        }
        if not involved and not self.requests and not self.answers:
            return
        if conn.dialect.name == "postgresql" and (locked := involved | self.answers):
            keys = sorted({zlib.crc32(request_id.encode()) - 2**31 for request_id in locked})
            conn.execute(_LOCK, {"class": _LOCK_CLASS, "keys": keys})
        _rebuild_latencies(conn, self.answers)
        now = _fault_counts(conn, involved)

        def fell_back(row: Mapping[str, Any], before: bool) -> int:
            key = (row["request_id"], row["tenant"])
            return int(bool(row["answered"]) and now.get(key, 0) - (faults.get(key, 0) if before else 0) > 0)

        totals: dict[tuple[Any, ...], list[int]] = {}

        def add(row: Mapping[str, Any], requests_n: int, fell_back_n: int) -> None:
            key = (_day(row), *(row.get(k, "") for k in KEYS))
            total = totals.setdefault(key, [0, 0])
            total[0] += requests_n
            total[1] += fell_back_n

        for old, new in self.requests:
            if old is not None:
                add(old, -1, -fell_back(old, before=True))
            add(new, 1, fell_back(new, before=False))
        # answered requests stored before whose faults changed here
        changed = {new["request_id"] for _, new in self.requests}
        moved = {key for key in faults if key[0] not in changed}
        if moved:
            r = requests.c
            query = select(*(r[name] for name in REQUEST_COLUMNS)).where(
                r.request_id.in_(sorted({request_id for request_id, _ in moved})), r.answered.is_(True)
            )
            for row in map(dict, conn.execute(query).mappings()):
                if (row["request_id"], row["tenant"]) in moved:
                    add(row, 0, fell_back(row, before=False) - fell_back(row, before=True))
        _add(conn, insert, totals)


def _rebuild_latencies(conn: Connection, request_ids: set[str]) -> None:
    """Replace the `answer_latencies` rows of `request_ids` with what their rows give now."""
    if not request_ids:
        return
    ids = sorted(request_ids)
    lat, r, a = answer_latencies, requests.c, attempts.c
    conn.execute(delete(lat).where(lat.c.request_id.in_(ids)))
    found = (
        select(r.request_id, a.event_id, r.tenant, r.workload, a.model, a.latency_ms, r.occurred_at)
        .join(attempts, and_(a.request_id == r.request_id, a.model == r.final_model))
        .where(r.request_id.in_(ids), r.answered.is_(True), a.kind == "live", a.outcome == "ANSWERED")
    )
    names = ["request_id", "event_id", "tenant", "workload", "model", "latency_ms", "occurred_at"]
    conn.execute(lat.insert().from_select(names, found))


def _fault_counts(conn: Connection, request_ids: set[str]) -> dict[tuple[str, str], int]:
    """Each (request, tenant)'s live FAULT attempts now (ix_attempts_live_faults)."""
    if not request_ids:
        return {}
    a = attempts.c
    query = (
        select(a.request_id, a.tenant, func.count())
        .where(a.request_id.in_(sorted(request_ids)), a.kind == LIVE, a.outcome == FAULT)
        .group_by(a.request_id, a.tenant)
    )
    return {(request_id, tenant): int(n) for request_id, tenant, n in conn.execute(query)}


def _add(conn: Connection, insert: Any, totals: Mapping[tuple[Any, ...], list[int]]) -> None:
    values = [
        dict(zip(("day", *KEYS), key, strict=True)) | {"requests": n, "fell_back": fell}
        for key, (n, fell) in sorted(totals.items())  # in key order: replicas adding at once cannot deadlock
        if n or fell
    ]
    if not values:
        return
    stmt = insert(daily_requests)
    c = daily_requests.c
    stmt = stmt.on_conflict_do_update(
        index_elements=["day", *KEYS],
        set_={name: c[name] + stmt.excluded[name] for name in ("requests", "fell_back")},
    )
    conn.execute(stmt, values)
