"""The ledger's tables (SQLAlchemy Core). Alembic migrations in migrations/ own the schema;
this module describes it for queries and must match the latest migration (a test checks)."""

from __future__ import annotations

import functools
import math
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    false,
    literal_column,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.types import TypeDecorator

from tierlift.core import money

PICO = Decimal("1e12")


class Money(TypeDecorator[Decimal]):
    """USD stored as an integer count of picodollars (1e-12 USD): exact on SQLite, whose
    NUMERIC is a float, and on PostgreSQL, and SUM() stays exact in SQL on both."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        picos = money.quantize(value) * PICO
        if picos != picos.to_integral_value():
            raise ValueError(f"{value} has more precision than 1e-12 USD")
        return int(picos)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_picos(value)


class ExactUSD(TypeDecorator[Decimal]):
    """USD that no SQL sums (budget limits), of any size: NUMERIC(38, 12) on PostgreSQL, the
    fixed-point string elsewhere (SQLite's NUMERIC is a float; a picodollar BIGINT stops at
    9.2M USD)."""

    impl = String(48)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(Numeric(38, 12) if dialect.name == "postgresql" else String(48))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return money.quantize(value) if dialect.name == "postgresql" else money.to_wire(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else money.quantize(Decimal(value))


# The largest amount one picodollar column holds: per attempt, per request, per day's rollup.
MAX_ROW_USD = Decimal(2**63 - 1) / PICO


def from_picos(value: int | Decimal | str) -> Decimal:
    return money.quantize(Decimal(value) / PICO)


metadata = MetaData()

# An attempt's token kinds (common.proto's Usage fields) and the cost of the kinds reported apart:
# "cache_write" is both lifetimes' writes.
KIND_TOKEN_COLUMNS = (
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "cache_write_1h_input_tokens",
    "image_input_tokens",
    "audio_input_tokens",
    "reasoning_output_tokens",
)
PRICED_KINDS = ("cache_read", "cache_write_5m", "cache_write_1h", "image_input", "audio_input", "reasoning")
REPORTED_KINDS = ("cache_read", "cache_write", "image_input", "audio_input", "reasoning")
KIND_COST_COLUMNS = tuple(f"{kind}_cost_usd" for kind in REPORTED_KINDS)

LIVE_FAULTS = "outcome = 'FAULT' AND kind = 'live'"
LIVE_FLAGGED = "(estimated OR unsettled) AND kind = 'live'"

# the two partial indexes' predicates, as queries must spell them for a planner to use them: with
# the constants in the SQL (a bound parameter proves nothing to PostgreSQL's generic plans)
LIVE: ColumnClause[str] = literal_column("'live'")
FAULT: ColumnClause[str] = literal_column("'FAULT'")

attempts = Table(
    "attempts",
    metadata,
    Column("event_id", String(128), primary_key=True),  # de-duplication key
    Column("request_id", String(64), nullable=False, index=True),
    Column("attempt_index", Integer, nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("workload", String(64), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("model", String(128), nullable=False),
    Column("adapter", String(128), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost_usd", Money, nullable=False),
    Column("input_usd_per_million", Money, nullable=False),
    Column("output_usd_per_million", Money, nullable=False),
    Column("price_version", String(64), nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False, index=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    # "live", "shadow" (a shadow run) or "judge" (an LLM-judge call): the last two are priced,
    # reported apart (GetQuality) and kept out of live spend and budgets
    Column("kind", String(8), nullable=False, server_default="live"),
    # what `confidence` was scored from: `tierlift calibrate --from-ledger` refits on these
    Column("has_logprobs", Boolean, nullable=False, server_default=false()),
    Column("mean_logprob", Float, nullable=False, server_default="0"),
    Column("min_logprob", Float, nullable=False, server_default="0"),
    Column("low_prob_share", Float, nullable=False, server_default="0"),
    Column("signal_tokens", Integer, nullable=False, server_default="0"),
    Column("prior", Float, nullable=False, server_default="0"),
    # the tokens of each kind priced apart (tierlift.core.pricing; each also in input_tokens or
    # output_tokens) and what they cost (also in cost_usd); the rest of cost_usd is text. 0 on rows
    # from before kinds were kept, whose cost_usd is all text.
    *(Column(name, Integer, nullable=False, server_default="0") for name in KIND_TOKEN_COLUMNS),
    *(Column(name, Money, nullable=False, server_default="0") for name in KIND_COST_COLUMNS),
    # the tokens were counted by the router, not reported by the provider (a stream cut or ended
    # without its usage); a later usage report replaces them, once (LedgerStore.correct_attempts)
    Column("estimated", Boolean, nullable=False, server_default=false()),
    # the call started (AttemptStarted) and no outcome came by its deadline: billed at its worst
    # case until its AttemptFinished arrives and replaces it, once (LedgerStore.settle_started)
    Column("unsettled", Boolean, nullable=False, server_default=false()),
    # the attempt's own story (migration 0018; "" on rows stored before): why the router moved on
    # from it or kept it, and a fault's error; bounded, never prompt or answer text
    Column("reason", String(512), nullable=False, server_default=""),
    Column("error", String(512), nullable=False, server_default=""),
    Index("ix_attempts_tenant_occurred_at", "tenant", "occurred_at"),
    # small partial indexes (migration 0016): the live FAULT attempts, which make an answered
    # request one that fell back (GetReport), and the live attempts still estimated or unsettled,
    # counted per spend line (GetSpend)
    Index("ix_attempts_live_faults", "request_id", "tenant", postgresql_where=text(LIVE_FAULTS),
          sqlite_where=text(LIVE_FAULTS)),
    Index("ix_attempts_live_flagged", "occurred_at", postgresql_where=text(LIVE_FLAGGED),
          sqlite_where=text(LIVE_FLAGGED)),
)  # fmt: skip

# Provider calls written ahead (tierlift.attempt.started), each kept until its deadline has passed
# by TIERLIFT_UNSETTLED_AFTER_S: then an attempt row with its event id exists (it finished), or it
# is written from `payload` (the AttemptFinished to bill, base64) at its worst case, `unsettled`.
attempts_started = Table(
    "attempts_started",
    metadata,
    Column("event_id", String(128), primary_key=True),  # the attempt's event id
    Column("request_id", String(64), nullable=False),
    Column("settle_after", DateTime(timezone=True), nullable=False, index=True),
    Column("payload", Text, nullable=False),
)

requests = Table(
    "requests",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("event_id", String(128), nullable=False, unique=True),
    Column("tenant", String(64), nullable=False),
    Column("workload", String(64), nullable=False),
    Column("answered", Boolean, nullable=False),
    Column("final_tier", String(16), nullable=False),
    Column("final_model", String(128), nullable=False),
    Column("attempt_count", Integer, nullable=False),
    Column("escalated", Boolean, nullable=False),
    Column("total_cost_usd", Money, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    # why it ended without an answer: the router's story, "caller gave up", or no outcome reported
    Column("error", String(1024), nullable=False, server_default=""),
    # the normalised prompt's digest; `regenerated`: the same prompt came again soon after
    Column("prompt_sha256", String(64), nullable=False, server_default=""),
    Column("regenerated", Boolean, nullable=False, server_default=false()),
    # the rollout that split this request and the arm it fell in ("" = none)
    Column("rollout_id", String(64), nullable=False, server_default=""),
    Column("arm", String(16), nullable=False, server_default=""),
    # the classifier's form features of the prompt, as a JSON list ("" = none): numbers, no text
    Column("prompt_form", String(1024), nullable=False, server_default=""),
    # where the request went and why (migration 0015; "" on rows stored before): the data class the
    # plan applied ("PUBLIC" ... "REGULATED"), the plan's reasons, exclusions and rungs as JSON
    # (ledger/_ingest.py `why`, bounded), and the W3C trace id of the router's span
    Column("data_class", String(16), nullable=False, server_default=""),
    Column("reasons", Text, nullable=False, server_default=""),
    Column("trace_id", String(32), nullable=False, server_default=""),
    Index("ix_requests_tenant_occurred", "tenant", "occurred_at"),
    Index("ix_requests_occurred_at", "occurred_at"),  # a window over every tenant (the console)
    Index("ix_requests_prompt", "tenant", "workload", "prompt_sha256", "occurred_at"),
    Index("ix_requests_rollout", "rollout_id", "occurred_at"),
)

daily_spend = Table(
    "daily_spend",
    metadata,
    Column("day", Date, primary_key=True),
    Column("tenant", String(64), primary_key=True),
    Column("workload", String(64), primary_key=True),
    Column("tier", String(16), primary_key=True),
    Column("model", String(128), primary_key=True),
    Column("attempts", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cost_usd", Money, nullable=False),
    # the attempts' token kinds and their cost, summed as `attempts` keeps them
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in KIND_TOKEN_COLUMNS),
    *(Column(name, Money, nullable=False, server_default="0") for name in KIND_COST_COLUMNS),
)

# Ended requests per UTC day of their occurred_at, counted by what the console's routing mix groups
# them by (migration 0017), and how many of those answered fell back (a live FAULT attempt of the
# same request and tenant). The ledger keeps them in the transaction that stores or replaces a
# request row, or adds or settles an attempt that changes whether an answered request fell back
# (ledger/_outcomes.py), so the whole days of a window are read here instead of from `requests`.
daily_requests = Table(
    "daily_requests",
    metadata,
    Column("day", Date, primary_key=True),
    Column("tenant", String(64), primary_key=True),
    Column("workload", String(64), primary_key=True),
    Column("answered", Boolean, primary_key=True),
    Column("final_tier", String(16), primary_key=True),
    Column("final_model", String(128), primary_key=True),
    Column("data_class", String(16), primary_key=True),
    Column("escalated", Boolean, primary_key=True),
    Column("requests", BigInteger, nullable=False),
    Column("fell_back", BigInteger, nullable=False),
)

# The latencies the quality page's percentiles are made of: one row per live ANSWERED attempt on
# the final model of an answered request, with that request's tenant, workload and time (migration
# 0017). The ledger rebuilds a request's rows in each transaction that stores or replaces it or adds
# or settles one of its attempts (ledger/_outcomes.py), so a window's latencies are a range of this
# narrow table instead of a join of its requests with every attempt.
answer_latencies = Table(
    "answer_latencies",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("event_id", String(128), primary_key=True),  # the attempt's
    Column("tenant", String(64), nullable=False),
    Column("workload", String(64), nullable=False),
    Column("model", String(128), nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),  # the request's
    Index("ix_answer_latencies_occurred_at", "occurred_at"),
)

price_versions = Table(
    "price_versions",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("model", String(128), primary_key=True),
    Column("input_usd_per_million", Money, nullable=False),
    Column("output_usd_per_million", Money, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    # each kind's price (tierlift.core.pricing.KINDS but the text ones), fallbacks filled in;
    # NULL on versions recorded before kinds were priced
    *(Column(f"{kind}_usd_per_million", Money, nullable=True) for kind in PRICED_KINDS),
)

budgets = Table(
    "budgets",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("workload", String(64), primary_key=True),
    Column("period", String(8), primary_key=True),
    Column("limit_usd", ExactUSD, nullable=False),
    Column("soft_ratio", Float, nullable=False),
    Column("action", String(16), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # each request reserves its worst case with the ledger (ledger/_leases.py)
    Column("strict", Boolean, nullable=False, server_default=false()),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("workloads", String(1024), nullable=False),  # comma-separated slugs
    Column("description", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
)

audit = Table(
    "audit",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(256), nullable=False),
    Column("detail", String(1024), nullable=False),
    Index("ix_audit_occurred_at", "occurred_at"),
)

quality_scores = Table(
    "quality_scores",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("request_id", String(64), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("workload", String(64), nullable=False),
    Column("model", String(128), nullable=False),  # the live model path judged
    Column("reference_model", String(128), nullable=False),
    Column("method", String(16), nullable=False),
    Column("score", Float, nullable=False),  # 0..1 agreement with the reference
    Column("source", String(8), nullable=False),  # "shadow", "suite" or "rollout"
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    # source "rollout": the rollout whose candidate (model) was judged against its control
    Column("rollout_id", String(64), nullable=False, server_default=""),
    Index("ix_quality_scores_path", "workload", "model", "occurred_at"),
    Index("ix_quality_scores_rollout", "rollout_id", "occurred_at"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("tenant", String(64), nullable=False),
    Column("rating", Integer, nullable=False),
    Column("regenerated", Boolean, nullable=False),
    Column("comment", String(1000), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
)

quality_alerts = Table(
    "quality_alerts",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("workload", String(64), nullable=False),
    Column("model", String(128), nullable=False),
    Column("reason", String(512), nullable=False),
    Column("observed", Float, nullable=False),
    Column("baseline", Float, nullable=False),
    Column("window", Integer, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False, index=True),
)


def misfit(table: Table, row: dict[str, Any]) -> str:
    """Why `row` cannot be stored in `table` as it is ("" when it can): a string longer than its
    column, one holding NUL (PostgreSQL's text cannot), an integer over a 32-bit column, a float
    that is not a finite number (SQLite stores NaN as NULL, which a NOT NULL column refuses). Each
    failed the row's whole batch, at every redelivery; the ledger dead-letters such an event
    instead."""
    strings, int32, floats = _checked_columns(table)
    for name, length in strings:
        value = row.get(name)
        if isinstance(value, str):
            if "\x00" in value:
                return f"{name}: contains a NUL character"
            if length is not None and len(value) > length:
                return f"{name}: {len(value)} characters, over the {length} its column holds"
    for name in int32:
        value = row.get(name)
        if type(value) is int and not -(2**31) <= value < 2**31:
            return f"{name}: {value} is outside the 32-bit integer its column holds"
    for name in floats:
        value = row.get(name)
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name}: {value} is not a finite number"
    return ""


@functools.cache
def _checked_columns(
    table: Table,
) -> tuple[tuple[tuple[str, int | None], ...], tuple[str, ...], tuple[str, ...]]:
    """The table's string columns with their lengths, its 32-bit integer columns and its float
    columns: found once per table, as `misfit` runs for every row ingested (looking each column
    up per row was a third of the ledger's work to make a row)."""
    strings = tuple((key, c.type.length) for key, c in table.c.items() if isinstance(c.type, String))
    floats = tuple(key for key, c in table.c.items() if isinstance(c.type, Float))
    return strings, tuple(key for key, c in table.c.items() if type(c.type) is Integer), floats
