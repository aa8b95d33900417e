"""Fixtures the unit tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A private PostgreSQL server's URL for the module's tests (tests/postgres.py); the tests that
    ask for it skip, saying why, on a machine without PostgreSQL's binaries."""
    from tests.postgres import postgres_server

    try:
        server = postgres_server()
        url = server.__enter__()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)
