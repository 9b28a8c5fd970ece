"""PostgreSQL without autovacuum: Postroom analyzes and vacuums its own tables.

A server running with `autovacuum = off` never gathers statistics nor removes dead rows, and
Postroom then degrades as it fills:

* plans are made from no statistics and kept: those of the count triggers (PL/pgSQL caches
  them per connection) and psycopg's prepared statements are made while a table is empty and
  stay so until an ANALYZE invalidates them. The batch writer storing messages that all carry
  one tag slowed from 2.9 to 13 ms a message between 3,000 and 12,000 stored (a scan of the
  tag's rows per batch), and stayed at ~2 ms with an ANALYZE now and then;
* the counters' delta rows, folded away by reads (storage/message_counts.py), stay as dead
  rows that every count reads again: 35 ms more on each inbox page at 1,000,000 messages.

`upkeep_once` does what autovacuum would, with its default thresholds, on Postroom's own tables
(schema.metadata): VACUUM (ANALYZE) where dead rows or rows inserted since the last vacuum
passed the threshold, ANALYZE where changed rows did, reading pg_stat_user_tables. It does
nothing when autovacuum is on. The server runs it every UPKEEP_INTERVAL seconds
(app.py, job `pg-upkeep`), in a thread, on its own connection in autocommit: VACUUM and
ANALYZE take a lock that does not block reads nor writes.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from postroom.storage.schema import metadata

log = logging.getLogger("postroom.storage.upkeep")

UPKEEP_INTERVAL = 60.0  # seconds; autovacuum_naptime's default
# autovacuum's defaults: a table is vacuumed past BASE + SCALE x its live rows of dead rows
# (or of rows inserted since its last vacuum), analyzed past them of changed rows.
VACUUM_BASE, VACUUM_SCALE = 50, 0.2
INSERT_BASE, INSERT_SCALE = 1000, 0.2
ANALYZE_BASE, ANALYZE_SCALE = 50, 0.1

_STATS = """
SELECT relname, n_live_tup, n_dead_tup, n_ins_since_vacuum, n_mod_since_analyze
FROM pg_stat_user_tables WHERE schemaname = current_schema()
"""


def due(name: str, live: int, dead: int, inserted: int, modified: int) -> str | None:
    """The statement a table with these counts is due for, if any."""
    if dead > VACUUM_BASE + VACUUM_SCALE * live or inserted > INSERT_BASE + INSERT_SCALE * live:
        return f'VACUUM (ANALYZE) "{name}"'
    if modified > ANALYZE_BASE + ANALYZE_SCALE * live:
        return f'ANALYZE "{name}"'
    return None


def upkeep_once(engine: Engine, *, even_with_autovacuum: bool = False) -> list[str]:
    """Vacuum and analyze the tables that are due (PostgreSQL with autovacuum off, or
    `even_with_autovacuum`); the statements run, in order. Nothing on SQLite."""
    if engine.dialect.name != "postgresql":
        return []
    ours = set(metadata.tables)
    with engine.connect() as conn:
        autovacuum = conn.exec_driver_sql("SHOW autovacuum").scalar_one()
        if autovacuum == "on" and not even_with_autovacuum:
            return []
        rows = conn.exec_driver_sql(_STATS).all()
    statements = [
        statement
        for name, live, dead, inserted, modified in sorted(rows)
        if name in ours
        and (statement := due(name, int(live), int(dead), int(inserted), int(modified)))
    ]
    if statements:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
        log.info("PostgreSQL runs without autovacuum: %s", "; ".join(statements))
    return statements
