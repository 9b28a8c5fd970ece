"""The sending store (templates, idempotency records, SES keys) on SQLite and PostgreSQL:
migration 0004 matches the declared tables, templates keep their versions, records are per
project and go with it, sealed secrets open only with their data directory's key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from postroom.core.errors import InvalidInput, NotFound, StorageError
from postroom.core.platform import Project
from postroom.core.sending import SesKey
from postroom.storage.engine import open_platform_store, resolve_target
from postroom.storage.schema import metadata
from postroom.storage.sealing import SecretBox
from postroom.storage.sending_store import TABLES, SqlSendingStore

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_migration_matches_the_tables(target: str) -> None:
    open_platform_store(target).close()
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.connect() as conn:

            def ours(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
                table = obj if type_ == "table" else getattr(obj, "table", None)
                return table is None or table.name in TABLES

            context = MigrationContext.configure(conn, opts={"include_object": ours})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_templates_idempotency_and_keys(target: str) -> None:
    platform = open_platform_store(target)
    try:
        platform.create_project(Project("acme", "Acme", "live", T0))
        platform.create_project(Project("other", "Other", "capture", T0))
        store = SqlSendingStore(platform)
        first = store.save_template(
            "acme", "welcome", ("Hi {{name}}", "t1", "<p>1</p>"), T0, create=True
        )
        assert first.version == 1
        with pytest.raises(InvalidInput):
            store.save_template("acme", "welcome", ("x", "", ""), T0, create=True)
        with pytest.raises(NotFound):
            store.save_template("other", "welcome", ("x", "", ""), T0, create=False)
        second = store.save_template(
            "acme", "welcome", ("Hello {{name}}", "t2", ""), T0, create=False
        )
        assert second.version == 2
        assert store.get_template("acme", "welcome").subject == "Hello {{name}}"
        assert store.get_template("acme", "welcome", 1).text == "t1"
        with pytest.raises(NotFound):
            store.get_template("other", "welcome")
        assert [(t.name, t.version) for t in store.list_templates("acme")] == [("welcome", 2)]
        assert store.list_templates("other") == []

        assert store.claim_idempotency("acme", "k", "f1", T0, T0 - timedelta(hours=24)) is None
        pending = store.claim_idempotency("acme", "k", "f1", T0, T0 - timedelta(hours=24))
        assert pending is not None and pending.status is None
        assert store.claim_idempotency("other", "k", "f1", T0, T0 - timedelta(hours=24)) is None
        store.finish_idempotency("acme", "k", 200, '{"id": "m"}')
        done = store.claim_idempotency("acme", "k", "f2", T0, T0 - timedelta(hours=24))
        assert done is not None and (done.fingerprint, done.status) == ("f1", 200)
        assert store.claim_idempotency("acme", "dead", "f1", T0, T0 - timedelta(hours=24)) is None
        stale = T0 + timedelta(minutes=6)
        alive = store.claim_idempotency(
            "acme", "dead", "f2", T0 + timedelta(minutes=4), T0, T0 - timedelta(minutes=1)
        )
        assert alive is not None and alive.status is None  # still running: not taken over
        assert (
            store.claim_idempotency("acme", "dead", "f2", stale, T0, stale - timedelta(minutes=5))
            is None
        )
        later = T0 + timedelta(hours=25)
        assert (
            store.claim_idempotency("acme", "k", "f2", later, later - timedelta(hours=24)) is None
        )

        store.add_ses_key(SesKey("AKPRTEST", "acme", "sealed", T0))
        assert store.ses_key("AKPRTEST").project_id == "acme"
        with pytest.raises(NotFound):
            store.delete_ses_key("other", "AKPRTEST")
        platform.delete_project("acme")
        with pytest.raises(NotFound):
            store.ses_key("AKPRTEST")
        assert store.list_templates("acme") == []
    finally:
        platform.close()


def test_sealed_secrets_open_only_with_their_key(tmp_path: Path) -> None:
    box = SecretBox.load_or_create(tmp_path / "a")
    assert (tmp_path / "a" / "sealing.key").stat().st_mode & 0o777 == 0o600
    sealed = box.seal("very-secret", "AKPR1")
    assert "very-secret" not in sealed
    assert SecretBox.load_or_create(tmp_path / "a").open(sealed, "AKPR1") == "very-secret"
    with pytest.raises(StorageError):
        box.open(sealed, "AKPR2")  # bound to its key id
    with pytest.raises(StorageError):
        SecretBox.load_or_create(tmp_path / "b").open(sealed, "AKPR1")
