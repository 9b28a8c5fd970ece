"""A parsed report as event-log entries: bounces with the SES fields, complaints with the
feedback type, nothing for delays and auto-replies; a VERP recipient narrows the lines."""

from __future__ import annotations

from datetime import UTC, datetime

from postroom.bounces.parse import parse_report
from postroom.bounces.report_events import report_events
from tests.unit.bounces.test_parse import ARF, DSN, VACATION

WHEN = datetime(2026, 12, 3, tzinfo=UTC)


def test_a_dsn_gives_a_bounce_per_failed_recipient() -> None:
    report = parse_report(DSN)
    assert report is not None
    (event,) = report_events(report, "acme", WHEN, "m1")  # the delayed one makes none
    assert (event.type, event.project, event.message_id, event.recipient) == (
        "bounce",
        "acme",
        "m1",
        "gone@example.net",
    )
    assert event.detail["hard"] is True and event.detail["reason"] == "userunknown"
    assert (event.detail["bounceType"], event.detail["bounceSubType"]) == ("Permanent", "NoEmail")
    assert (event.detail["code"], event.detail["enhanced"]) == (550, "5.1.1")
    assert event.detail["async"] is True
    narrowed = report_events(report, "acme", WHEN, "m1", recipient="full@example.net")
    assert narrowed == []  # the VERP recipient's line is a delay


def test_a_complaint_and_an_autoreply() -> None:
    report = parse_report(ARF)
    assert report is not None
    (event,) = report_events(report, "acme", WHEN, "m2", recipient="Reader@isp.example")
    assert (event.type, event.recipient, event.detail["feedback_type"]) == (
        "complaint",
        "Reader@isp.example",
        "abuse",
    )
    assert event.detail["user_agent"] == "SomeISP-FBL/2.0"
    vacation = parse_report(VACATION)
    assert vacation is not None and report_events(vacation, "acme", WHEN) == []
