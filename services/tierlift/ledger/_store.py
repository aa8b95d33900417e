"""The ledger's database access (sync SQLAlchemy Core; the async service calls it in a worker
thread). Inserts are idempotent on the event id, and the daily rollups grow only by the rows
an insert really added, in the same transaction, so a replayed event changes nothing."""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Table,
    Text,
    bindparam,
    case,
    cast,
    column,
    create_engine,
    delete,
    event,
    func,
    literal,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.types import TypeDecorator

from tierlift.core import money
from tierlift.core.catalog import Catalog
from tierlift.core.entry import StartupError
from tierlift.ledger._outcomes import REQUEST_COLUMNS, OutcomeChanges
from tierlift.ledger._schema import (
    KIND_COST_COLUMNS,
    KIND_TOKEN_COLUMNS,
    LIVE,
    PRICED_KINDS,
    attempts,
    attempts_started,
    budgets,
    daily_spend,
    from_picos,
    price_versions,
    requests,
)

_ROLLUP_KEYS = ("tenant", "workload", "tier", "model")
# what a day's rollup adds up: the tokens and cost, of every kind
_ROLLUP_TOKENS = ("input_tokens", "output_tokens", *KIND_TOKEN_COLUMNS)
_ROLLUP_COSTS = ("cost_usd", *KIND_COST_COLUMNS)
# what a usage report replaces in an estimated attempt row: its tokens, their cost and the prices
_REPORTED_COLUMNS = (*_ROLLUP_TOKENS, *_ROLLUP_COSTS, "input_usd_per_million", "output_usd_per_million",
                     "price_version")  # fmt: skip


def make_engine(url: str) -> Engine:
    # PostgreSQL's JIT compiles the console's window reads (hundreds of thousands of rows) for
    # up to 0.7 s each and never wins that back at the ledger's sizes: it is off on its connections
    postgres = make_url(url).get_backend_name() == "postgresql"
    engine = create_engine(url, pool_pre_ping=True, connect_args={"options": "-c jit=off"} if postgres else {})
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the ingest writer
            cur.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across process crashes
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    return engine


def dialect_insert(engine: Engine) -> Any:
    """The database's own INSERT (with ON CONFLICT), SQLite or PostgreSQL."""
    dialects = {"sqlite": sqlite, "postgresql": postgresql}
    if engine.dialect.name not in dialects:
        raise ValueError(f"unsupported database {engine.dialect.name}; use SQLite or PostgreSQL")
    return dialects[engine.dialect.name].insert


