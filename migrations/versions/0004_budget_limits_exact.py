"""budget limits of any size: NUMERIC(38, 12) on PostgreSQL, a fixed-point string on SQLite,
instead of picodollars in a BIGINT (which overflowed at 9.2M USD)

Revision ID: 0004
Revises: 0003
"""

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PICO = Decimal(10) ** 12
QUANTUM = Decimal("1e-12")


def _exact_type(bind: sa.engine.Connection) -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.Numeric(38, 12) if bind.dialect.name == "postgresql" else sa.String(48)


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("budgets") as batch:
        batch.add_column(sa.Column("limit_exact", _exact_type(bind), nullable=True))
    rows = bind.execute(sa.text("SELECT tenant, workload, period, limit_usd FROM budgets")).all()
    for tenant, workload, period, picos in rows:
        value = (Decimal(picos) / PICO).quantize(QUANTUM)
        bind.execute(
            sa.text("UPDATE budgets SET limit_exact = :v WHERE tenant = :t AND workload = :w AND period = :p"),
            {"v": value if bind.dialect.name == "postgresql" else format(value, "f"), "t": tenant, "w": workload,
             "p": period},
        )  # fmt: skip
    with op.batch_alter_table("budgets") as batch:
        batch.drop_column("limit_usd")
        batch.alter_column("limit_exact", new_column_name="limit_usd", nullable=False)


def downgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("budgets") as batch:
        batch.add_column(sa.Column("limit_picos", sa.BigInteger, nullable=True))
    rows = bind.execute(sa.text("SELECT tenant, workload, period, limit_usd FROM budgets")).all()
    for tenant, workload, period, limit in rows:
        picos = int(Decimal(limit) * PICO)
        bind.execute(
            sa.text("UPDATE budgets SET limit_picos = :v WHERE tenant = :t AND workload = :w AND period = :p"),
            {"v": picos, "t": tenant, "w": workload, "p": period},
        )
    with op.batch_alter_table("budgets") as batch:
        batch.drop_column("limit_usd")
        batch.alter_column("limit_picos", new_column_name="limit_usd", nullable=False)
