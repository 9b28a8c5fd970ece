"""The SendingStore port (core/sending.py) on SQLAlchemy Core, in the platform's database.

Tables (migration 0004): `idempotency_keys` (one row per project and key: the request's
fingerprint and, once answered, the status and JSON body), `email_templates` (one row per
version) and `ses_access_keys` (the secret sealed, storage/sealing.py). Each goes with its
project (ON DELETE CASCADE).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Row

from postroom.core.errors import InvalidInput, LimitExceeded, NotFound
from postroom.core.sending import IdempotencyRecord, SesKey, Template
from postroom.storage.platform_store import (
    SqlPlatformStore,
    _opt_dt,
    _project_fk,
    from_us,
    send_counts,
    to_us,
)
from postroom.storage.schema import metadata

__all__ = ["SqlSendingStore", "email_templates", "idempotency_keys", "ses_access_keys"]

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("project", String(100), nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("status", Integer, nullable=True),
    Column("response", Text, nullable=True),
    PrimaryKeyConstraint("project", "key", name="pk_idempotency_keys"),
    _project_fk("idempotency_keys"),
)
Index("ix_idempotency_keys_created_us", idempotency_keys.c.created_us)

email_templates = Table(
    "email_templates",
    metadata,
    Column("project", String(100), nullable=False),
    Column("name", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("subject", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("project", "name", "version", name="pk_email_templates"),
    _project_fk("email_templates"),
)

ses_access_keys = Table(
    "ses_access_keys",
    metadata,
    Column("id", String(32), nullable=False),
    Column("project", String(100), nullable=False),
    Column("sealed_secret", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("last_used_us", BigInteger, nullable=True),
    PrimaryKeyConstraint("id", name="pk_ses_access_keys"),
    _project_fk("ses_access_keys"),
)
Index("ix_ses_access_keys_project", ses_access_keys.c.project)

TABLES = frozenset({"idempotency_keys", "email_templates", "ses_access_keys"})


def _template(row: Row[Any]) -> Template:
    return Template(
        project_id=row.project,
        name=row.name,
        version=int(row.version),
        subject=row.subject,
        text=row.text,
        html=row.html,
        created=from_us(row.created_us),
    )


def _ses_key(row: Row[Any]) -> SesKey:
    return SesKey(
        id=row.id,
        project_id=row.project,
        sealed_secret=row.sealed_secret,
        created=from_us(row.created_us),
        last_used=_opt_dt(row.last_used_us),
    )


class SqlSendingStore:
    """SendingStore on the platform store's engines and transactions."""

    def __init__(self, platform: SqlPlatformStore) -> None:
        self._platform = platform

    # -- idempotency ---------------------------------------------------------------------

    def claim_idempotency(
        self,
        project_id: str,
        key: str,
        fingerprint: str,
        now: datetime,
        since: datetime,
        stale: datetime | None = None,
    ) -> IdempotencyRecord | None:
        where = and_(idempotency_keys.c.project == project_id, idempotency_keys.c.key == key)

        def work(conn: Connection) -> IdempotencyRecord | None:
            conn.execute(
                delete(idempotency_keys).where(idempotency_keys.c.created_us < to_us(since))
            )
            row = conn.execute(select(idempotency_keys).where(where)).first()
            if (
                row is not None
                and row.status is None
                and stale is not None
                and row.created_us < to_us(stale)
            ):
                # Its request died unanswered (the process stopped): take the key over.
                conn.execute(
                    update(idempotency_keys)
                    .where(where)
                    .values(fingerprint=fingerprint, created_us=to_us(now))
                )
                return None
            if row is not None:
                return IdempotencyRecord(
                    row.fingerprint, from_us(row.created_us), row.status, row.response
                )
            conn.execute(
                insert(idempotency_keys).values(
                    project=project_id, key=key, fingerprint=fingerprint, created_us=to_us(now)
                )
            )
            return None

        try:
            return self._platform._writing(work)
        except InvalidInput:
            # Another process claimed the key between our read and insert: it owns it.
            return IdempotencyRecord(fingerprint, now, None, None)

    def finish_idempotency(self, project_id: str, key: str, status: int, response: str) -> None:
        def work(conn: Connection) -> None:
            conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.project == project_id, idempotency_keys.c.key == key)
                .values(status=status, response=response)
            )

        self._platform._writing(work)

    def release_idempotency(self, project_id: str, key: str) -> None:
        def work(conn: Connection) -> None:
            conn.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.project == project_id, idempotency_keys.c.key == key
                )
            )

        self._platform._writing(work)

    # -- templates -----------------------------------------------------------------------

    def save_template(
        self,
        project_id: str,
        name: str,
        content: tuple[str, str, str],
        now: datetime,
        *,
        create: bool,
        limit: int | None = None,
    ) -> Template:
        subject, text, html = content

        def work(conn: Connection) -> Template:
            self._platform._require_project(conn, project_id)
            latest = conn.execute(
                select(func.max(email_templates.c.version)).where(
                    email_templates.c.project == project_id, email_templates.c.name == name
                )
            ).scalar_one()
            if create and latest is not None:
                raise InvalidInput(f"template {name!r} already exists", "name")
            if not create and latest is None:
                raise NotFound(f"no template {name!r}")
            if latest is None and limit is not None:
                count = conn.execute(
                    select(func.count(func.distinct(email_templates.c.name))).where(
                        email_templates.c.project == project_id
                    )
                ).scalar_one()
                if count >= limit:
                    raise LimitExceeded(
                        f"a project has at most {limit} email templates (max_templates): "
                        f"delete one to create {name!r}",
                        "name",
                    )
            version = 1 if latest is None else int(latest) + 1
            conn.execute(
                insert(email_templates).values(
                    project=project_id,
                    name=name,
                    version=version,
                    subject=subject,
                    text=text,
                    html=html,
                    created_us=to_us(now),
                )
            )
            return Template(project_id, name, version, subject, text, html, now)

        return self._platform._writing(
            work, lambda exc: InvalidInput(f"template {name!r} was changed meanwhile", "name")
        )

    def get_template(self, project_id: str, name: str, version: int | None = None) -> Template:
        def work(conn: Connection) -> Template:
            query = select(email_templates).where(
                email_templates.c.project == project_id, email_templates.c.name == name
            )
            if version is not None:
                query = query.where(email_templates.c.version == version)
            row = conn.execute(query.order_by(email_templates.c.version.desc()).limit(1)).first()
            if row is None:
                which = f" version {version}" if version is not None else ""
                raise NotFound(f"no template {name!r}{which}")
            return _template(row)

        return self._platform._reading(work)

    def list_templates(self, project_id: str) -> list[Template]:
        def work(conn: Connection) -> list[Template]:
            latest = (
                select(email_templates.c.name, func.max(email_templates.c.version).label("version"))
                .where(email_templates.c.project == project_id)
                .group_by(email_templates.c.name)
                .subquery()
            )
            rows = conn.execute(
                select(email_templates)
                .join(
                    latest,
                    and_(
                        email_templates.c.name == latest.c.name,
                        email_templates.c.version == latest.c.version,
                    ),
                )
                .where(email_templates.c.project == project_id)
                .order_by(email_templates.c.name)
            ).all()
            return [_template(row) for row in rows]

        return self._platform._reading(work)

    def delete_template(self, project_id: str, name: str) -> None:
        def work(conn: Connection) -> None:
            result = conn.execute(
                delete(email_templates).where(
                    email_templates.c.project == project_id, email_templates.c.name == name
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"no template {name!r}")

        self._platform._writing(work)

    # -- SES access keys -----------------------------------------------------------------

    def add_ses_key(self, key: SesKey) -> None:
        def work(conn: Connection) -> None:
            self._platform._require_project(conn, key.project_id)
            conn.execute(
                insert(ses_access_keys).values(
                    id=key.id,
                    project=key.project_id,
                    sealed_secret=key.sealed_secret,
                    created_us=to_us(key.created),
                )
            )

        self._platform._writing(work, lambda exc: InvalidInput("access key id taken", "id"))

    def ses_key(self, key_id: str) -> SesKey:
        def work(conn: Connection) -> SesKey:
            row = conn.execute(
                select(ses_access_keys).where(ses_access_keys.c.id == key_id)
            ).first()
            if row is None:
                raise NotFound(f"no access key {key_id!r}")
            return _ses_key(row)

        return self._platform._reading(work)

    def list_ses_keys(self, project_id: str) -> list[SesKey]:
        def work(conn: Connection) -> list[SesKey]:
            rows = conn.execute(
                select(ses_access_keys)
                .where(ses_access_keys.c.project == project_id)
                .order_by(ses_access_keys.c.created_us, ses_access_keys.c.id)
            ).all()
            return [_ses_key(row) for row in rows]

        return self._platform._reading(work)

    def delete_ses_key(self, project_id: str, key_id: str) -> None:
        def work(conn: Connection) -> None:
            result = conn.execute(
                delete(ses_access_keys).where(
                    ses_access_keys.c.project == project_id, ses_access_keys.c.id == key_id
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"no access key {key_id!r}")

        self._platform._writing(work)

    def touch_ses_key(self, key_id: str, when: datetime) -> None:
        def work(conn: Connection) -> None:
            conn.execute(
                update(ses_access_keys)
                .where(ses_access_keys.c.id == key_id)
                .values(last_used_us=to_us(when))
            )

        self._platform._writing(work)

    # -- statistics ----------------------------------------------------------------------

    def send_points(self, project_id: str, since: datetime, step: int) -> list[tuple[int, int]]:
        first = to_us(since) // 1_000_000

        def work(conn: Connection) -> list[tuple[int, int]]:
            rows = conn.execute(
                select(send_counts.c.bucket, send_counts.c.count).where(
                    send_counts.c.project == project_id, send_counts.c.bucket >= first
                )
            ).all()
            sums: dict[int, int] = {}
            for bucket, count in rows:
                start = int(bucket) - int(bucket) % step
                sums[start] = sums.get(start, 0) + int(count)
            return sorted(sums.items())

        return self._platform._reading(work)
