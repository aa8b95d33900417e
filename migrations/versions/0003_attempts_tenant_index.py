"""index attempts by tenant and time, for spend queries over large tables

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_attempts_tenant_occurred_at", "attempts", ["tenant", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_attempts_tenant_occurred_at", "attempts")
