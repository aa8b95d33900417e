"""requests say why they ended: the router's error story, or that the caller gave up, or that no
outcome was ever reported (a placeholder the ledger writes for attempts without a request)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("error", sa.String(1024), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("error")
