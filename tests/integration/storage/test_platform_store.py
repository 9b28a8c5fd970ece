"""SqlPlatformStore on SQLite and PostgreSQL: every entity round-trips, duplicates are
InvalidInput naming the field, lookups of what is absent are NotFound, a project's things go
with it, and the migration creates exactly the declared tables."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func, insert, inspect, select, text
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput, NotFound, StorageError
from postroom.core.platform import (
    AddressIdentity,
    AdminUser,
    ApiKey,
    DkimKey,
    Domain,
    IpCredential,
    Project,
    SmtpCredential,
)
from postroom.core.types import NewMessage
from postroom.storage import migrate, open_store, resolve_target
from postroom.storage.capture_routes import capture_routes
from postroom.storage.engine import open_platform_store
from postroom.storage.platform_store import SqlPlatformStore
from postroom.storage.queue import queue_entries
from postroom.storage.schema import messages, metadata

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
assert capture_routes.metadata is metadata  # compared with the migrated schema below
PLATFORM_TABLES = {
    "projects",
    "smtp_credentials",
    "ip_credentials",
    "api_keys",
    "domains",
    "dkim_keys",
    "verified_addresses",
    "admin_users",
    "send_counts",
    "platform_generation",
    "queue_entries",
    "capture_routes",
}


@pytest.fixture
def pstore(target: str) -> Iterator[SqlPlatformStore]:
    opened = open_platform_store(target)
    try:
        yield opened
    finally:
        opened.close()


def project(pid: str = "acme", **kw: Any) -> Project:
    return Project(
        id=pid, name=kw.pop("name", "Acme"), mode=kw.pop("mode", "live"), created=T0, **kw
    )


def key(selector: str, status: str = "active") -> DkimKey:
    return DkimKey(
        selector=selector,
        algorithm="ed25519",
        private_pem="-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
        public_record="v=DKIM1; k=ed25519; p=abc",
        status=status,  # type: ignore[arg-type]
        created=T0,
        activated=T0 if status == "active" else None,
    )


def domain(name: str = "example.com", pid: str = "acme", did: str = "D1") -> Domain:
    return Domain(
        id=did,
        project_id=pid,
        name=name,
        verification_token="tok",
        verified=False,
        created=T0,
        verified_at=None,
        last_checked=None,
        dkim_keys=(key("pr20260301"),),
    )


def test_migration_creates_the_default_project_and_the_declared_tables(
    pstore: SqlPlatformStore, target: str
) -> None:
    default = pstore.get_project("default")
    assert (default.name, default.mode, default.daily_quota, default.rate_limit) == (
        "Default",
        "capture",
        None,
        None,
    )
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision()
            names = set(inspect(conn).get_table_names())

            def ours(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
                table = obj if type_ == "table" else getattr(obj, "table", None)
                return table is None or table.name in PLATFORM_TABLES

            context = MigrationContext.configure(conn, opts={"include_object": ours})
            diff: list[Any] = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert names >= PLATFORM_TABLES
    assert diff == []


def test_reopening_keeps_everything_and_one_default(target: str) -> None:
    first = open_platform_store(target)
    first.create_project(project())
    first.close()
    for _ in range(2):
        again = open_platform_store(target)
        try:
            assert [p.id for p in again.list_projects()] == ["acme", "default"]
        finally:
            again.close()


def test_projects(pstore: SqlPlatformStore) -> None:
    created = pstore.create_project(project(daily_quota=1000, rate_limit=5))
    assert pstore.get_project("acme") == created
    assert created.created == T0  # microseconds survive
    with pytest.raises(InvalidInput) as dup:
        pstore.create_project(project(name="Other"))
    assert dup.value.field == "id"
    updated = replace(created, name="Acme Inc", mode="capture", daily_quota=None)
    pstore.update_project(updated)
    assert pstore.get_project("acme") == updated
    with pytest.raises(NotFound):
        pstore.update_project(project("ghost"))
    pstore.delete_project("acme")
    with pytest.raises(NotFound):
        pstore.get_project("acme")
    with pytest.raises(NotFound):
        pstore.delete_project("acme")


def test_a_suspension_is_stored_apart_from_the_rest_and_moves_the_counter(
    pstore: SqlPlatformStore,
) -> None:
    """An admin's suspension (migration 0025): its time and reason round-trip, an update of
    name, mode or quotas leaves it, lifting it clears both, and each change raises the change
    counter (the send doors drop their project snapshots on it)."""
    created = pstore.create_project(project())
    assert created.suspended is None and created.suspend_reason == ""
    before = pstore.generation()
    suspended = pstore.set_suspension("acme", T0, "unpaid invoices")
    assert (suspended.suspended, suspended.suspend_reason) == (T0, "unpaid invoices")
    assert pstore.get_project("acme") == suspended
    assert pstore.generation() != before
    pstore.update_project(replace(created, name="Renamed"))
    kept = pstore.get_project("acme")
    assert (kept.name, kept.suspended, kept.suspend_reason) == ("Renamed", T0, "unpaid invoices")
    before = pstore.generation()
    lifted = pstore.set_suspension("acme", None, "ignored when lifting")
    assert (lifted.suspended, lifted.suspend_reason) == (None, "")
    assert pstore.generation() != before
    assert pstore.set_suspension("acme", T0).suspend_reason == ""  # no reason: none stored
    with pytest.raises(NotFound):
        pstore.set_suspension("ghost", T0, "x")


def test_smtp_credentials(pstore: SqlPlatformStore) -> None:
    pstore.create_project(project())
    cred = SmtpCredential("C1", "acme", "prj-one", "d" * 64, ("example.com", "a@b.org"), T0)
    pstore.add_smtp_credential(cred)
    assert pstore.smtp_credential_by_username("prj-one") == cred
    with pytest.raises(InvalidInput) as dup:
        pstore.add_smtp_credential(replace(cred, id="C2"))
    assert dup.value.field == "username"
    with pytest.raises(NotFound):
        pstore.add_smtp_credential(replace(cred, id="C3", username="x", project_id="ghost"))
    later = T0 + timedelta(hours=1)
    pstore.touch_smtp_credential("C1", later)
    assert pstore.smtp_credential_by_username("prj-one").last_used == later
    assert pstore.list_smtp_credentials("acme") == [replace(cred, last_used=later)]
    assert pstore.list_smtp_credentials("default") == []
    pstore.delete_smtp_credential("C1")
    with pytest.raises(NotFound):
        pstore.smtp_credential_by_username("prj-one")
    with pytest.raises(NotFound):
        pstore.delete_smtp_credential("C1")


def test_ip_credentials(pstore: SqlPlatformStore) -> None:
    pstore.create_project(project())
    a = IpCredential("I1", "acme", "10.0.0.0/8", T0)
    b = IpCredential("I2", "default", "2001:db8::/32", T0 + timedelta(seconds=1))
    pstore.add_ip_credential(a)
    pstore.add_ip_credential(b)
    with pytest.raises(InvalidInput) as dup:
        pstore.add_ip_credential(replace(a, id="I3", project_id="default"))
    assert dup.value.field == "network"
    assert pstore.list_ip_credentials() == [a, b]
    assert pstore.list_ip_credentials("acme") == [a]
    pstore.delete_ip_credential("I1")
    assert pstore.list_ip_credentials() == [b]
    with pytest.raises(NotFound):
        pstore.delete_ip_credential("I1")


def test_api_keys(pstore: SqlPlatformStore) -> None:
    pstore.create_project(project())
    k = ApiKey("abcDEF123456", "acme", "ci", ("send", "read"), "f" * 64, T0)
    pstore.add_api_key(k)
    assert pstore.api_key("abcDEF123456") == k
    assert pstore.list_api_keys("acme") == [k]
    pstore.touch_api_key("abcDEF123456", T0 + timedelta(days=1))
    assert pstore.api_key("abcDEF123456").last_used == T0 + timedelta(days=1)
    pstore.delete_api_key("abcDEF123456")
    with pytest.raises(NotFound):
        pstore.api_key("abcDEF123456")


def test_domains_and_keys(pstore: SqlPlatformStore) -> None:
    pstore.create_project(project())
    d = domain()
    pstore.add_domain(d)
    assert pstore.get_domain("acme", "example.com") == d
    with pytest.raises(InvalidInput) as dup:
        pstore.add_domain(replace(d, id="D2"))
    assert dup.value.field == "domain"
    pstore.add_domain(domain(pid="default", did="D3"))  # another project may claim it too
    assert [(x.project_id, x.name) for x in pstore.list_domains()] == [
        ("acme", "example.com"),
        ("default", "example.com"),
    ]
    assert pstore.list_domains("acme") == [d]

    later = T0 + timedelta(minutes=5)
    saved = replace(
        d,
        verified=True,
        verified_at=later,
        last_checked=later,
        check_json='{"verified": true}',
        dkim_keys=(
            replace(d.dkim_keys[0], status="retiring", retire_after=later + timedelta(days=7)),
            key("pr20260301b", "active"),
        ),
    )
    pstore.save_domain(saved)
    assert pstore.get_domain("acme", "example.com") == saved
    with pytest.raises(InvalidInput):
        pstore.save_domain(replace(saved, dkim_keys=(key("same"), key("same"))))
    assert pstore.get_domain("acme", "example.com") == saved  # rolled back whole
    with pytest.raises(NotFound):
        pstore.save_domain(replace(saved, id="nope"))
    pstore.delete_domain("acme", "example.com")
    with pytest.raises(NotFound):
        pstore.get_domain("acme", "example.com")
    with pytest.raises(NotFound):
        pstore.delete_domain("acme", "example.com")


def test_address_identities(pstore: SqlPlatformStore) -> None:
    pstore.create_project(project())
    expires = T0 + timedelta(hours=24)
    a = AddressIdentity(
        "acme",
        "ops@example.com",
        T0,
        token_digest="a" * 64,
        token_expires=expires,
        last_mail=T0,
        mails_in_window=1,
        window_start=T0,
    )
    pstore.add_address_identity(a)
    with pytest.raises(InvalidInput) as dup:
        pstore.add_address_identity(a)
    assert dup.value.field == "address"
    assert pstore.list_address_identities("acme") == [a]
    assert pstore.get_address_identity("acme", "ops@example.com") == a
    assert pstore.address_identity_by_token("a" * 64) == a
    with pytest.raises(NotFound):
        pstore.address_identity_by_token("b" * 64)
    # the confirmation is conditional: the right token, still pending, not expired
    assert not pstore.confirm_address_identity("acme", "ops@example.com", "b" * 64, T0)
    assert not pstore.confirm_address_identity("acme", "ops@example.com", "a" * 64, expires)
    assert pstore.confirm_address_identity("acme", "ops@example.com", "a" * 64, T0)
    assert not pstore.confirm_address_identity("acme", "ops@example.com", "a" * 64, T0)  # used
    verified = pstore.get_address_identity("acme", "ops@example.com")
    assert (verified.status, verified.verified_at) == ("verified", T0)
    renewed = replace(a, token_digest="c" * 64, mails_in_window=2)
    pstore.save_address_identity(renewed)
    assert pstore.get_address_identity("acme", "ops@example.com") == renewed
    pstore.delete_address_identity("acme", "ops@example.com")
    with pytest.raises(NotFound):
        pstore.delete_address_identity("acme", "ops@example.com")
    with pytest.raises(NotFound):
        pstore.save_address_identity(renewed)


def test_admins(pstore: SqlPlatformStore) -> None:
    user = AdminUser("A1", "alice", "$argon2id$fake", T0)
    pstore.add_admin(user)
    with pytest.raises(InvalidInput) as dup:
        pstore.add_admin(replace(user, id="A2"))
    assert dup.value.field == "username"
    assert pstore.admin_by_username("alice") == user
    assert pstore.list_admins() == [user]
    pstore.delete_admin("alice")
    with pytest.raises(NotFound):
        pstore.admin_by_username("alice")


@pytest.mark.parametrize("writer_process", [False, True], ids=["thread", "process"])
async def test_sends_are_counted_with_their_messages(
    pstore: SqlPlatformStore, target: str, clock: FakeClock, writer_process: bool
) -> None:
    """The message store writes a message's sends in the message's own transaction, per
    project and second; count_sends reads them back (what the quotas and usage read)."""
    pstore.create_project(project())

    def msg(at: datetime, sends: int, pid: str = "acme") -> NewMessage:
        return replace(make_message(clock, created=at), project=pid, sends=sends)

    store = open_store(target, clock, writer_process=writer_process)
    try:
        first = msg(T0, 3)
        await store.add(first)
        await asyncio.gather(  # one batch: the same second is one counter
            store.add(msg(T0 + timedelta(milliseconds=300), 2)),
            store.add(msg(T0 + timedelta(hours=1), 5)),
            store.add(msg(T0, 7, "default")),
            store.add(msg(T0, 0)),  # captured mail counts nothing
        )
        assert pstore.count_sends("acme", T0 - timedelta(days=1)) == 10
        assert pstore.count_sends("acme", T0) == 10  # the second of `since` counts
        assert pstore.count_sends("acme", T0 + timedelta(seconds=1)) == 5
        assert pstore.count_sends("acme", T0 + timedelta(hours=2)) == 0
        assert pstore.count_sends("default", T0) == 7
        assert pstore.count_sends("ghost", T0) == 0

        # A message that is not stored counts nothing, even in a batch with one that is.
        results = await asyncio.gather(
            store.add(replace(first, sends=100)),  # duplicate id: refused
            store.add(msg(T0 + timedelta(hours=1), 4)),
            return_exceptions=True,
        )
        assert isinstance(results[0], StorageError) and not isinstance(results[1], Exception)
        assert pstore.count_sends("acme", T0) == 14

        # Counters older than two days go as new ones are written.
        await store.add(msg(T0 + timedelta(days=3), 1))
        assert pstore.count_sends("acme", T0 - timedelta(days=1)) == 1
    finally:
        await store.close()


async def test_deleting_a_project_takes_what_it_owns(
    pstore: SqlPlatformStore, target: str, clock: FakeClock
) -> None:
    pstore.create_project(project())
    pstore.add_smtp_credential(SmtpCredential("C1", "acme", "u1", "d" * 64, (), T0))
    pstore.add_ip_credential(IpCredential("I1", "acme", "192.0.2.0/24", T0))
    pstore.add_api_key(ApiKey("k" * 12, "acme", "n", ("send",), "f" * 64, T0))
    pstore.add_domain(domain())
    pstore.add_address_identity(AddressIdentity("acme", "x@example.com", T0))
    mine, theirs = make_message(clock), make_message(clock)
    mine = replace(mine, project="acme", sends=1)
    store = open_store(target, clock)
    try:
        await store.add(mine)
        await store.add(theirs)
        engine = create_engine(resolve_target(target).url)
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "sqlite":
                    conn.execute(text("PRAGMA foreign_keys = ON"))
                conn.execute(
                    insert(queue_entries).values(
                        message_id=mine.id,
                        project="acme",
                        recipient="r@example.net",
                        next_attempt_us=1,
                        created_us=1,
                    )
                )
            with engine.connect() as conn:
                row = conn.execute(select(queue_entries)).one()
                assert (row.status, row.attempts, row.last_error) == ("queued", 0, None)
        finally:
            engine.dispose()

        pstore.delete_project("acme")

        engine = create_engine(resolve_target(target).url)
        try:
            with engine.connect() as conn:
                for table in PLATFORM_TABLES - {"projects", "admin_users", "platform_generation"}:
                    count = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                    assert count == 0, table
                ids = list(conn.execute(select(messages.c.id)).scalars())
                assert ids == [theirs.id]
                assert conn.execute(select(func.count()).select_from(messages)).scalar() == 1
        finally:
            engine.dispose()
        assert [p.id for p in pstore.list_projects()] == ["default"]
    finally:
        await store.close()


async def test_the_change_counter_moves_with_every_change_and_only_then(
    pstore: SqlPlatformStore, target: str, clock: FakeClock
) -> None:
    """Issue 9 item 5: caches of credentials, projects and identities read this one number at
    every MAIL. The database raises it (triggers), so a change made by another process or
    with plain SQL counts too; recording a use, storing messages and counting sends do not."""
    seen = [pstore.generation()]

    def moved() -> bool:
        seen.append(pstore.generation())
        return seen[-1] != seen[-2]

    pstore.create_project(project())
    assert moved()
    pstore.update_project(project(name="Renamed"))
    assert moved()
    pstore.add_smtp_credential(SmtpCredential("C1", "acme", "u1", "d" * 64, (), T0))
    assert moved()
    pstore.touch_smtp_credential("C1", T0 + timedelta(minutes=5))
    assert not moved()
    pstore.add_api_key(ApiKey("k" * 12, "acme", "n", ("send",), "f" * 64, T0))
    assert moved()  # the HTTP doors' key cache trusts a key while the counter stays (0023)
    pstore.touch_api_key("k" * 12, T0 + timedelta(minutes=5))
    assert not moved()
    pstore.add_ip_credential(IpCredential("I1", "acme", "192.0.2.0/24", T0))
    assert moved()
    pstore.add_domain(domain())
    assert moved()
    pstore.save_domain(replace(domain(), verified=True, dkim_keys=(key("pr2"),)))
    assert moved()
    expires = T0 + timedelta(hours=1)
    pstore.add_address_identity(
        AddressIdentity("acme", "x@example.com", T0, token_digest="a" * 64, token_expires=expires)
    )
    assert moved()
    assert pstore.confirm_address_identity("acme", "x@example.com", "a" * 64, T0)
    assert moved()  # verified: the doors must see it
    store = open_store(target, clock)
    try:
        await store.add(replace(make_message(clock), project="acme", sends=3))
    finally:
        await store.close()
    assert not moved()
    # Another connection, plain SQL: still counted, in that transaction.
    engine = create_engine(resolve_target(target).url)
    try:
        for statement in (
            "UPDATE smtp_credentials SET allowed_from = '[\"a.example\"]' WHERE id = 'C1'",
            "UPDATE api_keys SET scopes = '[\"read\"]'",
            "DELETE FROM api_keys",
            "DELETE FROM dkim_keys",
            "DELETE FROM verified_addresses",
            "DELETE FROM ip_credentials",
            "DELETE FROM smtp_credentials WHERE id = 'C1'",
        ):
            with engine.begin() as conn:
                conn.execute(text(statement))
            assert moved(), statement
        with engine.connect() as conn:  # rolled back: not counted
            conn.execute(text("DELETE FROM domains"))
            conn.rollback()
        assert not moved()
    finally:
        engine.dispose()
    pstore.delete_project("acme")
    assert moved()
    assert seen == sorted(seen)  # it only goes up


def test_an_unreadable_change_counter_is_a_storage_error(
    pstore: SqlPlatformStore, target: str
) -> None:
    """The door answers 451 4.3.0 for a StorageError: a driver error must become one."""
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM platform_generation"))
        with pytest.raises(StorageError, match="change counter is missing"):
            pstore.generation()
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE platform_generation RENAME TO gone"))
        with pytest.raises(StorageError, match="the platform store failed"):
            pstore.generation()
    finally:
        engine.dispose()
