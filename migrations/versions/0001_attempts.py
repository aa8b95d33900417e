"""attempts: one row per model call, priced, keyed by event id

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attempts",
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("attempt_index", sa.Integer, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("workload", sa.String(64), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("adapter", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        # money columns: integer picodollars (1e-12 USD), exact on SQLite and PostgreSQL
        sa.Column("cost_usd", sa.BigInteger, nullable=False),
        sa.Column("input_usd_per_million", sa.BigInteger, nullable=False),
        sa.Column("output_usd_per_million", sa.BigInteger, nullable=False),
        sa.Column("price_version", sa.String(64), nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_attempts_request_id", "attempts", ["request_id"])
    op.create_index("ix_attempts_occurred_at", "attempts", ["occurred_at"])


def downgrade() -> None:
    op.drop_table("attempts")
