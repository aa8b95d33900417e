"""Alembic environment: runs the ledger migrations against TIERLIFT_DATABASE_URL
(or the URL a caller put in the config's attributes)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

config = context.config
url = config.attributes.get("url") or os.environ.get("TIERLIFT_DATABASE_URL")
if not url:
    raise SystemExit("TIERLIFT_DATABASE_URL: not set (e.g. sqlite:///.tierlift/ledger.db)")

engine = create_engine(url)
with engine.begin() as connection:
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
