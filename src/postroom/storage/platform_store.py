"""The PlatformStore port on SQLAlchemy Core, in the message store's database.

Tables (created by migration 0002): `projects` and what a project owns (`smtp_credentials`,
`ip_credentials`, `api_keys`, `domains` with their `dkim_keys`, `verified_addresses`,
`send_counts`, written with the messages: storage/batch.py) and `admin_users`. Everything a
project owns goes with it (ON DELETE CASCADE); deleting a project deletes its messages too, and
their queue entries (storage/queue.py): deleting a project cancels its deliveries.

Times are integer microseconds since the epoch (UTC), as in the message tables. Structured
values (allowed senders, scopes) are JSON text. Secrets are digests or hashes only; DKIM
private keys are stored PEM for signing (retired keys have theirs erased).

The tables are declared on `postroom.storage.schema.metadata`, so that the migrated schema
can be compared with one MetaData. Open the store with
`postroom.storage.engine.open_platform_store`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    false,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from postroom.core.errors import InvalidInput, LimitExceeded, NotFound, StorageError
from postroom.core.platform import (
    AddressIdentity,
    AddressStatus,
    AdminUser,
    ApiKey,
    DkimAlgorithm,
    DkimKey,
    DkimStatus,
    Domain,
    IpCredential,
    Project,
    ProjectMode,
    SmtpCredential,
    scopes_from,
)
from postroom.storage import fulltext
from postroom.storage.attempts import delete_of_project as delete_attempts_of_project
from postroom.storage.events import events
from postroom.storage.queue import queue_entries
from postroom.storage.schema import messages, metadata
from postroom.storage.suppressions import suppressions

__all__ = [
    "SqlPlatformStore",
    "admin_users",
    "api_keys",
    "dkim_keys",
    "domains",
    "ip_credentials",
    "platform_generation",
    "projects",
    "send_counts",
    "smtp_credentials",
    "verified_addresses",
]

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
# Send counters older than this are deleted as new ones are written (quotas look back 24 h;
# storage/batch.py writes them with the messages).
SEND_COUNT_RETENTION = timedelta(hours=48)

_GENERATION = "SELECT value FROM platform_generation WHERE id = 1"

SeqType = BigInteger().with_variant(Integer(), "sqlite")


def _project_fk(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["project"], ["projects.id"], name=f"fk_{table}_project_projects", ondelete="CASCADE"
    )


projects = Table(
    "projects",
    metadata,
    Column("id", String(100), nullable=False),
    Column("name", Text, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("daily_quota", Integer, nullable=True),
    Column("rate_limit", Integer, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("paused_us", BigInteger, nullable=True),  # the reputation guard paused sending
    Column("pause_reason", Text, nullable=True),
    Column("suspended_us", BigInteger, nullable=True),  # an admin suspended sending (0025)
    Column("suspend_reason", Text, nullable=True),
    PrimaryKeyConstraint("id", name="pk_projects"),
)

smtp_credentials = Table(
    "smtp_credentials",
    metadata,
    Column("id", String(26), nullable=False),
    Column("project", String(100), nullable=False),
    Column("username", String(255), nullable=False),
    Column("secret_digest", String(64), nullable=False),
    Column("allowed_from", Text, nullable=False),  # JSON list
    Column("created_us", BigInteger, nullable=False),
    Column("last_used_us", BigInteger, nullable=True),
    PrimaryKeyConstraint("id", name="pk_smtp_credentials"),
    UniqueConstraint("username", name="uq_smtp_credentials_username"),
    _project_fk("smtp_credentials"),
)
Index("ix_smtp_credentials_project", smtp_credentials.c.project)

ip_credentials = Table(
    "ip_credentials",
    metadata,
    Column("id", String(26), nullable=False),
    Column("project", String(100), nullable=False),
    Column("network", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("id", name="pk_ip_credentials"),
    UniqueConstraint("network", name="uq_ip_credentials_network"),
    _project_fk("ip_credentials"),
)
Index("ix_ip_credentials_project", ip_credentials.c.project)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), nullable=False),
    Column("project", String(100), nullable=False),
    Column("name", Text, nullable=False),
    Column("scopes", Text, nullable=False),  # JSON list
    Column("digest", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("last_used_us", BigInteger, nullable=True),
    PrimaryKeyConstraint("id", name="pk_api_keys"),
    _project_fk("api_keys"),
)
Index("ix_api_keys_project", api_keys.c.project)

domains = Table(
    "domains",
    metadata,
    Column("id", String(26), nullable=False),
    Column("project", String(100), nullable=False),
    Column("name", String(253), nullable=False),
    Column("verification_token", String(100), nullable=False),
    Column("verified", Boolean(create_constraint=False), nullable=False, server_default=false()),
    Column("created_us", BigInteger, nullable=False),
    Column("verified_at_us", BigInteger, nullable=True),
    Column("last_checked_us", BigInteger, nullable=True),
    Column("check_json", Text, nullable=False),
    PrimaryKeyConstraint("id", name="pk_domains"),
    UniqueConstraint("project", "name", name="uq_domains_project"),
    _project_fk("domains"),
)
Index("ix_domains_name", domains.c.name)

dkim_keys = Table(
    "dkim_keys",
    metadata,
    Column("domain_id", String(26), nullable=False),
    Column("selector", String(63), nullable=False),
    Column("algorithm", String(16), nullable=False),
    Column("private_pem", Text, nullable=False),
    Column("public_record", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("activated_us", BigInteger, nullable=True),
    Column("retire_after_us", BigInteger, nullable=True),
    PrimaryKeyConstraint("domain_id", "selector", name="pk_dkim_keys"),
    ForeignKeyConstraint(
        ["domain_id"], ["domains.id"], name="fk_dkim_keys_domain_id_domains", ondelete="CASCADE"
    ),
)

# Address identities, pending or verified (the table kept its first name; migration 0008
# added the status, the token digest and the mail counters).
verified_addresses = Table(
    "verified_addresses",
    metadata,
    Column("project", String(100), nullable=False),
    Column("address", String(320), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("token_digest", String(64), nullable=True),
    Column("token_expires_us", BigInteger, nullable=True),
    Column("verified_us", BigInteger, nullable=True),
    Column("last_mail_us", BigInteger, nullable=True),
    Column("mails_in_window", Integer, nullable=False, server_default="0"),
    Column("window_start_us", BigInteger, nullable=True),
    PrimaryKeyConstraint("project", "address", name="pk_verified_addresses"),
    _project_fk("verified_addresses"),
)
Index("ix_verified_addresses_token_digest", verified_addresses.c.token_digest, unique=True)

admin_users = Table(
    "admin_users",
    metadata,
    Column("id", String(26), nullable=False),
    Column("username", String(100), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("id", name="pk_admin_users"),
    UniqueConstraint("username", name="uq_admin_users_username"),
)

# One row (id 1) whose value the database raises (triggers, migrations 0007 and 0023) in the
# transaction of any change to projects, credentials, API keys, domains, DKIM keys or verified
# addresses.
platform_generation = Table(
    "platform_generation",
    metadata,
    Column("id", Integer, nullable=False),
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("id", name="pk_platform_generation"),
)

send_counts = Table(
    "send_counts",
    metadata,
    Column("project", String(100), nullable=False),
    Column("bucket", BigInteger, nullable=False),  # whole seconds since the epoch
    Column("count", Integer, nullable=False),
    PrimaryKeyConstraint("project", "bucket", name="pk_send_counts"),
    _project_fk("send_counts"),
)

# -- conversions ------------------------------------------------------------------------------


def to_us(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("naive datetime: platform times are timezone-aware UTC")
    return (when - _EPOCH) // _US


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _opt_us(when: datetime | None) -> int | None:
    return None if when is None else to_us(when)


def _opt_dt(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)


def _project(row: Row[Any]) -> Project:
    return Project(
        id=row.id,
        name=row.name,
        mode=cast(ProjectMode, row.mode),
        created=from_us(row.created_us),
        daily_quota=row.daily_quota,
        rate_limit=row.rate_limit,
        paused=_opt_dt(row.paused_us),
        pause_reason=row.pause_reason or "",
        suspended=_opt_dt(row.suspended_us),
        suspend_reason=row.suspend_reason or "",
    )


def _smtp_credential(row: Row[Any]) -> SmtpCredential:
    return SmtpCredential(
        id=row.id,
        project_id=row.project,
        username=row.username,
        secret_digest=row.secret_digest,
        allowed_from=tuple(json.loads(row.allowed_from)),
        created=from_us(row.created_us),
        last_used=_opt_dt(row.last_used_us),
    )


def _ip_credential(row: Row[Any]) -> IpCredential:
    return IpCredential(
        id=row.id, project_id=row.project, network=row.network, created=from_us(row.created_us)
    )


def _api_key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        project_id=row.project,
        name=row.name,
        scopes=scopes_from(json.loads(row.scopes)),
        digest=row.digest,
        created=from_us(row.created_us),
        last_used=_opt_dt(row.last_used_us),
    )


def _dkim_key(row: Row[Any]) -> DkimKey:
    return DkimKey(
        selector=row.selector,
        algorithm=cast(DkimAlgorithm, row.algorithm),
        private_pem=row.private_pem,
        public_record=row.public_record,
        status=cast(DkimStatus, row.status),
        created=from_us(row.created_us),
        activated=_opt_dt(row.activated_us),
        retire_after=_opt_dt(row.retire_after_us),
    )


def _domain(row: Row[Any], keys: tuple[DkimKey, ...]) -> Domain:
    return Domain(
        id=row.id,
        project_id=row.project,
        name=row.name,
        verification_token=row.verification_token,
        verified=bool(row.verified),
        created=from_us(row.created_us),
        verified_at=_opt_dt(row.verified_at_us),
        last_checked=_opt_dt(row.last_checked_us),
        dkim_keys=keys,
        check_json=row.check_json,
    )


def _identity(row: Row[Any]) -> AddressIdentity:
    return AddressIdentity(
        project_id=row.project,
        address=row.address,
        created=from_us(row.created_us),
        status=cast(AddressStatus, row.status),
        token_digest=row.token_digest,
        token_expires=_opt_dt(row.token_expires_us),
        verified_at=_opt_dt(row.verified_us),
        last_mail=_opt_dt(row.last_mail_us),
        mails_in_window=row.mails_in_window,
        window_start=_opt_dt(row.window_start_us),
    )


def _identity_state(identity: AddressIdentity) -> dict[str, Any]:
    return {
        "status": identity.status,
        "token_digest": identity.token_digest,
        "token_expires_us": _opt_us(identity.token_expires),
        "verified_us": _opt_us(identity.verified_at),
        "last_mail_us": _opt_us(identity.last_mail),
        "mails_in_window": identity.mails_in_window,
        "window_start_us": _opt_us(identity.window_start),
    }


def _key_values(domain_id: str, key: DkimKey) -> dict[str, Any]:
    return {
        "domain_id": domain_id,
        "selector": key.selector,
        "algorithm": key.algorithm,
        "private_pem": key.private_pem,
        "public_record": key.public_record,
        "status": key.status,
        "created_us": to_us(key.created),
        "activated_us": _opt_us(key.activated),
        "retire_after_us": _opt_us(key.retire_after),
    }


# -- the store --------------------------------------------------------------------------------


class SqlPlatformStore:
    """PlatformStore on SQLAlchemy Core. Synchronous: async callers use worker threads.

    `read_engine` and `write_engine` are built as the message store's are (see engine.py):
    on SQLite the writer begins with BEGIN IMMEDIATE, so a read-then-write transaction never
    fails on a lock upgrade. `owns_engines`: dispose them on `close()`.
    """

    def __init__(
        self, read_engine: Engine, write_engine: Engine, *, owns_engines: bool = True
    ) -> None:
        self._read = read_engine
        self._write = write_engine
        self._owns = owns_engines
        self.backend = write_engine.dialect.name

    def close(self) -> None:
        if self._owns:
            self._read.dispose()
            self._write.dispose()

    # -- transactions --------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (NotFound, InvalidInput, StorageError):
            raise
        except SQLAlchemyError as exc:
            raise StorageError(f"the platform store failed: {type(exc).__name__}") from exc

    def _reading(self, work: Callable[[Connection], T]) -> T:
        with self._errors(), self._read.connect() as conn, conn.begin():
            return work(conn)

    def _writing(
        self,
        work: Callable[[Connection], T],
        duplicate: Callable[[IntegrityError], InvalidInput] | None = None,
    ) -> T:
        """Run `work` in one write transaction. A constraint violation becomes the
        InvalidInput `duplicate` returns (e.g. naming the field already taken)."""
        with self._errors():
            try:
                with self._write.begin() as conn:
                    return work(conn)
            except IntegrityError as exc:
                if duplicate is None:
                    raise InvalidInput("conflicts with an existing record") from exc
                raise duplicate(exc) from exc

    @staticmethod
    def _require_project(conn: Connection, project_id: str) -> None:
        found = conn.execute(select(projects.c.id).where(projects.c.id == project_id)).first()
        if found is None:
            raise NotFound(f"no project {project_id!r}")

    # -- the change counter --------------------------------------------------------------

    def generation(self) -> int:
        """The platform's change counter (raised by the database with every change to
        projects, credentials, API keys, domains, DKIM keys and verified addresses): one primary-key
        read on a pooled driver connection, without SQLAlchemy's transaction handling (a
        single statement is atomic; read at every MAIL, so its cost counts)."""
        driver_error = self._read.dialect.loaded_dbapi.Error
        try:
            with self._errors():
                connection = self._read.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute(_GENERATION)
                row = cursor.fetchone()
                cursor.close()
            except driver_error:
                connection.invalidate()  # perhaps a broken connection: never reuse it
                raise
            finally:
                connection.close()  # back to the pool (which rolls back)
        except driver_error as exc:
            raise StorageError(f"the platform store failed: {type(exc).__name__}") from exc
        value = None if row is None else row[0]
        if value is None:
            raise StorageError("the platform change counter is missing (migration 0007)")
        return int(value)

    # -- projects ------------------------------------------------------------------------

    def create_project(self, project: Project) -> Project:
        def work(conn: Connection) -> Project:
            conn.execute(
                insert(projects).values(
                    id=project.id,
                    name=project.name,
                    mode=project.mode,
                    daily_quota=project.daily_quota,
                    rate_limit=project.rate_limit,
                    created_us=to_us(project.created),
                )
            )
            return project

        return self._writing(
            work, lambda _e: InvalidInput(f"project {project.id!r} already exists", "id")
        )

    def get_project(self, project_id: str) -> Project:
        def work(conn: Connection) -> Project:
            row = conn.execute(select(projects).where(projects.c.id == project_id)).first()
            if row is None:
                raise NotFound(f"no project {project_id!r}")
            return _project(row)

        return self._reading(work)

    def list_projects(self) -> list[Project]:
        return self._reading(
            lambda conn: [
                _project(r) for r in conn.execute(select(projects).order_by(projects.c.id))
            ]
        )

    def update_project(self, project: Project) -> Project:
        def work(conn: Connection) -> Project:
            result = conn.execute(
                update(projects)
                .where(projects.c.id == project.id)
                .values(
                    name=project.name,
                    mode=project.mode,
                    daily_quota=project.daily_quota,
                    rate_limit=project.rate_limit,
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"no project {project.id!r}")
            return project

        return self._writing(work)

    def set_suspension(self, project_id: str, when: datetime | None, reason: str = "") -> Project:
        """Suspend the project's sending at `when` with `reason`, or lift the suspension
        (`when` None); the update raises the change counter in the same transaction."""

        def work(conn: Connection) -> Project:
            result = conn.execute(
                update(projects)
                .where(projects.c.id == project_id)
                .values(
                    suspended_us=_opt_us(when),
                    suspend_reason=(reason or None) if when is not None else None,
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"no project {project_id!r}")
            row = conn.execute(select(projects).where(projects.c.id == project_id)).one()
            return _project(row)

        return self._writing(work)

    def delete_project(self, project_id: str) -> None:
        def work(conn: Connection) -> None:
            self._require_project(conn, project_id)
            # Its queue entries (deleting the project cancels its deliveries: they do not
            # cascade from messages), its messages (raw data and tags cascade), then the
            # project (credentials, keys, domains, addresses and counters cascade); and its
            # event log and suppression list, which no later project of the same id may read.
            conn.execute(delete(queue_entries).where(queue_entries.c.project == project_id))
            conn.execute(delete(events).where(events.c.project == project_id))
            conn.execute(delete(suppressions).where(suppressions.c.scope == project_id))
            delete_attempts_of_project(conn, project_id)
            mine = messages.c.project == project_id
            if self.backend == "sqlite" and fulltext.sqlite_reset_pays(conn, mine):
                # SQLite's full-text index: emptied and the other projects' messages indexed
                # again, cheaper than unindexing most of the messages one by one.
                fulltext.sqlite_delete_resetting(
                    conn, lambda: conn.execute(delete(messages).where(mine))
                )
            else:
                conn.execute(delete(messages).where(mine))
            conn.execute(delete(projects).where(projects.c.id == project_id))

        self._writing(work)

    # -- SMTP and IP credentials ---------------------------------------------------------

    def add_smtp_credential(self, credential: SmtpCredential) -> None:
        def work(conn: Connection) -> None:
            self._require_project(conn, credential.project_id)
            conn.execute(
                insert(smtp_credentials).values(
                    id=credential.id,
                    project=credential.project_id,
                    username=credential.username,
                    secret_digest=credential.secret_digest,
                    allowed_from=json.dumps(list(credential.allowed_from)),
                    created_us=to_us(credential.created),
                    last_used_us=_opt_us(credential.last_used),
                )
            )

        self._writing(
            work,
            lambda _e: InvalidInput(
                f"the username {credential.username!r} is already taken", "username"
            ),
        )

    def smtp_credential_by_username(self, username: str) -> SmtpCredential:
        def work(conn: Connection) -> SmtpCredential:
            row = conn.execute(
                select(smtp_credentials).where(smtp_credentials.c.username == username)
            ).first()
            if row is None:
                raise NotFound("no such SMTP credential")
            return _smtp_credential(row)

        return self._reading(work)

    def smtp_credential_with_project(self, username: str) -> tuple[SmtpCredential, Project]:
        def work(conn: Connection) -> tuple[SmtpCredential, Project]:
            credential_row = conn.execute(
                select(smtp_credentials).where(smtp_credentials.c.username == username)
            ).first()
            if credential_row is None:
                raise NotFound("no such SMTP credential")
            credential = _smtp_credential(credential_row)
            project_row = conn.execute(
                select(projects).where(projects.c.id == credential.project_id)
            ).first()
            if project_row is None:
                raise NotFound(f"no project {credential.project_id!r}")
            return credential, _project(project_row)

        return self._reading(work)

    def list_smtp_credentials(self, project_id: str) -> list[SmtpCredential]:
        return self._reading(
            lambda conn: [
                _smtp_credential(r)
                for r in conn.execute(
                    select(smtp_credentials)
                    .where(smtp_credentials.c.project == project_id)
                    .order_by(smtp_credentials.c.username)
                )
            ]
        )

    def delete_smtp_credential(self, credential_id: str) -> None:
        def work(conn: Connection) -> None:
            result = conn.execute(
                delete(smtp_credentials).where(smtp_credentials.c.id == credential_id)
            )
            if result.rowcount == 0:
                raise NotFound(f"no SMTP credential {credential_id!r}")

        self._writing(work)

    def touch_smtp_credential(self, credential_id: str, when: datetime) -> None:
        self._writing(
            lambda conn: conn.execute(
                update(smtp_credentials)
                .where(smtp_credentials.c.id == credential_id)
                .values(last_used_us=to_us(when))
            )
        )

    def add_ip_credential(self, credential: IpCredential) -> None:
        def work(conn: Connection) -> None:
            self._require_project(conn, credential.project_id)
            conn.execute(
                insert(ip_credentials).values(
                    id=credential.id,
                    project=credential.project_id,
                    network=credential.network,
                    created_us=to_us(credential.created),
                )
            )

        self._writing(
            work,
            lambda _e: InvalidInput(
                f"the network {credential.network} already has an IP credential", "network"
            ),
        )

    def list_ip_credentials(self, project_id: str | None = None) -> list[IpCredential]:
        query = select(ip_credentials).order_by(ip_credentials.c.project, ip_credentials.c.network)
        if project_id is not None:
            query = query.where(ip_credentials.c.project == project_id)
        return self._reading(lambda conn: [_ip_credential(r) for r in conn.execute(query)])

    def delete_ip_credential(self, credential_id: str) -> None:
        def work(conn: Connection) -> None:
            result = conn.execute(
                delete(ip_credentials).where(ip_credentials.c.id == credential_id)
            )
            if result.rowcount == 0:
                raise NotFound(f"no IP credential {credential_id!r}")

        self._writing(work)

    # -- API keys ------------------------------------------------------------------------

    def add_api_key(self, key: ApiKey) -> None:
        def work(conn: Connection) -> None:
            self._require_project(conn, key.project_id)
            conn.execute(
                insert(api_keys).values(
                    id=key.id,
                    project=key.project_id,
                    name=key.name,
                    scopes=json.dumps(list(key.scopes)),
                    digest=key.digest,
                    created_us=to_us(key.created),
                    last_used_us=_opt_us(key.last_used),
                )
            )

        self._writing(work, lambda _e: InvalidInput(f"API key id {key.id!r} exists", "id"))

    def api_key(self, key_id: str) -> ApiKey:
        def work(conn: Connection) -> ApiKey:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
            if row is None:
                raise NotFound("no such API key")
            return _api_key(row)

        return self._reading(work)

    def list_api_keys(self, project_id: str) -> list[ApiKey]:
        return self._reading(
            lambda conn: [
                _api_key(r)
                for r in conn.execute(
                    select(api_keys)
                    .where(api_keys.c.project == project_id)
                    .order_by(api_keys.c.name, api_keys.c.id)
                )
            ]
        )

    def delete_api_key(self, key_id: str) -> None:
        def work(conn: Connection) -> None:
            result = conn.execute(delete(api_keys).where(api_keys.c.id == key_id))
            if result.rowcount == 0:
                raise NotFound(f"no API key {key_id!r}")

        self._writing(work)

    def touch_api_key(self, key_id: str, when: datetime) -> None:
        self._writing(
            lambda conn: conn.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(last_used_us=to_us(when))
            )
        )

    # -- domains and DKIM keys -----------------------------------------------------------

    def _keys_of(self, conn: Connection, domain_ids: list[str]) -> dict[str, list[DkimKey]]:
        out: dict[str, list[DkimKey]] = {i: [] for i in domain_ids}
        if not domain_ids:
            return out
        rows = conn.execute(
            select(dkim_keys)
            .where(dkim_keys.c.domain_id.in_(domain_ids))
            .order_by(dkim_keys.c.created_us, dkim_keys.c.selector)
        )
        for row in rows:
            out[row.domain_id].append(_dkim_key(row))
        return out

    @staticmethod
    def _identity_room(conn: Connection, project_id: str, limit: int | None, field: str) -> None:
        """LimitExceeded when the project has `limit` identities (domains and addresses)."""
        if limit is None:
            return
        count = (
            conn.execute(
                select(func.count()).select_from(domains).where(domains.c.project == project_id)
            ).scalar_one()
            + conn.execute(
                select(func.count())
                .select_from(verified_addresses)
                .where(verified_addresses.c.project == project_id)
            ).scalar_one()
        )
        if count >= limit:
            raise LimitExceeded(
                f"a project has at most {limit} email identities, domains and addresses "
                "together (max_identities)",
                field,
            )

    def add_domain(self, domain: Domain, *, limit: int | None = None) -> None:
        """Store a new domain; LimitExceeded when the project has `limit` identities."""

        def work(conn: Connection) -> None:
            self._require_project(conn, domain.project_id)
            self._identity_room(conn, domain.project_id, limit, "domain")
            conn.execute(
                insert(domains).values(
                    id=domain.id,
                    project=domain.project_id,
                    name=domain.name,
                    verification_token=domain.verification_token,
                    verified=domain.verified,
                    created_us=to_us(domain.created),
                    verified_at_us=_opt_us(domain.verified_at),
                    last_checked_us=_opt_us(domain.last_checked),
                    check_json=domain.check_json,
                )
            )
            if domain.dkim_keys:
                conn.execute(
                    insert(dkim_keys), [_key_values(domain.id, k) for k in domain.dkim_keys]
                )

        self._writing(
            work,
            lambda _e: InvalidInput(
                f"project {domain.project_id!r} already has the domain {domain.name}", "domain"
            ),
        )

    def get_domain(self, project_id: str, name: str) -> Domain:
        def work(conn: Connection) -> Domain:
            row = conn.execute(
                select(domains).where(domains.c.project == project_id, domains.c.name == name)
            ).first()
            if row is None:
                raise NotFound(f"project {project_id!r} has no domain {name!r}")
            return _domain(row, tuple(self._keys_of(conn, [row.id])[row.id]))

        return self._reading(work)

    def list_domains(self, project_id: str | None = None) -> list[Domain]:
        def work(conn: Connection) -> list[Domain]:
            query = select(domains).order_by(domains.c.project, domains.c.name)
            if project_id is not None:
                query = query.where(domains.c.project == project_id)
            rows = list(conn.execute(query))
            keys = self._keys_of(conn, [r.id for r in rows])
            return [_domain(r, tuple(keys[r.id])) for r in rows]

        return self._reading(work)

    def save_domain(self, domain: Domain) -> None:
        def work(conn: Connection) -> None:
            result = conn.execute(
                update(domains)
                .where(domains.c.id == domain.id)
                .values(
                    verified=domain.verified,
                    verified_at_us=_opt_us(domain.verified_at),
                    last_checked_us=_opt_us(domain.last_checked),
                    check_json=domain.check_json,
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"project {domain.project_id!r} has no domain {domain.name!r}")
            conn.execute(delete(dkim_keys).where(dkim_keys.c.domain_id == domain.id))
            if domain.dkim_keys:
                conn.execute(
                    insert(dkim_keys), [_key_values(domain.id, k) for k in domain.dkim_keys]
                )

        self._writing(
            work, lambda _e: InvalidInput("two DKIM keys with the same selector", "selector")
        )

    def delete_domain(self, project_id: str, name: str) -> None:
        def work(conn: Connection) -> None:
            result = conn.execute(
                delete(domains).where(domains.c.project == project_id, domains.c.name == name)
            )
            if result.rowcount == 0:
                raise NotFound(f"project {project_id!r} has no domain {name!r}")

        self._writing(work)

    # -- address identities --------------------------------------------------------------

    def add_address_identity(self, identity: AddressIdentity, *, limit: int | None = None) -> None:
        """Store a new address identity; LimitExceeded when the project has `limit`
        identities (domains and addresses)."""

        def work(conn: Connection) -> None:
            self._require_project(conn, identity.project_id)
            self._identity_room(conn, identity.project_id, limit, "address")
            conn.execute(
                insert(verified_addresses).values(
                    project=identity.project_id,
                    address=identity.address,
                    created_us=to_us(identity.created),
                    **_identity_state(identity),
                )
            )

        self._writing(
            work,
            lambda _e: InvalidInput(
                f"project {identity.project_id!r} has {identity.address} already", "address"
            ),
        )

    def get_address_identity(self, project_id: str, address: str) -> AddressIdentity:
        def work(conn: Connection) -> AddressIdentity:
            row = conn.execute(
                select(verified_addresses).where(
                    verified_addresses.c.project == project_id,
                    verified_addresses.c.address == address,
                )
            ).first()
            if row is None:
                raise NotFound(f"project {project_id!r} has no address {address!r}")
            return _identity(row)

        return self._reading(work)

    def address_identity_by_token(self, token_digest: str) -> AddressIdentity:
        def work(conn: Connection) -> AddressIdentity:
            row = conn.execute(
                select(verified_addresses).where(verified_addresses.c.token_digest == token_digest)
            ).first()
            if row is None:
                raise NotFound("no address identity has this token")
            return _identity(row)

        return self._reading(work)

    def list_address_identities(self, project_id: str) -> list[AddressIdentity]:
        return self._reading(
            lambda conn: [
                _identity(r)
                for r in conn.execute(
                    select(verified_addresses)
                    .where(verified_addresses.c.project == project_id)
                    .order_by(verified_addresses.c.address)
                )
            ]
        )

    def save_address_identity(self, identity: AddressIdentity) -> None:
        def work(conn: Connection) -> None:
            result = conn.execute(
                update(verified_addresses)
                .where(
                    verified_addresses.c.project == identity.project_id,
                    verified_addresses.c.address == identity.address,
                )
                .values(**_identity_state(identity))
            )
            if result.rowcount == 0:
                raise NotFound(
                    f"project {identity.project_id!r} has no address {identity.address!r}"
                )

        self._writing(work)

    def confirm_address_identity(
        self, project_id: str, address: str, token_digest: str, now: datetime
    ) -> bool:
        def work(conn: Connection) -> bool:
            result = conn.execute(
                update(verified_addresses)
                .where(
                    verified_addresses.c.project == project_id,
                    verified_addresses.c.address == address,
                    verified_addresses.c.token_digest == token_digest,
                    verified_addresses.c.status == "pending",
                    verified_addresses.c.token_expires_us > to_us(now),
                )
                .values(status="verified", verified_us=to_us(now))
            )
            return bool(result.rowcount)

        return self._writing(work)

    def delete_address_identity(self, project_id: str, address: str) -> None:
        def work(conn: Connection) -> None:
            result = conn.execute(
                delete(verified_addresses).where(
                    verified_addresses.c.project == project_id,
                    verified_addresses.c.address == address,
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"project {project_id!r} has no address {address!r}")

        self._writing(work)

    # -- admin users ---------------------------------------------------------------------

    def add_admin(self, user: AdminUser) -> None:
        self._writing(
            lambda conn: conn.execute(
                insert(admin_users).values(
                    id=user.id,
                    username=user.username,
                    password_hash=user.password_hash,
                    created_us=to_us(user.created),
                )
            ),
            lambda _e: InvalidInput(f"the admin {user.username!r} already exists", "username"),
        )

    def admin_by_username(self, username: str) -> AdminUser:
        def work(conn: Connection) -> AdminUser:
            row = conn.execute(
                select(admin_users).where(admin_users.c.username == username)
            ).first()
            if row is None:
                raise NotFound(f"no admin {username!r}")
            return AdminUser(row.id, row.username, row.password_hash, from_us(row.created_us))

        return self._reading(work)

    def list_admins(self) -> list[AdminUser]:
        return self._reading(
            lambda conn: [
                AdminUser(r.id, r.username, r.password_hash, from_us(r.created_us))
                for r in conn.execute(select(admin_users).order_by(admin_users.c.username))
            ]
        )

    def delete_admin(self, username: str) -> None:
        def work(conn: Connection) -> None:
            result = conn.execute(delete(admin_users).where(admin_users.c.username == username))
            if result.rowcount == 0:
                raise NotFound(f"no admin {username!r}")

        self._writing(work)

    # -- quotas --------------------------------------------------------------------------

    def count_sends(self, project_id: str, since: datetime) -> int:
        """Recipients recorded in the second of `since` and after (a partial first second
        counts whole: quotas err on the safe side)."""
        first = to_us(since) // 1_000_000

        def work(conn: Connection) -> int:
            total = conn.execute(
                select(func.coalesce(func.sum(send_counts.c.count), 0)).where(
                    send_counts.c.project == project_id, send_counts.c.bucket >= first
                )
            ).scalar_one()
            return int(total)

        return self._reading(work)
