"""MTA-STS policies and TLS-RPT counts (delivery/mta_sts.py, delivery/tls_reports.py).

- `mta_sts_policies`: one row per destination domain whose policy was fetched: the TXT
  record's id, the policy's text and when it was fetched (the policy is parsed again when
  loaded), so that policies survive restarts (RFC 8461 §5.1: a cached policy applies when no
  live one can be had).
- `tls_report_counts`: sessions per UTC day, policy domain, policy (type and id), MX host,
  our address, the receiver's and result (`success` or an RFC 8460 result type), added to by
  the delivery worker's flushes.
- `tls_rpt_domains`: the `rua` URIs each counted domain published, as last seen.

They hold no project's data (destination domains only), so they are the server's, not a
project's: the API shows them to admins (api/tls_reports.py).
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, String, Table, Text, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from postroom.core.tls_reports import Session
from postroom.storage import codec
from postroom.storage.schema import metadata
from postroom.storage.sql_part import SqlPart

mta_sts_policies = Table(
    "mta_sts_policies",
    metadata,
    Column("domain", String(253), primary_key=True),
    Column("policy_id", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("fetched_us", BigInteger, nullable=False),
)

tls_report_counts = Table(
    "tls_report_counts",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("domain", String(253), primary_key=True),
    Column("policy_type", String(24), primary_key=True),
    Column("policy_id", String(32), primary_key=True),
    Column("mx_host", String(253), primary_key=True),
    Column("sending_ip", String(64), primary_key=True),
    Column("receiving_ip", String(64), primary_key=True),
    Column("result_type", String(40), primary_key=True),
    Column("sessions", BigInteger, nullable=False),
)

tls_rpt_domains = Table(
    "tls_rpt_domains",
    metadata,
    Column("domain", String(253), primary_key=True),
    Column("rua", Text, nullable=False),  # JSON list of URIs
)

_p = mta_sts_policies.c
_c = tls_report_counts.c
_KEY = ("day", "domain", "policy_type", "policy_id", "mx_host", "sending_ip", "receiving_ip")


class SqlTlsReports(SqlPart):
    """The policy cache (`delivery.mta_sts.PolicyStore`) and the counts
    (`delivery.tls_reports.CountStore`) in the store's database."""

    part = "the TLS policy store"

    def __init__(
        self,
        read_engine: Engine,
        write_engine: Engine,
        write_lock: contextlib.AbstractContextManager[Any] | None = None,
    ) -> None:
        super().__init__(read_engine, write_engine, write_lock)
        dialect = write_engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    # MTA-STS policies ------------------------------------------------------------------------

    def load(self) -> list[tuple[str, str, str, datetime]]:
        stmt = select(_p.domain, _p.policy_id, _p.text, _p.fetched_us)

        def work(conn: Connection) -> list[tuple[str, str, str, datetime]]:
            return [
                (r.domain, r.policy_id, r.text, codec.from_micros(r.fetched_us))
                for r in conn.execute(stmt)
            ]

        return self._run(self._read, work)

    def save(self, domain: str, policy_id: str, text: str, fetched: datetime) -> None:
        stmt = self._insert(mta_sts_policies).values(
            domain=domain, policy_id=policy_id, text=text, fetched_us=codec.to_micros(fetched)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[_p.domain],
            set_={
                "policy_id": stmt.excluded.policy_id,
                "text": stmt.excluded.text,
                "fetched_us": stmt.excluded.fetched_us,
            },
        )
        self._run(self._write, lambda conn: conn.execute(stmt))

    def policy(self, domain: str) -> tuple[str, str, datetime] | None:
        """The stored policy of `domain`: (id, text, fetched)."""
        stmt = select(_p.policy_id, _p.text, _p.fetched_us).where(_p.domain == domain)

        def work(conn: Connection) -> tuple[str, str, datetime] | None:
            found = conn.execute(stmt).first()
            if found is None:
                return None
            return found.policy_id, found.text, codec.from_micros(found.fetched_us)

        return self._run(self._read, work)

    # TLS-RPT counts ---------------------------------------------------------------------------

    def add_counts(
        self, counts: list[tuple[Session, int]], rua: dict[str, tuple[str, ...]]
    ) -> None:
        rows = [
            {
                **{name: getattr(session, name) for name in _KEY},
                "result_type": session.result_type,
                "sessions": count,
            }
            for session, count in counts
        ]

        def work(conn: Connection) -> None:
            if rows:
                stmt = self._insert(tls_report_counts)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[*(_c[name] for name in _KEY), _c.result_type],
                    set_={"sessions": _c.sessions + stmt.excluded.sessions},
                )
                conn.execute(stmt, rows)
            if rua:
                upsert = self._insert(tls_rpt_domains)
                upsert = upsert.on_conflict_do_update(
                    index_elements=[tls_rpt_domains.c.domain], set_={"rua": upsert.excluded.rua}
                )
                conn.execute(
                    upsert, [{"domain": d, "rua": json.dumps(list(u))} for d, u in rua.items()]
                )

        self._run(self._write, work)

    def summary(
        self, first: str, last: str, domain: str | None = None
    ) -> list[tuple[str, str, str, int]]:
        """(day, domain, result type, sessions) for the days from `first` to `last`
        (YYYY-MM-DD, inclusive), optionally of one domain."""
        stmt = (
            select(_c.day, _c.domain, _c.result_type, func.sum(_c.sessions).label("sessions"))
            .where(_c.day >= first, _c.day <= last)
            .group_by(_c.day, _c.domain, _c.result_type)
            .order_by(_c.day, _c.domain, _c.result_type)
        )
        if domain is not None:
            stmt = stmt.where(_c.domain == domain)

        def work(conn: Connection) -> list[tuple[str, str, str, int]]:
            return [(r.day, r.domain, r.result_type, int(r.sessions)) for r in conn.execute(stmt)]

        return self._run(self._read, work)

    def sessions(self, domain: str, day: str) -> list[tuple[Session, int]]:
        """Every count of `domain` on `day`."""
        stmt = select(tls_report_counts).where(_c.domain == domain, _c.day == day)

        def work(conn: Connection) -> list[tuple[Session, int]]:
            return [
                (
                    Session(
                        r.day,
                        r.domain,
                        r.policy_type,
                        r.policy_id,
                        r.mx_host,
                        r.sending_ip,
                        r.receiving_ip,
                        r.result_type,
                    ),
                    int(r.sessions),
                )
                for r in conn.execute(stmt)
            ]

        return self._run(self._read, work)

    def rua(self, domains: list[str]) -> dict[str, list[str]]:
        """The `rua` URIs last seen of these domains."""
        if not domains:
            return {}
        table = tls_rpt_domains.c
        stmt = select(table.domain, table.rua).where(table.domain.in_(domains))

        def work(conn: Connection) -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for row in conn.execute(stmt):
                try:
                    found[row.domain] = [str(u) for u in json.loads(row.rua)]
                except (ValueError, TypeError):
                    found[row.domain] = []
            return found

        return self._run(self._read, work)
