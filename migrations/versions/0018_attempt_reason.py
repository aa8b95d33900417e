"""each attempt's own story: why the router moved on from it or kept it (`reason`, e.g. the
confidence against the threshold) and, for a fault, the error it ended with. Every stored attempt
stays valid, with both "" (not recorded).

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("reason", sa.String(512), nullable=False, server_default=""))
        batch.add_column(sa.Column("error", sa.String(512), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("error")
        batch.drop_column("reason")
