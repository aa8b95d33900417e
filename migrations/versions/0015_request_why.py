"""where a request went and why: the data class its plan applied, the plan's reasons (with the
models left off the ladder and each rung's reason, as JSON) and the trace id of the router's span.
Every stored request stays valid, with each of them "" (not recorded).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("data_class", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("reasons", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("trace_id", sa.String(32), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("trace_id")
        batch.drop_column("reasons")
        batch.drop_column("data_class")
