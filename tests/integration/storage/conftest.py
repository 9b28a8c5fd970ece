"""Every storage test runs against SQLite (a temporary data directory) and PostgreSQL (a
database created for the test and dropped afterwards)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from tests.services import require_postgres

from postroom.core.clock import FakeClock
from postroom.storage import SqlMessageStore, open_store


def _admin_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database; its URL."""
    url = require_postgres()
    name = f"postroom_t_{secrets.token_hex(6)}"
    admin = _admin_dsn(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def target(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What `open_store` is given: a data directory for SQLite, a URL for PostgreSQL."""
    if backend == "sqlite":
        return str(tmp_path / "data")
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(target: str, clock: FakeClock) -> AsyncIterator[SqlMessageStore]:
    opened = open_store(target, clock)
    try:
        yield opened
    finally:
        await opened.close()
