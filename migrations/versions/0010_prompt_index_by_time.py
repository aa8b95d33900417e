"""The regeneration check reads one prompt's requests over a span of time: index them by time
too, so a batch reads that span, not every request the prompt ever had

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_requests_prompt", "requests")
    op.create_index("ix_requests_prompt", "requests", ["tenant", "workload", "prompt_sha256", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_requests_prompt", "requests")
    op.create_index("ix_requests_prompt", "requests", ["tenant", "workload", "prompt_sha256"])
