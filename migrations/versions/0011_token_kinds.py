"""Every token kind priced: an attempt's cache reads, cache writes (and of them the 1-hour ones),
images, audio and reasoning tokens with what each kind cost, the same summed in the daily rollups,
and each catalog version's price per kind. The new attempt and rollup columns default to 0, which
is what every stored row holds: its cost_usd was all text and stays as it was. A version's kind
prices are NULL where it was recorded before.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TOKEN_COLUMNS = (
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "cache_write_1h_input_tokens",
    "image_input_tokens",
    "audio_input_tokens",
    "reasoning_output_tokens",
)
COST_COLUMNS = ("cache_read_cost_usd", "cache_write_cost_usd", "image_input_cost_usd", "audio_input_cost_usd",
                "reasoning_cost_usd")  # fmt: skip
PRICE_COLUMNS = tuple(
    f"{kind}_usd_per_million"
    for kind in ("cache_read", "cache_write_5m", "cache_write_1h", "image_input", "audio_input", "reasoning")
)


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        for name in TOKEN_COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        for name in COST_COLUMNS:  # picodollars, as every Money column
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("daily_spend") as batch:  # the rollups: sums of the attempts' kinds
        for name in TOKEN_COLUMNS + COST_COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("price_versions") as batch:
        for name in PRICE_COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("price_versions") as batch:
        for name in reversed(PRICE_COLUMNS):
            batch.drop_column(name)
    for table in ("daily_spend", "attempts"):
        with op.batch_alter_table(table) as batch:
            for name in reversed(TOKEN_COLUMNS + COST_COLUMNS):
                batch.drop_column(name)
