"""What the console reads instead of joining requests with attempts, built here from the rows stored
so far and kept by the ledger from now on (ledger/_outcomes.py):
- daily_requests: ended requests per UTC day, tenant, workload, answered, final tier, final model,
  data class and escalated, with how many of the answered ones fell back (a live FAULT attempt of
  the same request and tenant). The overview reads a window's whole days from them instead of
  counting every request row (ledger/_requests.py `routing_mix`).
- answer_latencies: each live ANSWERED attempt on an answered request's final model, with the
  request's tenant, workload and time: the quality page's latency percentiles read the window's
  range of it instead of joining the window's requests with every attempt (ledger/_quality.py).

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_KEYS = "tenant, workload, answered, final_tier, final_model, data_class, escalated"


def _backfill() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:  # no ledger stores a request or an attempt meanwhile
        op.execute("LOCK TABLE requests, attempts IN SHARE ROW EXCLUSIVE MODE")
    day = "(occurred_at AT TIME ZONE 'UTC')::date" if postgres else "date(occurred_at)"
    faulted = (
        "EXISTS (SELECT 1 FROM attempts AS a WHERE a.request_id = r.request_id AND a.tenant = r.tenant "
        "AND a.outcome = 'FAULT' AND a.kind = 'live')"
    )
    op.execute(
        f"INSERT INTO daily_requests (day, {_KEYS}, requests, fell_back) "
        f"SELECT {day}, {_KEYS}, count(*), sum(CASE WHEN answered AND {faulted} THEN 1 ELSE 0 END) "
        f"FROM requests AS r GROUP BY {day}, {_KEYS}"
    )
    op.execute(
        "INSERT INTO answer_latencies (request_id, event_id, tenant, workload, model, latency_ms, occurred_at) "
        "SELECT r.request_id, a.event_id, r.tenant, r.workload, a.model, a.latency_ms, r.occurred_at "
        "FROM requests AS r JOIN attempts AS a ON a.request_id = r.request_id AND a.model = r.final_model "
        "WHERE r.answered AND a.kind = 'live' AND a.outcome = 'ANSWERED'"
    )


def upgrade() -> None:
    op.create_table(
        "daily_requests",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("workload", sa.String(64), primary_key=True),
        sa.Column("answered", sa.Boolean(), primary_key=True),
        sa.Column("final_tier", sa.String(16), primary_key=True),
        sa.Column("final_model", sa.String(128), primary_key=True),
        sa.Column("data_class", sa.String(16), primary_key=True),
        sa.Column("escalated", sa.Boolean(), primary_key=True),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("fell_back", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "answer_latencies",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("workload", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    )
    _backfill()
    op.create_index("ix_answer_latencies_occurred_at", "answer_latencies", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_answer_latencies_occurred_at", "answer_latencies")
    op.drop_table("answer_latencies")
    op.drop_table("daily_requests")
