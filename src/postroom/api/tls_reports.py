"""TLS reporting in `/api/v2` (RFC 8460; delivery/tls_reports.py):

    GET /api/v2/tls-reports?from=YYYY-MM-DD&to=YYYY-MM-DD&domain=D
        per policy domain and UTC day: sessions successful and failed, failures per result
        type, and the domain's `rua` (where its reports go); default: the last 7 days
    GET /api/v2/tls-reports/{domain}/{date}
        the RFC 8460 report (JSON, application/tlsrpt+json) of that domain's sessions that day

The counts are the server's, across every project (they name recipient domains), so they are
for admins (and open mode on loopback): an API key, which stands for one project, gets 403.
Sending the reports to the `rua` addresses is not done yet.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postroom.api.auth import principal_of
from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput, NotFound
from postroom.core.tls_reports import SUCCESS
from postroom.delivery.mta_sts import PolicyError, parse_policy
from postroom.delivery.tls_reports import build_report
from postroom.storage.tls_reports import SqlTlsReports

PREFIX = "/api/v2"
DEFAULT_DAYS = 7
MAX_DAYS = 366


def _day(value: str | None, field: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a date, YYYY-MM-DD", field) from None


def _key_refused(request: Request) -> Response | None:
    if principal_of(request).kind == "key":
        return JSONResponse(
            {
                "Error": "TLS reports count the mail of every project: they need an admin "
                "login, not an API key",
                "Field": "Authorization",
            },
            status_code=403,
        )
    return None


def routes(
    reports: SqlTlsReports, clock: Clock, organization: str, contact: str
) -> list[BaseRoute]:
    async def summary(request: Request) -> Response:
        refused = _key_refused(request)
        if refused is not None:
            return refused
        query = request.query_params
        unknown = sorted(set(query) - {"from", "to", "domain"})
        if unknown:
            raise InvalidInput(f"unknown parameter {unknown[0]!r}", unknown[0])
        today = clock.now().date()
        last = _day(query.get("to"), "to") or today
        first = _day(query.get("from"), "from") or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise InvalidInput("from must not be after to", "from")
        if (last - first).days >= MAX_DAYS:
            raise InvalidInput(f"at most {MAX_DAYS} days at once", "from")
        domain = (query.get("domain") or "").strip().lower().rstrip(".") or None
        rows = await asyncio.to_thread(reports.summary, first.isoformat(), last.isoformat(), domain)
        domains: dict[str, dict[str, dict[str, Any]]] = {}
        for day, name, result, sessions in rows:
            entry = domains.setdefault(name, {}).setdefault(
                day, {"date": day, "successful": 0, "failed": 0, "failures": {}}
            )
            if result == SUCCESS:
                entry["successful"] += sessions
            else:
                entry["failed"] += sessions
                entry["failures"][result] = entry["failures"].get(result, 0) + sessions
        rua = await asyncio.to_thread(reports.rua, sorted(domains))
        return JSONResponse(
            {
                "from": first.isoformat(),
                "to": last.isoformat(),
                "domains": [
                    {"domain": name, "rua": rua.get(name, []), "days": list(days.values())}
                    for name, days in sorted(domains.items())
                ],
            }
        )

    async def report(request: Request) -> Response:
        refused = _key_refused(request)
        if refused is not None:
            return refused
        domain = request.path_params["domain"].strip().lower().rstrip(".")
        day = _day(request.path_params["date"], "date")
        assert day is not None
        sessions = await asyncio.to_thread(reports.sessions, domain, day.isoformat())
        if not sessions:
            raise NotFound(f"no TLS sessions to {domain} were counted on {day.isoformat()}")
        stored = await asyncio.to_thread(reports.policy, domain)
        policy = None
        if stored is not None:
            try:
                policy = parse_policy(domain, *stored)
            except PolicyError:
                policy = None
        body = build_report(
            domain,
            day,
            sessions,
            policy,
            organization=organization,
            contact=contact,
            report_id=f"{day.isoformat()}_{domain}@{organization}",
        )
        return JSONResponse(body, media_type="application/tlsrpt+json")

    return [
        Route(f"{PREFIX}/tls-reports", summary, methods=["GET"]),
        Route(f"{PREFIX}/tls-reports/{{domain}}/{{date}}", report, methods=["GET"]),
    ]
