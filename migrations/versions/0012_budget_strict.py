"""strict budgets: each request reserves its worst case with the ledger, so spend never passes
the limit (ledger/_leases.py). Every stored budget stays as it was: not strict.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("budgets") as batch:
        batch.add_column(sa.Column("strict", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("budgets") as batch:
        batch.drop_column("strict")
