"""The MTA-STS policy cache and the TLS-RPT counts on both databases: a policy saved again
replaces the old one, counts of the same key add up, `rua` is the last seen."""

from __future__ import annotations

from datetime import UTC, datetime

from postroom.core.tls_reports import Session
from postroom.storage import SqlMessageStore


def session(day: str, result: str, domain: str = "example.net") -> Session:
    return Session(day, domain, "sts", "one", "mx.example.net", "192.0.2.1", "198.51.100.7", result)


async def test_policies_and_counts(store: SqlMessageStore) -> None:
    reports = store.tls_reports
    first = datetime(2026, 12, 1, tzinfo=UTC)
    reports.save("example.net", "one", "version: STSv1\nmode: testing\n", first)
    reports.save("example.net", "two", "version: STSv1\nmode: enforce\n", first.replace(day=2))
    reports.save("other.test", "x", "version: STSv1\nmode: none\n", first)
    assert sorted(reports.load()) == [
        ("example.net", "two", "version: STSv1\nmode: enforce\n", first.replace(day=2)),
        ("other.test", "x", "version: STSv1\nmode: none\n", first),
    ]
    assert reports.policy("example.net") == (
        "two",
        "version: STSv1\nmode: enforce\n",
        first.replace(day=2),
    )
    assert reports.policy("nowhere.test") is None

    reports.add_counts(
        [(session("2026-12-03", "success"), 5), (session("2026-12-03", "certificate-expired"), 1)],
        {"example.net": ("mailto:a@example.net",)},
    )
    reports.add_counts(
        [(session("2026-12-03", "success"), 2), (session("2026-12-04", "success"), 1)],
        {"example.net": ("mailto:b@example.net",)},
    )
    assert reports.summary("2026-12-03", "2026-12-03") == [
        ("2026-12-03", "example.net", "certificate-expired", 1),
        ("2026-12-03", "example.net", "success", 7),
    ]
    assert len(reports.summary("2026-12-01", "2026-12-31", "example.net")) == 3
    assert reports.summary("2026-12-01", "2026-12-31", "other.test") == []
    assert sorted(c for _, c in reports.sessions("example.net", "2026-12-03")) == [1, 7]
    assert reports.rua(["example.net", "other.test"]) == {"example.net": ["mailto:b@example.net"]}
