"""PostgreSQL without autovacuum: the store analyzes and vacuums its own tables (pg_upkeep.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.storage import open_store
from postroom.storage.pg_upkeep import due, upkeep_once


def test_the_thresholds_are_autovacuums() -> None:
    assert due("t", 1000, 251, 0, 0) == 'VACUUM (ANALYZE) "t"'  # dead > 50 + 20%
    assert due("t", 1000, 0, 1201, 0) == 'VACUUM (ANALYZE) "t"'  # inserted > 1000 + 20%
    assert due("t", 1000, 0, 0, 151) == 'ANALYZE "t"'  # changed > 50 + 10%
    assert due("t", 1000, 250, 1200, 150) is None


def _stats(url: str) -> dict[str, tuple[int, bool, bool]]:
    """Per table: (dead rows, analyzed, vacuumed), as PostgreSQL's statistics say."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT relname, n_dead_tup, last_analyze IS NOT NULL, last_vacuum IS NOT NULL "
            "FROM pg_stat_user_tables"
        ).fetchall()
    return {name: (dead, analyzed, vacuumed) for name, dead, analyzed, vacuumed in rows}


@pytest.mark.postgres
async def test_the_tables_past_the_thresholds_are_vacuumed_or_analyzed(
    postgres_database: str,
) -> None:
    clock = FakeClock()
    store = open_store(postgres_database, clock)
    try:
        await asyncio.gather(*(store.add(make_message(clock, tags=("ci",))) for _ in range(200)))
        store.delete("default", [m.id for m in store.list("default", None, 0, 150).messages], None)
        dsn = make_url(postgres_database).set(drivername="postgresql")
        with psycopg.connect(dsn.render_as_string(hide_password=False)) as conn:
            # Another application's table in the same database, as due as can be.
            conn.execute("CREATE TABLE other_app (n int)")
            conn.execute("INSERT INTO other_app SELECT generate_series(1, 500)")
            conn.execute("DELETE FROM other_app")
        assert _stats(postgres_database)["messages"][1:] == (False, False)
        # Backends report their counts to the statistics within seconds, not at commit.
        for _ in range(100):
            if _stats(postgres_database)["messages"][0] >= 150:
                break
            await asyncio.sleep(0.2)
        # The server's job runs it only without autovacuum; forced here, whatever the server.
        ran = upkeep_once(store._write, even_with_autovacuum=True)
        # 200 rows inserted, 150 deleted: more dead rows than 50 + 20% of the 50 left.
        assert 'VACUUM (ANALYZE) "messages"' in ran
        assert _stats(postgres_database)["messages"] == (0, True, True)
        assert _stats(postgres_database)["other_app"][1:] == (False, False)  # not ours
        assert not [s for s in ran if "other_app" in s]
        # Nothing is due again at once.
        again = upkeep_once(store._write, even_with_autovacuum=True)
        assert not [s for s in again if '"messages"' in s]
    finally:
        await store.close()


async def test_nothing_on_sqlite(tmp_path: Path) -> None:
    store = open_store(str(tmp_path), FakeClock())
    try:
        assert store.upkeep() == []
    finally:
        await store.close()
