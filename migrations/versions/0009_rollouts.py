"""Rollouts and calibration from the ledger: the rollout and arm of each request, which rollout a
quality score judged, the confidence signals each attempt was scored from, and each prompt's form

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


_SIGNALS = (
    sa.Column("has_logprobs", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("mean_logprob", sa.Float(), nullable=False, server_default="0"),
    sa.Column("min_logprob", sa.Float(), nullable=False, server_default="0"),
    sa.Column("low_prob_share", sa.Float(), nullable=False, server_default="0"),
    sa.Column("signal_tokens", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("prior", sa.Float(), nullable=False, server_default="0"),
)


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        for column in _SIGNALS:
            batch.add_column(column)
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("rollout_id", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("arm", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("prompt_form", sa.String(1024), nullable=False, server_default=""))
    op.create_index("ix_requests_rollout", "requests", ["rollout_id", "occurred_at"])
    with op.batch_alter_table("quality_scores") as batch:
        batch.add_column(sa.Column("rollout_id", sa.String(64), nullable=False, server_default=""))
    op.create_index("ix_quality_scores_rollout", "quality_scores", ["rollout_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_quality_scores_rollout", table_name="quality_scores")
    with op.batch_alter_table("quality_scores") as batch:
        batch.drop_column("rollout_id")
    op.drop_index("ix_requests_rollout", table_name="requests")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("prompt_form")
        batch.drop_column("arm")
        batch.drop_column("rollout_id")
    with op.batch_alter_table("attempts") as batch:
        for column in _SIGNALS:
            batch.drop_column(column.name)
