"""Migration 0008 on a database with addresses added by revision 0007 (with no proof at all):
they become pending, without a token, so they allow nothing until a new verification mail is
confirmed; the downgrade removes the columns again and keeps the table's triggers."""

from __future__ import annotations

from pathlib import Path

from alembic import command

from postroom.core.clock import FakeClock
from postroom.pipeline.projects import ProjectDirectory
from postroom.storage import migrate, resolve_target
from postroom.storage.engine import open_platform_store, writer_engine


async def test_unproven_addresses_become_pending(target: str, clock: FakeClock) -> None:
    resolved = resolve_target(target)
    if resolved.sqlite_path is not None:
        Path(resolved.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    engine = writer_engine(resolved.url.render_as_string(hide_password=False))
    try:
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn), "0007")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO projects (id, name, mode, created_us) VALUES ('acme', 'A', 'live', 0)"
            )
            conn.exec_driver_sql(
                "INSERT INTO verified_addresses (project, address, created_us) "
                "VALUES ('acme', 'ceo@other-tenant.test', 0)"
            )
    finally:
        engine.dispose()
    store = open_platform_store(target)  # migrates to the head revision
    try:
        identity = store.get_address_identity("acme", "ceo@other-tenant.test")
        assert (identity.status, identity.token_digest, identity.mails_in_window) == (
            "pending",
            None,
            0,
        )
        view = await ProjectDirectory(store, clock, ttl=0).get("acme")
        assert not view.verified("ceo@other-tenant.test")
    finally:
        store.close()
    engine = writer_engine(resolved.url.render_as_string(hide_password=False))
    try:
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0007")
            columns = {
                row[1] if resolved.sqlite_path else row[0]
                for row in conn.exec_driver_sql(
                    "PRAGMA table_info(verified_addresses)"
                    if resolved.sqlite_path
                    else "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'verified_addresses'"
                )
            }
            assert columns == {"project", "address", "created_us"}
            if resolved.sqlite_path:  # the change-counter triggers of 0007 are still there
                triggers = conn.exec_driver_sql(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                    "AND tbl_name = 'verified_addresses'"
                ).scalar()
                assert triggers == 3
    finally:
        engine.dispose()
