"""requests, daily spend rollups, price versions and budgets

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(128), nullable=False, unique=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("workload", sa.String(64), nullable=False),
        sa.Column("answered", sa.Boolean, nullable=False),
        sa.Column("final_tier", sa.String(16), nullable=False),
        sa.Column("final_model", sa.String(128), nullable=False),
        sa.Column("attempt_count", sa.Integer, nullable=False),
        sa.Column("escalated", sa.Boolean, nullable=False),
        sa.Column("total_cost_usd", sa.BigInteger, nullable=False),  # picodollars
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_requests_tenant_occurred", "requests", ["tenant", "occurred_at"])
    # Kept in the same transaction as the attempts it sums, from newly inserted rows only.
    op.create_table(
        "daily_spend",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("workload", sa.String(64), primary_key=True),
        sa.Column("tier", sa.String(16), primary_key=True),
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("attempts", sa.BigInteger, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_usd", sa.BigInteger, nullable=False),
    )
    # A catalog version's prices, recorded once: a price change is a new version, never an update.
    op.create_table(
        "price_versions",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("input_usd_per_million", sa.BigInteger, nullable=False),
        sa.Column("output_usd_per_million", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "budgets",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("workload", sa.String(64), primary_key=True),  # "" = every workload
        sa.Column("period", sa.String(8), primary_key=True),
        sa.Column("limit_usd", sa.BigInteger, nullable=False),
        sa.Column("soft_ratio", sa.Float, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("budgets", "price_versions", "daily_spend", "requests"):
        op.drop_table(table)
