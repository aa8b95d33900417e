"""Runs and checks the Alembic migrations in the repository's migrations/ folder."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from tierlift.core.entry import StartupError

REPO_ROOT = Path(__file__).resolve().parents[3]


def alembic_config(url: str, migrations_dir: Path = REPO_ROOT / "migrations") -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["url"] = url
    return config


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


def require_head(engine: Engine, url: str) -> None:
    """Refuse to run on a database whose schema is not at the latest migration."""
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current != head:
        raise StartupError(
            f"database {engine.url.render_as_string(hide_password=True)} is at migration {current or 'none'}, "
            f"not {head}: run `make migrate` (or `tierlift migrate`) first"
        )
