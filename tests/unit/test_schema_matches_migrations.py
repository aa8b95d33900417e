"""The tables the ledger queries (ledger/_schema.py) are exactly what the Alembic migrations
create: autogenerate finds nothing to change."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import BigInteger, create_engine

from tierlift.core import migrations
from tierlift.ledger._schema import metadata


def test_schema_module_matches_the_latest_migration(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    migrations.upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": _compare_type}), metadata)
    engine.dispose()
    assert diff == []


def _compare_type(
    _ctx: object, _inspected: object, _metadata: object, inspected_type: object, metadata_type: object
) -> bool | None:
    # Money columns are BigInteger picodollars in the database and Money in Python.
    if getattr(metadata_type, "impl", None) is not None and isinstance(inspected_type, BigInteger):
        return False
    return None
