"""Quality signals: attempts of kind shadow (kept out of live spend), prompts' digests and
regenerations on requests, the assessor's scores, feedback and quality alerts

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("kind", sa.String(8), nullable=False, server_default="live"))
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("prompt_sha256", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("regenerated", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_requests_prompt", "requests", ["tenant", "workload", "prompt_sha256"])
    op.create_table(
        "quality_scores",
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("workload", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("reference_model", sa.String(128), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_quality_scores_path", "quality_scores", ["workload", "model", "occurred_at"])
    op.create_table(
        "feedback",
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False, index=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("regenerated", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.String(1000), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "quality_alerts",
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("workload", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(512), nullable=False),
        sa.Column("observed", sa.Float(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("window", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("quality_alerts")
    op.drop_table("feedback")
    op.drop_index("ix_quality_scores_path", "quality_scores")
    op.drop_table("quality_scores")
    op.drop_index("ix_requests_prompt", "requests")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("regenerated")
        batch.drop_column("prompt_sha256")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("kind")
