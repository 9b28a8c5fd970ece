"""The HTTP doors keep the API keys they have checked and the projects they send into, and
trust them only while the platform's change counter stays (api/auth.py, migration 0023): a key
revoked or given other scopes, or a project changed, by the CLI (another process), the API or
plain SQL on another connection, applies to the very next request. SQLite and PostgreSQL."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import trustme
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from postroom.core.platform import ApiKey, Scope
from postroom.core.secrets import new_api_key
from postroom.storage.engine import open_platform_store, resolve_target
from tests.dnszone import DnsZone
from tests.services import require_postgres

from .conftest import CREATED, Env, start_env

SEND = {"from": "app@example.com", "to": ["a@example.net"], "subject": "k", "text": "hi\n"}
UNVERIFIED = {**SEND, "from": "ceo@elsewhere.example"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_env(
    request: pytest.FixtureRequest, tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone
) -> Iterator[Env]:
    if request.param == "sqlite":
        environment = start_env(tmp_path, ca, dns_zone)
        try:
            yield environment
        finally:
            environment.server.stop()
        return
    url = require_postgres()
    admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"postroom_t_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    try:
        environment = start_env(tmp_path, ca, dns_zone, database_url=database_url)
        try:
            yield environment
        finally:
            environment.server.stop()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def add_key(env: Env, *scopes: Scope, project: str = "acme") -> tuple[str, str]:
    """(key id, token) of a new key, added through the server's own store."""
    issued = new_api_key()
    env.platform.add_api_key(ApiKey(issued.key_id, project, "app", scopes, issued.digest, CREATED))
    return issued.key_id, issued.token


def cli(env: Env, *args: str) -> None:
    """`postroom ARGS` in another process, on the server's database."""
    config = env.server.app.config
    where = {"POSTROOM_DATABASE_URL": config.database_url} if config.database_url else {}
    data = [] if config.database_url else ["--data-dir", str(config.data_dir)]
    done = subprocess.run(
        [sys.executable, "-m", "postroom.cli", *args, *data],
        env={**os.environ, **where},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def plain_sql(env: Env, statement: str, **values: Any) -> None:
    """One statement committed on a connection of its own (not the server's store)."""
    config = env.server.app.config
    target = config.database_url or str(config.data_dir)
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement), values)
    finally:
        engine.dispose()


def counting_key_reads(env: Env) -> list[str]:
    """Record every read of a key by the server's authenticator (its platform service's
    `authenticate_api_key`, which it calls on a worker thread)."""
    service = env.server.app.platform_service
    assert service is not None
    calls: list[str] = []
    read: Callable[[str], ApiKey] = service.authenticate_api_key

    def counted(token: str) -> ApiKey:
        calls.append(token)
        return read(token)

    service.authenticate_api_key = counted  # type: ignore[method-assign]
    return calls


def test_a_key_revoked_by_the_cli_is_refused_at_the_next_request(any_env: Env) -> None:
    key_id, token = add_key(any_env, "send")
    reads = counting_key_reads(any_env)
    with httpx.Client(
        base_url=any_env.server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as http:
        for _ in range(3):
            sent = http.post("/api/v2/messages", json=SEND)
            assert sent.status_code == 200, sent.text
        assert len(reads) == 1  # checked once, then kept while nothing changed
        cli(any_env, "apikey", "delete", key_id, "--project", "acme")
        refused = http.post("/api/v2/messages", json=SEND)
        assert refused.status_code == 401, refused.text
        assert refused.json()["Error"] == "unknown or revoked API key"
        assert http.get("/api/v1/messages").status_code == 401
    assert len(any_env.messages()) == 3


def test_a_key_revoked_through_the_api_is_refused_at_the_next_request(any_env: Env) -> None:
    key_id, token = add_key(any_env, "send")
    _, manager = add_key(any_env, "manage")
    base = any_env.server.base_url
    with (
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as sender,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {manager}"}) as admin,
    ):
        assert sender.post("/api/v2/messages", json=SEND).status_code == 200
        assert sender.post("/api/v2/messages", json=SEND).status_code == 200
        deleted = admin.delete(f"/api/v2/projects/acme/api-keys/{key_id}")
        assert deleted.status_code in (200, 204), deleted.text
        assert sender.post("/api/v2/messages", json=SEND).status_code == 401


def test_scopes_changed_elsewhere_apply_at_the_next_request(any_env: Env) -> None:
    key_id, token = add_key(any_env, "send")
    with httpx.Client(
        base_url=any_env.server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as http:
        assert http.post("/api/v2/messages", json=SEND).status_code == 200
        assert http.get("/api/v1/messages").status_code == 403
        change = "UPDATE api_keys SET scopes = :scopes WHERE id = :id"
        plain_sql(any_env, change, scopes='["read"]', id=key_id)
        refused = http.post("/api/v2/messages", json=SEND)
        assert refused.status_code == 403, refused.text
        assert refused.json()["Error"] == "this API key lacks the send scope (it has: read)"
        assert http.get("/api/v1/messages").status_code == 200
        plain_sql(any_env, change, scopes='["send"]', id=key_id)
        assert http.post("/api/v2/messages", json=SEND).status_code == 200
        # Recording a use changes nothing that is kept: the key is not read again for it.
        reads = counting_key_reads(any_env)
        plain_sql(any_env, "UPDATE api_keys SET last_used_us = 1 WHERE id = :id", id=key_id)
        assert http.post("/api/v2/messages", json=SEND).status_code == 200
        assert reads == []


def test_a_project_changed_elsewhere_applies_to_the_next_send(any_env: Env) -> None:
    """The send door's project snapshot is dropped when a key's request sees the counter
    move (before: kept up to 5 s)."""
    _, token = add_key(any_env, "send")
    other = open_platform_store(any_env.server.app.config)  # another store instance
    try:
        with httpx.Client(
            base_url=any_env.server.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ) as http:
            refused = http.post("/api/v2/messages", json=UNVERIFIED)
            assert refused.status_code == 403, refused.text  # live: identities checked
            project = other.get_project("acme")
            other.update_project(replace(project, mode="capture"))
            captured = http.post("/api/v2/messages", json=UNVERIFIED)
            assert captured.status_code == 200, captured.text  # capture: no identity check
            other.update_project(project)
            assert http.post("/api/v2/messages", json=UNVERIFIED).status_code == 403
    finally:
        other.close()