class LedgerStore:
    def __init__(self, engine: Engine, regeneration_window_s: float = 600.0) -> None:
        self.engine = engine
        self.regeneration_window_s = regeneration_window_s
        self._insert = dialect_insert(engine)

    # --- writes ---------------------------------------------------------------------------------

    def _insert_rows(self, table: Table, rows: Sequence[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]] | None]:
        """An INSERT of `rows` (all with the same keys; `key` unique in the table) and the
        parameters to execute it with. On PostgreSQL the rows travel as one JSON parameter that
        the server reads with json_to_recordset into the columns' own types: one short statement
        whatever the batch size. A multi-row VALUES is long SQL that psycopg parses again on every
        call (~40 ms of CPU for 256 attempts); one array per column (unnested by the server) had
        psycopg dump every element in Python, a quarter of the writer's time (JSON: 7.9-9.2k vs
        7.7-8.2k events/s in four runs alternating). Each value is bound by its column type first (Money as
        picodollars, an integer), so the server gets the numbers any other statement would;
        floats are finite by then (`_ingest`); orjson writes JSON ~12x faster than the standard
        library here (0.6 vs 7.4 µs per attempt row, a tenth of the writer's time).
        `rows` hold each key once (`_first_of_each`): one statement may not touch a row twice."""
        if self.engine.dialect.name != "postgresql":
            return self._insert(table), list(rows)
        names = list(rows[0])
        dialect = self.engine.dialect
        processors = [(name, process) for name in names if (process := _own_bind_processor(table, name, dialect))]
        bound = [row | {name: process(row[name]) for name, process in processors} for row in rows]
        payload = orjson.dumps(bound).decode()  # timestamps as RFC 3339, which timestamptz reads exactly
        typed = [column(name, table.c[name].type) for name in names]
        source = func.json_to_recordset(cast(bindparam("rows_json", payload, type_=Text), postgresql.JSON))
        values = select(*typed).select_from(source.table_valued(*typed).render_derived(with_types=True))
        return self._insert(table).from_select(names, values), None

    def insert_attempts(self, rows: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
        """Insert in one transaction, skipping stored event ids; returns the (tenant, workload)
        pairs whose spend grew."""
        outcomes = OutcomeChanges()
        with self.engine.begin() as conn:
            grew = self._insert_attempts(conn, rows, outcomes)
            outcomes.flush(conn, self._insert)
        return grew

    def insert_requests(self, rows: Sequence[dict[str, Any]]) -> None:
        """Once per request; a real outcome replaces a placeholder written by `reconcile`, and an
        answer replaces a failed run's outcome (a retry with the request's idempotency key)."""
        outcomes = OutcomeChanges()
        with self.engine.begin() as conn:
            self._insert_requests(conn, rows, outcomes)
            outcomes.flush(conn, self._insert)

    def insert_settled(self, rows: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
        """Answered requests with their answering attempts (`settled_row`s), both tables in one
        transaction; returns the (tenant, workload) pairs whose spend grew."""
        outcomes = OutcomeChanges()
        with self.engine.begin() as conn:
            grew = self._insert_attempts(conn, [a for row in rows for a in row["attempts"]], outcomes)
            self._insert_requests(conn, [row["request"] for row in rows], outcomes)
            outcomes.flush(conn, self._insert)
        return grew

    def correct_attempts(self, rows: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
        """Usage reports (`usage_report_row`s: attempt rows priced from the provider's usage) in
        one transaction. Each replaces the tokens and cost of its attempt's row if that row is
        still estimated, and the day's rollup moves by the difference; a row already reported is
        never touched, so a report replayed (or a second one) changes nothing. A report that comes
        before its attempt is stored as the attempt, and the estimated attempt, coming after,
        finds its event id stored. Returns the (tenant, workload) pairs whose live spend changed.
        Locks are taken in one order whatever the batch (the estimated rows, the new rows, the
        rollups, each sorted), so replicas correcting at once cannot deadlock."""
        if not rows:
            return set()
        rows = _first_of_each(rows, "event_id")
        a = attempts.c
        query = select(attempts).where(a.event_id.in_([row["event_id"] for row in rows]), a.estimated.is_(True))
        with self.engine.begin() as conn:
            locked = conn.execute(query.order_by(a.event_id).with_for_update()).mappings()
            estimated = {old["event_id"]: dict(old) for old in locked}
            added = self._insert_new_attempts(conn, rows)
            changes = [row for row in rows if row["event_id"] in added]
            outcomes = OutcomeChanges()  # a report stored before its attempt is the attempt
            outcomes.attempts(changes)
            for row in rows:
                old = estimated.get(row["event_id"])
                if old is not None and self._replace_estimate(conn, row):
                    changes.append(_difference(old, row))
            live = [change for change in changes if change.get("kind", "live") == "live"]
            self._add_to_rollups(conn, live)
            outcomes.flush(conn, self._insert)
        return {(change["tenant"], change["workload"]) for change in live}

    def _replace_estimate(self, conn: Connection, row: dict[str, Any]) -> bool:
        """Put a reported row's tokens and cost in place of its estimated row's; False when that
        row is reported already."""
        a = attempts.c
        replaced = conn.execute(
            update(attempts)
            .where(a.event_id == row["event_id"], a.estimated.is_(True))
            .values({name: row[name] for name in _REPORTED_COLUMNS} | {"estimated": False})
        )
        return bool(replaced.rowcount == 1)

    def _insert_attempts(
        self, conn: Connection, rows: Sequence[dict[str, Any]], outcomes: OutcomeChanges
    ) -> set[tuple[str, str]]:
        if not rows:
            return set()
        rows = _first_of_each(rows, "event_id")  # an event twice in one batch is stored and counted once
        added = self._insert_new_attempts(conn, rows)
        # an attempt stored already is one replayed, or one billed `unsettled` while its outcome
        # was not known: this outcome replaces that row, once
        changes = [r for r in rows if r["event_id"] in added]
        outcomes.attempts(changes)
        changes += self._settle_late(conn, [r for r in rows if r["event_id"] not in added], outcomes)
        # shadow runs are priced and stored, but are not the tenant's live spend
        live = [r for r in changes if r.get("kind", "live") == "live"]
        self._add_to_rollups(conn, live)
        return {(r["tenant"], r["workload"]) for r in live}

    def _settle_late(
        self, conn: Connection, rows: Sequence[dict[str, Any]], outcomes: OutcomeChanges
    ) -> list[dict[str, Any]]:
        """Put each row (an attempt's outcome) in place of its stored `unsettled` row, if it has
        one; a settled row is never touched. What the rollups change by: the stored row taken out
        of its day and key, and the outcome added to its own (its time is when the call ended, not
        when it started, and may fall on the next day)."""
        if not rows:
            return []
        a = attempts.c
        query = select(attempts).where(a.event_id.in_([r["event_id"] for r in rows]), a.unsettled.is_(True))
        found = {
            old["event_id"]: dict(old) for old in conn.execute(query.order_by(a.event_id).with_for_update()).mappings()
        }
        changes = []
        for row in rows:
            old = found.get(row["event_id"])
            if old is None:
                continue
            values = {k: v for k, v in row.items() if k != "event_id"} | {"unsettled": False}
            replaced = conn.execute(
                update(attempts).where(a.event_id == row["event_id"], a.unsettled.is_(True)).values(values)
            )
            if replaced.rowcount == 1:
                changes += [_removed(old), row]
                outcomes.attempts([row], removed=[old])  # a fault may have become an answer, or the reverse
        return changes

    # --- write-ahead attempts (tierlift.attempt.started) ------------------------------------------

    def insert_started(self, rows: Sequence[dict[str, Any]]) -> None:
        """Provider calls written ahead of the call; a replayed one changes nothing."""
        if not rows:
            return
        with self.engine.begin() as conn:
            stmt, values = self._insert_rows(attempts_started, _first_of_each(rows, "event_id"))
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["event_id"]), values)

    def due_started(self, cutoff: datetime, limit: int = 1000) -> list[dict[str, Any]]:
        """Started calls whose deadline passed before `cutoff`, oldest first: each has an outcome
        by now, or never will."""
        s = attempts_started.c
        query = select(s.event_id, s.payload).where(s.settle_after < cutoff).order_by(s.settle_after).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]

    def settle_started(self, due: Sequence[str], unsettled: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
        """Close the started calls `due`: each whose attempt is stored is done; `unsettled` holds the
        attempt rows (`unsettled` true, at the worst case) written for the others, unless their
        outcome is stored meanwhile. Returns the (tenant, workload) pairs whose live spend grew."""
        with self.engine.begin() as conn:
            grew: set[tuple[str, str]] = set()
            if unsettled:
                rows = _first_of_each(unsettled, "event_id")
                added = self._insert_new_attempts(conn, rows)
                live = [r for r in rows if r["event_id"] in added and r.get("kind", "live") == "live"]
                self._add_to_rollups(conn, live)
                outcomes = OutcomeChanges()
                outcomes.attempts(live)
                outcomes.flush(conn, self._insert)
                grew = {(r["tenant"], r["workload"]) for r in live}
            if due:
                conn.execute(delete(attempts_started).where(attempts_started.c.event_id.in_(sorted(due))))
        return grew

    def unsettled_due(self, due: Sequence[str]) -> set[str]:
        """Of the started calls `due`, those with no attempt stored."""
        if not due:
            return set()
        with self.engine.connect() as conn:
            stored = set(conn.execute(select(attempts.c.event_id).where(attempts.c.event_id.in_(list(due)))).scalars())
        return set(due) - stored

    def _insert_new_attempts(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Insert `rows` (one per event id), skipping stored event ids; the event ids added."""
        stmt, values = self._insert_rows(attempts, rows)
        stmt = stmt.on_conflict_do_nothing(index_elements=["event_id"]).returning(attempts.c.event_id)
        return set(conn.execute(stmt, values).scalars())

    def _insert_requests(self, conn: Connection, rows: Sequence[dict[str, Any]], outcomes: OutcomeChanges) -> None:
        """New rows are inserted; a stored one is replaced only by what may replace it, and its
        old values (locked first) taken out of the outcome rollups as the new ones go in."""
        if not rows:
            return
        rows = _first_of_each(rows, "request_id")
        r = requests.c
        stmt, values = self._insert_rows(requests, rows)
        stmt = stmt.on_conflict_do_nothing(index_elements=["request_id"]).returning(r.request_id)
        added = set(conn.execute(stmt, values).scalars())
        stored = [row for row in rows if row["request_id"] not in added]  # replayed, or a new outcome
        old: dict[str, Any] = {}
        if stored:
            query = select(*(r[name] for name in REQUEST_COLUMNS)).where(
                r.request_id.in_([row["request_id"] for row in stored])
            )
            old = {
                o["request_id"]: dict(o)
                for o in conn.execute(query.order_by(r.request_id).with_for_update()).mappings()
            }
            stmt, values = self._insert_rows(requests, stored)
            stmt = stmt.on_conflict_do_update(
                index_elements=["request_id"],
                set_={c.name: stmt.excluded[c.name] for c in requests.columns if c.name != "request_id"},
                # a placeholder gives way to the real outcome; a run that failed, to a later run of the
                # same request (its idempotency key) that was answered
                where=r.event_id.like(f"%{RECONCILED}") | (~r.answered & stmt.excluded.answered),
            ).returning(r.request_id)
            replaced = set(conn.execute(stmt, values).scalars())
            stored = [row for row in stored if row["request_id"] in replaced]
        for row in rows:
            if row["request_id"] in added:
                outcomes.stored(None, row)
        for row in stored:
            outcomes.stored(old.get(row["request_id"]), row)
        self._mark_regenerations(conn, rows)

    def _add_to_rollups(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Add `rows` to their days' rollups: each is one attempt, unless it says how many
        (`attempts`: 0 for a usage report's difference, whose attempt is counted already)."""
        totals: dict[tuple[Any, ...], dict[str, Any]] = {}
        for r in rows:
            key = (r["occurred_at"].astimezone(UTC).date(), *(r[k] for k in _ROLLUP_KEYS))
            t = totals.setdefault(key, {"attempts": 0} | dict.fromkeys(_ROLLUP_TOKENS, 0)
                                  | dict.fromkeys(_ROLLUP_COSTS, Decimal(0)))  # fmt: skip
            t["attempts"] += r.get("attempts", 1)
            for name in _ROLLUP_TOKENS:
                t[name] += r.get(name, 0)  # a row made by hand (tests, benchmarks) may leave the kinds out
            for name in _ROLLUP_COSTS:
                t[name] += r.get(name, 0)
        if not totals:
            return
        stmt = self._insert(daily_spend)
        c = daily_spend.c
        stmt = stmt.on_conflict_do_update(
            index_elements=["day", *_ROLLUP_KEYS],
            set_={name: c[name] + stmt.excluded[name] for name in ("attempts", *_ROLLUP_TOKENS, *_ROLLUP_COSTS)},
        )
        # in key order: two ledger replicas adding to the same days otherwise deadlock
        values = [dict(zip(("day", *_ROLLUP_KEYS), key, strict=True)) | t for key, t in sorted(totals.items())]
        conn.execute(stmt, values)

    def _mark_regenerations(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """A request whose prompt (same tenant and workload) came again within the window was
        regenerated: the user did not take its answer. Either may arrive first.

        Set-based, one read per (tenant, workload) in the batch and one update: the pairs this
        batch can add involve one of its rows, so the rows to look at are its prompts' unmarked
        ones up to a window before the batch (a batch row may regenerate them) and every one up
        to a window after its first (one of them may regenerate a batch row). Each part is a
        plain span under an equal tenant and workload with the prompts as an IN list, so it is a
        search of ix_requests_prompt (tenant, workload, prompt_sha256, occurred_at): a row-value
        IN of (tenant, workload, prompt) triples made SQLite scan the whole table for every
        batch, and one OR of the two parts made it read all the tenant's requests in the window.
        The parts stay apart (not one span) so that a prompt asked over and over, whose older
        rows are all marked, returns few rows."""
        new = [row for row in rows if row.get("prompt_sha256")]
        if not new:
            return
        r, window = requests.c, timedelta(seconds=self.regeneration_window_s)
        first, last = min(row["occurred_at"] for row in new), max(row["occurred_at"] for row in new)
        prompts: dict[tuple[str, str], set[str]] = {}
        for tenant, workload, prompt in {_group(row) for row in new}:
            prompts.setdefault((tenant, workload), set()).add(prompt)
        columns = (r.request_id, r.tenant, r.workload, r.prompt_sha256, r.occurred_at, r.regenerated)
        found_by_id: dict[str, Any] = {}
        for (tenant, workload), shas in prompts.items():
            ours = (r.tenant == tenant, r.workload == workload, r.prompt_sha256.in_(sorted(shas)))
            unmarked_before = select(*columns).where(
                *ours, r.regenerated.is_(False), r.occurred_at >= first - window, r.occurred_at < last
            )
            after_first = select(*columns).where(*ours, r.occurred_at > first, r.occurred_at <= last + window)
            found_by_id |= {row.request_id: row for row in conn.execute(union_all(unmarked_before, after_first))}
        found = list(found_by_id.values())
        stored = _times_by_group((row.tenant, row.workload, row.prompt_sha256, row.occurred_at) for row in found)
        arrived = _times_by_group((*_group(row), row["occurred_at"]) for row in new)
        # a new row is regenerated by any later row, stored or new (all are stored by now) ...
        marked = [
            row["request_id"]
            for row in new
            if _any_within(stored.get(_group(row), []), _utc(row["occurred_at"]), window)
        ]
        # ... and a stored row by a new one
        batch_ids = {row["request_id"] for row in new}
        marked += [
            row.request_id
            for row in found
            if not row.regenerated
            and row.request_id not in batch_ids
            and _any_within(arrived[(row.tenant, row.workload, row.prompt_sha256)], _utc(row.occurred_at), window)
        ]
        if marked:
            conn.execute(update(requests).where(r.request_id.in_(marked)).values(regenerated=True))

    def reconcile(self, older_than: datetime) -> int:
        """Every attempt joins a request that says how it ended: for attempts older than
        `older_than` whose request never reported an outcome (its router stopped, or could not
        publish), write a placeholder request saying so. Returns how many were written."""
        a, r = attempts.c, requests.c
        orphans = (
            select(a.request_id, a.tenant, a.workload, func.count().label("attempt_count"),
                   func.max(a.occurred_at).label("occurred_at"), *_usd_sum(a.cost_usd))
            .outerjoin(requests, r.request_id == a.request_id)
            .where(r.request_id.is_(None), a.occurred_at < older_than, a.kind == "live")
            .group_by(a.request_id, a.tenant, a.workload)
            .order_by(a.request_id)  # every replica reconciles: inserts in one order cannot deadlock
        )  # fmt: skip
        with self.engine.begin() as conn:
            found = [_with_usd_total(row) for row in conn.execute(orphans).mappings().all()]
            rows = [
                {"request_id": o["request_id"], "event_id": f"{o['request_id']}{RECONCILED}", "tenant": o["tenant"],
                 "workload": o["workload"], "answered": False, "final_tier": "", "final_model": "",
                 "attempt_count": o["attempt_count"], "escalated": False, "total_cost_usd": o["cost_usd"],
                 "occurred_at": o["occurred_at"], "error": NO_OUTCOME}
                for o in found
            ]  # fmt: skip
            if rows:
                stmt = self._insert(requests).on_conflict_do_nothing(index_elements=["request_id"])
                added = set(conn.execute(stmt.returning(requests.c.request_id), rows).scalars())
                outcomes = OutcomeChanges()
                for row in rows:
                    if row["request_id"] in added:
                        outcomes.stored(None, row)
                outcomes.flush(conn, self._insert)
        return len(rows)

    def record_prices(self, catalog: Catalog) -> None:
        """Store this catalog version's prices once. The same version with other prices is
        refused: history is priced by version, so a price change needs a new version."""
        now = datetime.now(UTC)
        # compared as stored: a derived self-hosted price has more places than the 1e-12 column
        wanted = {m.id: _prices_row(m.price.input_per_million, m.price.output_per_million, m.price.per_million)
                  for m in catalog.models}  # fmt: skip
        with self.engine.begin() as conn:
            stored = conn.execute(select(price_versions).where(price_versions.c.version == catalog.version)).all()
            for row in stored:
                # a version recorded before kinds were priced holds NULL for them: not compared
                recorded = {k: v for k, v in row._mapping.items() if k in wanted.get(row.model, {}) and v is not None}
                if row.model in wanted and any(wanted[row.model][k] != v for k, v in recorded.items()):
                    raise StartupError(
                        f"catalog version {catalog.version} already recorded other prices for {row.model}: "
                        "give the changed catalog a new `version`"
                    )
            known = {row.model for row in stored}
            new = [{"version": catalog.version, "model": model, **prices, "recorded_at": now}
                   for model, prices in wanted.items() if model not in known]  # fmt: skip
            if new:
                conn.execute(price_versions.insert(), new)

    def set_budget(self, row: dict[str, Any]) -> None:
        stmt = self._insert(budgets)
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant", "workload", "period"],
            set_={k: stmt.excluded[k] for k in ("limit_usd", "soft_ratio", "action", "updated_at", "strict")},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, row)

    # --- reads ----------------------------------------------------------------------------------

    def spend(
        self, tenant: str, workload: str, since: datetime | None, until: datetime | None, by_model: bool = False
    ) -> list[dict[str, Any]]:
        """Live spend by (tenant, workload, tier, model), or by (tier, model) alone with tenant and
        workload "" (`by_model`: ~8 lines to sum instead of ~1,200), with each kind's tokens and cost
        (KIND_TOKEN_COLUMNS, KIND_COST_COLUMNS) summed, and how many of the attempts are still
        estimated or unsettled. The window's whole UTC days are read from the daily rollups, which
        hold exactly their live attempts' sums (`_add_to_rollups`, corrections by the difference);
        only the part-days at its ends are summed from attempts, and the estimated and unsettled
        ones (few) are counted from their partial index. All of it is added up in one statement."""
        a, d = attempts.c, daily_spend.c
        zero, one = literal(0, BigInteger), literal(1, BigInteger)
        columns = ("attempts", *_ROLLUP_TOKENS, *_ROLLUP_COSTS, "estimated_attempts", "unsettled_attempts")

        def from_attempts(start: datetime | None, end: datetime | None) -> Any:
            values = (one, *(a[name] for name in _ROLLUP_TOKENS), *(a[name] for name in _ROLLUP_COSTS), zero, zero)
            part = _spend_part(a, values, columns, by_model).where(a.kind == "live")
            return _windowed(part, a, tenant, workload, start, end)

        days = _whole_days(since, until)
        if days is None:
            parts = [from_attempts(since, until)]
        else:
            first, last = days
            rollups = _filtered(_spend_part(d, [d[name] for name in columns[:-2]] + [zero, zero], columns, by_model),
                                d, tenant, workload)  # fmt: skip
            rollups = rollups.where(d.day >= first) if first else rollups
            parts = [rollups.where(d.day < last) if last else rollups]
            if since is not None and first is not None and _utc(since) < _midnight(first):
                parts.append(from_attempts(since, _midnight(first)))
            if until is not None and last is not None and _midnight(last) < _utc(until):
                parts.append(from_attempts(_midnight(last), until))
        flags = (zero,) * (len(columns) - 2) + (case((a.estimated, 1), else_=0), case((a.unsettled, 1), else_=0))
        flagged = _spend_part(a, flags, columns, by_model).where(a.kind == LIVE, a.estimated | a.unsettled)
        parts.append(_windowed(flagged, a, tenant, workload, since, until))
        rows = union_all(*parts).subquery()
        u = rows.c
        keys = (u.tier, u.model) if by_model else (u.tenant, u.workload, u.tier, u.model)
        shown = (literal("").label("tenant"), literal("").label("workload"), *keys) if by_model else keys
        counts = ("attempts", *_ROLLUP_TOKENS, "estimated_attempts", "unsettled_attempts")
        costs = [f"{name}_{part}" for name in _ROLLUP_COSTS for part in ("micros", "picos")]  # each part's `_usd_sum`
        query = (
            select(*shown, *(func.sum(u[name]).label(name) for name in (*counts, *costs)))
            .group_by(*keys)
            .having(func.sum(u.attempts) > 0)  # a key whose only attempt moved to another day
            .order_by(*keys)
        )  # fmt: skip
        with self.engine.connect() as conn:
            found = conn.execute(query).mappings().all()
        # PostgreSQL's SUM: Decimal
        return [_with_usd_total(row, _ROLLUP_COSTS) | {k: int(row[k]) for k in counts} for row in found]

    def attempts_for(self, request_id: str) -> list[dict[str, Any]]:
        a = attempts.c
        query = select(attempts).where(a.request_id == request_id, a.kind == "live").order_by(a.attempt_index)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]

    def daily(self, tenant: str, workload: str, since: date | None, until: date | None) -> list[dict[str, Any]]:
        """Live spend by (day, tier), each kind's tokens and cost summed as `spend` sums them."""
        d = daily_spend.c
        query = (
            select(d.day, d.tier, func.sum(d.attempts).label("attempts"),
                   *(func.sum(d[name]).label(name) for name in _ROLLUP_TOKENS),
                   *(part for name in _ROLLUP_COSTS for part in _usd_sum(d[name], name)))
            .group_by(d.day, d.tier)
            .order_by(d.day, d.tier)
        )  # fmt: skip
        query = _filtered(query, d, tenant, workload)
        if since:
            query = query.where(d.day >= since)
        if until:
            query = query.where(d.day < until)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        # PostgreSQL sums BIGINT as NUMERIC: counts come back as Decimal there
        counts = ("attempts", *_ROLLUP_TOKENS)
        return [{**_with_usd_total(row, _ROLLUP_COSTS), **{k: int(row[k]) for k in counts}} for row in rows]

    def request_outcomes(
        self, tenant: str, workload: str, since: datetime | None, until: datetime | None
    ) -> list[dict[str, Any]]:
        """Requests grouped by (answered, final tier, escalated), with counts."""
        r = requests.c
        query = select(r.answered, r.final_tier, r.escalated, func.count().label("requests")).group_by(
            r.answered, r.final_tier, r.escalated
        )
        query = _filtered(query, r, tenant, workload)
        if since:
            query = query.where(r.occurred_at >= since)
        if until:
            query = query.where(r.occurred_at < until)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings().all()]

    def budgets(self, tenant: str = "") -> list[dict[str, Any]]:
        query = select(budgets).order_by(budgets.c.tenant, budgets.c.workload, budgets.c.period)
        if tenant:
            query = query.where(budgets.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]

    def spent_since(self, tenant: str, workload: str, day: date) -> Decimal:
        """Spend of a tenant (and workload; "" = all of them) from `day` on, from the rollups."""
        d = daily_spend.c
        query = _filtered(select(*_usd_sum(d.cost_usd)), d, tenant, workload).where(d.day >= day)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().one()
        spent: Decimal = _with_usd_total(row)["cost_usd"]
        return spent


