"""The console's reads over a window of every tenant: requests by time, and two small partial
indexes on attempts, the live FAULT attempts (the fallback rate) and the live attempts still
estimated or unsettled (the spend page's counts of them). Spend is now read from the daily rollups
for whole days, so they are rebuilt here from the attempts they sum: rows stored before the rollups
existed (0001) and outcomes that settled an unsettled row on another day than it was billed had left
them apart from the attempts.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

LIVE_FAULTS = "outcome = 'FAULT' AND kind = 'live'"
LIVE_FLAGGED = "(estimated OR unsettled) AND kind = 'live'"


_TOKENS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "cache_write_1h_input_tokens",
    "image_input_tokens",
    "audio_input_tokens",
    "reasoning_output_tokens",
)
_COSTS = ("cost_usd", "cache_read_cost_usd", "cache_write_cost_usd", "image_input_cost_usd", "audio_input_cost_usd",
          "reasoning_cost_usd")  # fmt: skip


def _rebuild_rollups() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:  # no ledger adds to them meanwhile
        op.execute("LOCK TABLE attempts, daily_spend IN SHARE ROW EXCLUSIVE MODE")
    day = "(occurred_at AT TIME ZONE 'UTC')::date" if postgres else "date(occurred_at)"
    summed = ", ".join(f"sum({name})" for name in (*_TOKENS, *_COSTS))
    op.execute("DELETE FROM daily_spend")
    op.execute(
        f"INSERT INTO daily_spend (day, tenant, workload, tier, model, attempts, {', '.join((*_TOKENS, *_COSTS))}) "
        f"SELECT {day}, tenant, workload, tier, model, count(*), {summed} FROM attempts WHERE kind = 'live' "
        "GROUP BY 1, 2, 3, 4, 5"
    )


def upgrade() -> None:
    _rebuild_rollups()
    op.create_index("ix_requests_occurred_at", "requests", ["occurred_at"])
    op.create_index(
        "ix_attempts_live_faults", "attempts", ["request_id", "tenant"],
        postgresql_where=sa.text(LIVE_FAULTS), sqlite_where=sa.text(LIVE_FAULTS),
    )  # fmt: skip
    op.create_index(
        "ix_attempts_live_flagged", "attempts", ["occurred_at"],
        postgresql_where=sa.text(LIVE_FLAGGED), sqlite_where=sa.text(LIVE_FLAGGED),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_attempts_live_flagged", "attempts")
    op.drop_index("ix_attempts_live_faults", "attempts")
    op.drop_index("ix_requests_occurred_at", "requests")
