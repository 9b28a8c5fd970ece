"""Per-project delivery settings on SQLite and PostgreSQL: defaults without a row, a change
kept, an unknown project refused, and the row gone with its project; the IP pool setting
changed apart from bounce notices."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, insert

from postroom.core.clock import FakeClock
from postroom.core.errors import NotFound
from postroom.storage import SqlMessageStore, open_store
from postroom.storage.platform_store import projects


@pytest.fixture
async def store(target: str, clock: FakeClock) -> AsyncIterator[SqlMessageStore]:
    opened = open_store(target, clock, writer_process=False)
    try:
        yield opened
    finally:
        await opened.close()


async def test_settings(store: SqlMessageStore) -> None:
    with store._write.begin() as conn:
        conn.execute(insert(projects).values(id="acme", name="Acme", mode="live", created_us=0))
    settings = store.delivery_settings
    assert settings.get("acme").bounce_notices is True
    assert settings.set("acme", False).bounce_notices is False
    assert settings.get("acme").bounce_notices is False
    assert settings.set("acme", True).bounce_notices is True
    settings.set("acme", False)
    with pytest.raises(NotFound):
        settings.set("nope", False)
    with store._write.begin() as conn:
        conn.execute(delete(projects).where(projects.c.id == "acme"))
        conn.execute(insert(projects).values(id="acme", name="Again", mode="live", created_us=0))
    assert settings.get("acme").bounce_notices is True  # the old row went with its project


async def test_ip_pool_setting(store: SqlMessageStore) -> None:
    with store._write.begin() as conn:
        conn.execute(insert(projects).values(id="acme", name="Acme", mode="live", created_us=0))
    settings = store.delivery_settings
    assert settings.ip_pool("acme") is None
    stored = settings.set("acme", ip_pool="dedicated")  # no row yet: the other setting default
    assert (stored.bounce_notices, stored.ip_pool) == (True, "dedicated")
    settings.set("acme", False)  # bounce notices alone: the pool stays
    assert settings.get("acme") == type(stored)("acme", False, "dedicated")
    assert settings.set("acme", ip_pool=None).ip_pool is None
    assert settings.get("acme").bounce_notices is False
    with pytest.raises(NotFound):
        settings.set("nope", ip_pool="dedicated")
