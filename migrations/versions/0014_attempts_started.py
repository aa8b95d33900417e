"""write-ahead attempts: each provider call is recorded (tierlift.attempt.started) before it is
made; one with no outcome by its deadline is billed at its worst case, marked `unsettled`, until
its outcome arrives and replaces it. Every stored attempt stays as it was: settled.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("unsettled", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "attempts_started",
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("settle_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    op.create_index("ix_attempts_started_settle_after", "attempts_started", ["settle_after"])


def downgrade() -> None:
    op.drop_index("ix_attempts_started_settle_after", table_name="attempts_started")
    op.drop_table("attempts_started")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("unsettled")
