"""`GET /api/v2/tls-reports` and `GET /api/v2/tls-reports/{domain}/{date}` on a real server
(httpx over loopback): the TLS-RPT counts per domain and day, and the RFC 8460 report; for an
admin only (an API key stands for one project, the counts are every project's)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from postroom.core.clock import FakeClock
from postroom.core.tls_reports import Session
from postroom.storage.store import SqlMessageStore
from tests.harness import ServerThread, make_config
from tests.integration.auth.conftest import Browser, create_admin, create_key

POLICY = "version: STSv1\nmode: enforce\nmx: mx.example.net\nmax_age: 86400\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    config = make_config(tmp_path / "data")
    create_admin(config)
    running = ServerThread(config, FakeClock(datetime(2026, 12, 3, 15, tzinfo=UTC))).start()
    try:
        yield running
    finally:
        running.stop()


def test_counts_and_reports(server: ServerThread) -> None:
    store = server.app.store
    assert isinstance(store, SqlMessageStore)

    def session(day: str, result: str, domain: str = "example.net") -> Session:
        policy_id = "one" if domain == "example.net" else ""
        kind = "sts" if policy_id else "no-policy-found"
        return Session(
            day, domain, kind, policy_id, "mx.example.net", "192.0.2.1", "127.0.0.1", result
        )

    store.tls_reports.save("example.net", "one", POLICY, datetime(2026, 12, 3, tzinfo=UTC))
    store.tls_reports.add_counts(
        [
            (session("2026-12-03", "success"), 7),
            (session("2026-12-03", "certificate-expired"), 2),
            (session("2026-12-01", "success"), 1),
            (session("2026-12-03", "success", "other.test"), 4),
        ],
        {"example.net": ("mailto:tlsrpt@example.net",), "other.test": ("https://r.other.test/",)},
    )
    store.tls_reports.add_counts([(session("2026-12-03", "success"), 3)], {})  # adds up

    browser = Browser(server.base_url)
    try:
        assert browser.client.get("/api/v2/tls-reports").status_code == 401
        browser.login()
        got = browser.client.get("/api/v2/tls-reports").json()  # the last 7 days by default
        assert (got["from"], got["to"]) == ("2026-11-27", "2026-12-03")
        assert got["domains"] == [
            {
                "domain": "example.net",
                "rua": ["mailto:tlsrpt@example.net"],
                "days": [
                    {"date": "2026-12-01", "successful": 1, "failed": 0, "failures": {}},
                    {
                        "date": "2026-12-03",
                        "successful": 10,
                        "failed": 2,
                        "failures": {"certificate-expired": 2},
                    },
                ],
            },
            {
                "domain": "other.test",
                "rua": ["https://r.other.test/"],
                "days": [{"date": "2026-12-03", "successful": 4, "failed": 0, "failures": {}}],
            },
        ]
        one = browser.client.get(
            "/api/v2/tls-reports", params={"from": "2026-12-02", "domain": "example.net"}
        ).json()
        assert [d["domain"] for d in one["domains"]] == ["example.net"]
        assert [d["date"] for d in one["domains"][0]["days"]] == ["2026-12-03"]

        response = browser.client.get("/api/v2/tls-reports/example.net/2026-12-03")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/tlsrpt+json")
        report = response.json()
        assert report["organization-name"] == "postroom.test"
        assert report["contact-info"] == "postroom@postroom.test"
        assert report["date-range"]["start-datetime"] == "2026-12-03T00:00:00Z"
        (policy,) = report["policies"]
        assert policy["policy"]["policy-string"] == [
            "version: STSv1",
            "mode: enforce",
            "mx: mx.example.net",
            "max_age: 86400",
        ]
        assert policy["summary"] == {
            "total-successful-session-count": 10,
            "total-failure-session-count": 2,
        }
        assert policy["failure-details"][0]["result-type"] == "certificate-expired"

        missing = browser.client.get("/api/v2/tls-reports/example.net/2026-12-02")
        assert missing.status_code == 404
        for params, field in (
            ({"from": "yesterday"}, "from"),
            ({"to": "2026-13-01"}, "to"),
            ({"from": "2026-12-04", "to": "2026-12-03"}, "from"),
            ({"from": "2024-01-01"}, "from"),
            ({"since": "2026-12-01"}, "since"),
        ):
            bad = browser.client.get("/api/v2/tls-reports", params=params)
            assert (bad.status_code, bad.json()["Field"]) == (400, field)
        bad_day = browser.client.get("/api/v2/tls-reports/example.net/soon")
        assert (bad_day.status_code, bad_day.json()["Field"]) == (400, "date")
    finally:
        browser.close()

    key = create_key(server.app.config, "acme", "manage", "read", "send")
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key.token}"}
    ) as client:
        for path in ("/api/v2/tls-reports", "/api/v2/tls-reports/example.net/2026-12-03"):
            refused = client.get(path)
            assert refused.status_code == 403
            assert "admin login" in refused.json()["Error"]


@pytest.mark.parametrize("on", [True, False])
def test_the_server_applies_policies_and_counts_when_configured(tmp_path: Path, on: bool) -> None:
    config = make_config(
        tmp_path / "data",
        delivery=True,
        mta_sts=on,
        tls_rpt=on,
        delivery_tls_policy="bank.example=verify",
    )
    server = ServerThread(config, FakeClock()).start()
    try:
        delivery = server.app.delivery
        assert delivery is not None
        assert (delivery.mta_sts is not None, delivery.tls_reports is not None) == (on, on)
        assert ("tls-report-counts" in server.app.jobs.names) == on
        assert dict(delivery.settings.tls_policies) == {"bank.example": "verify"}
    finally:
        server.stop()