_MICRO = 1_000_000  # picodollars per microdollar
RECONCILED = ".reconciled"  # the event id suffix of a placeholder request
NO_OUTCOME = "no outcome was reported for this request: its router stopped or could not publish it"


def _usd_sum(column: Any, name: str = "cost_usd") -> tuple[Any, Any]:
    """SUM of a picodollar column that cannot overflow: SQLite's SUM of integers stops at
    2**63 picodollars (9.2M USD). Summing microdollars and the picodollar remainders apart
    keeps each sum far inside 64 bits; `_with_usd_total` puts them back together exactly as
    `name`."""
    picos = type_coerce(column, BigInteger)
    return func.sum(picos // _MICRO).label(f"{name}_micros"), func.sum(picos % _MICRO).label(f"{name}_picos")


def _with_usd_total(row: Any, names: Sequence[str] = ("cost_usd",)) -> dict[str, Any]:
    parts, columns = _usd_parts(tuple(names))
    out = {k: v for k, v in row.items() if k not in parts}
    for name, micros, picos in columns:
        total = int(row[micros] or 0) * _MICRO + int(row[picos] or 0)
        out[name] = from_picos(total) if total else _ZERO_USD  # most kinds cost nothing on most lines
    return out


@functools.cache
def _usd_parts(names: tuple[str, ...]) -> tuple[frozenset[str], tuple[tuple[str, str, str], ...]]:
    """The `_usd_sum` columns of `names`, and each name with its two."""
    columns = tuple((name, f"{name}_micros", f"{name}_picos") for name in names)
    return frozenset(c for _, *pair in columns for c in pair), columns


_ZERO_USD = from_picos(0)


def _difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """What replacing the row `old` with `new` adds to its day's rollup: its tokens' and costs'
    differences, and no attempt."""
    same = {key: old[key] for key in (*_ROLLUP_KEYS, "kind")} | {"attempts": 0, "occurred_at": _utc(old["occurred_at"])}
    return same | {name: new[name] - old[name] for name in (*_ROLLUP_TOKENS, *_ROLLUP_COSTS)}


def _removed(old: Mapping[str, Any]) -> dict[str, Any]:
    """What taking the row `old` out of its day's rollup adds to it: one attempt fewer, its tokens
    and costs negated."""
    same = {key: old[key] for key in (*_ROLLUP_KEYS, "kind")} | {
        "attempts": -1,
        "occurred_at": _utc(old["occurred_at"]),
    }
    return same | {name: -old[name] for name in (*_ROLLUP_TOKENS, *_ROLLUP_COSTS)}


def _spend_part(table: Any, values: Sequence[Any], names: Sequence[str], by_model: bool) -> Any:
    """One source of `LedgerStore.spend`'s lines, summed by the line's key on its own: `values` as
    `names`, each cost (_ROLLUP_COSTS) as its `_usd_sum` parts. Summed apart, PostgreSQL hashes the
    ~110,000 rollup rows of 90 days into their lines (in parallel); one sum over the union of the
    parts sorted them all and spilled to disk (130 against ~60 ms)."""
    keys = (table.tier, table.model) if by_model else (table.tenant, table.workload, table.tier, table.model)
    sums: list[Any] = []
    for value, name in zip(values, names, strict=True):
        sums += _usd_sum(value, name) if name in _ROLLUP_COSTS else [func.sum(value).label(name)]
    return select(*keys, *sums).group_by(*keys)


def _windowed(query: Any, a: Any, tenant: str, workload: str, start: datetime | None, end: datetime | None) -> Any:
    query = _filtered(query, a, tenant, workload)
    query = query.where(a.occurred_at >= start) if start else query
    return query.where(a.occurred_at < end) if end else query


def _whole_days(since: datetime | None, until: datetime | None) -> tuple[date | None, date | None] | None:
    """The UTC days [first, last) wholly inside [since, until) (None: unbounded on that side), or
    None when there is none."""
    first = last = None
    if since is not None:
        first = _utc(since).date()
        first += timedelta(days=0 if _utc(since) == _midnight(first) else 1)
    if until is not None:
        last = _utc(until).date()
    if first is not None and last is not None and first >= last:
        return None
    return first, last


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _prices_row(input_price: Decimal, output_price: Decimal, per_million: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """A model's price_versions columns, each as stored (to 1e-12 USD per 1M tokens)."""
    prices = {"input": input_price, "output": output_price} | {kind: per_million[kind] for kind in PRICED_KINDS}
    return {f"{kind}_usd_per_million": money.quantize(price) for kind, price in prices.items()}


def _filtered(query: Any, columns: Any, tenant: str, workload: str) -> Any:
    if tenant:
        query = query.where(columns.tenant == tenant)
    if workload:
        query = query.where(columns.workload == workload)
    return query


def total(lines: Sequence[dict[str, Any]]) -> Decimal:
    return sum((line["cost_usd"] for line in lines), Decimal(0))


def _utc(at: datetime) -> datetime:
    """SQLite gives stored times back without their zone (they were stored as UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _group(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["tenant"], row["workload"], row["prompt_sha256"]


def _times_by_group(rows: Iterable[tuple[str, str, str, datetime]]) -> dict[tuple[str, str, str], list[datetime]]:
    """Each (tenant, workload, prompt) group's times, sorted."""
    times: dict[tuple[str, str, str], list[datetime]] = {}
    for tenant, workload, prompt, at in rows:
        times.setdefault((tenant, workload, prompt), []).append(_utc(at))
    for group in times.values():
        group.sort()
    return times


def _any_within(sorted_times: list[datetime], at: datetime, window: timedelta) -> bool:
    """Whether a time in `sorted_times` lies in (at, at + window]."""
    i = bisect.bisect_right(sorted_times, at)
    return i < len(sorted_times) and sorted_times[i] <= at + window


def _first_of_each(rows: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The first row of each `key` (what row-by-row inserts that skip a stored key keep), sorted
    by it: ledger replicas write at once, and transactions that lock rows in one order cannot
    deadlock."""
    firsts: dict[Any, dict[str, Any]] = {}
    for row in rows:
        firsts.setdefault(row[key], row)
    return [firsts[k] for k in sorted(firsts)]


def _own_bind_processor(table: Table, name: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    """How one of the project's own column types (Money: picodollars) binds a value; the
    standard types' numbers, booleans and strings go into the JSON as they are."""
    column_type = table.c[name].type
    return column_type.bind_processor(dialect) if isinstance(column_type, TypeDecorator) else None
