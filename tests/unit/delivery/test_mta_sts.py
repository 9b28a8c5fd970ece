"""MTA-STS records and policies (RFC 8461 §3.1, §3.2, §4.1) and TLS-RPT records and reports
(RFC 8460 §3, §4)."""

from __future__ import annotations

import ssl
from datetime import UTC, date, datetime

import pytest

from postroom.core.tls_reports import Session
from postroom.delivery.mta_sts import PolicyError, parse_policy, parse_record, tls_result_type
from postroom.delivery.tls_reports import build_report, parse_tlsrpt

WHEN = datetime(2026, 12, 3, 12, tzinfo=UTC)
POLICY = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\n"


def test_the_record_gives_its_id() -> None:
    assert parse_record(["v=STSv1; id=20261203T1200;"]) == "20261203T1200"
    assert parse_record(["v=STSv1;id=abc"]) == "abc"
    assert parse_record(["some other text", "v=STSv1; id=abc"]) == "abc"


@pytest.mark.parametrize(
    "texts",
    [
        [],
        ["v=spf1 -all"],
        ["v=STSv1; id=a", "v=STSv1; id=b"],  # two records: no policy
        ["v=STSv1;"],  # no id
        ["v=STSv1; id=has-dash"],
        ["v=STSv1; id=" + "a" * 33],
        ["v=STSv2; id=abc"],
        ["id=abc; v=STSv1"],  # v= must come first
    ],
)
def test_records_that_are_no_policy(texts: list[str]) -> None:
    assert parse_record(texts) is None


def test_a_policy_is_parsed_and_matches_its_hosts() -> None:
    policy = parse_policy("example.com", "abc", POLICY, WHEN)
    assert (policy.mode, policy.max_age) == ("enforce", 86400)
    assert policy.mx == ("mail.example.com", "*.example.net")
    assert policy.matches("mail.example.com") and policy.matches("MAIL.example.com.")
    assert policy.matches("mx1.example.net")
    assert not policy.matches("example.net")  # the wildcard needs one label
    assert not policy.matches("a.b.example.net")  # and only one
    assert not policy.matches("mail.example.com.evil.test")
    assert not policy.matches("xmail.example.com")
    assert policy.expires == datetime(2026, 12, 4, 12, tzinfo=UTC)
    assert policy.lines()[0] == "version: STSv1"


def test_lf_line_endings_and_unknown_keys_are_accepted() -> None:
    text = "version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 0\nextension: yes\n"
    policy = parse_policy("example.org", "x", text, WHEN)
    assert policy.mode == "testing" and policy.max_age == 0


def test_a_none_policy_needs_no_mx() -> None:
    assert parse_policy("e.test", "x", "version: STSv1\nmode: none\nmax_age: 60\n", WHEN).mx == ()


@pytest.mark.parametrize(
    "text",
    [
        "mode: enforce\nmx: a.test\nmax_age: 1\n",  # no version
        "version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n",
        "version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\n",  # enforce without mx
        "version: STSv1\nmode: enforce\nmx: a.test\n",  # no max_age
        "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 31557601\n",
        "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n",
        "version: STSv1\nmode: enforce\nmx: a.*.test\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 1\nnot a line\n",
        "<html>not a policy</html>",
    ],
)
def test_invalid_policies(text: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy("e.test", "x", text, WHEN)
    assert caught.value.result_type == "sts-policy-invalid"


def test_tls_failures_in_rfc_8460_words() -> None:
    assert tls_result_type("starttls", None) == "starttls-not-supported"
    assert tls_result_type("greeting", None) == "validation-failure"
    mismatch = ssl.SSLCertVerificationError("certificate verify failed: Hostname mismatch")
    mismatch.verify_code = 62
    assert tls_result_type("starttls", mismatch) == "certificate-host-mismatch"
    expired = ssl.SSLCertVerificationError("certificate verify failed: certificate has expired")
    expired.verify_code = 10
    assert tls_result_type("starttls", expired) == "certificate-expired"
    untrusted = ssl.SSLCertVerificationError("certificate verify failed: self-signed certificate")
    untrusted.verify_code = 18
    assert tls_result_type("starttls", untrusted) == "certificate-not-trusted"
    assert tls_result_type("starttls", ssl.SSLError("handshake failure")) == "validation-failure"


def test_tlsrpt_records() -> None:
    assert parse_tlsrpt(["v=TLSRPTv1; rua=mailto:tls@example.com"]) == ("mailto:tls@example.com",)
    assert parse_tlsrpt(["v=TLSRPTv1;rua=mailto:a@e.test,https://r.e.test/tls"]) == (
        "mailto:a@e.test",
        "https://r.e.test/tls",
    )
    assert parse_tlsrpt([]) is None
    assert parse_tlsrpt(["v=TLSRPTv1; rua=ftp://x"]) is None
    assert (
        parse_tlsrpt(["v=TLSRPTv1; rua=mailto:a@e.test", "v=TLSRPTv1; rua=mailto:b@e.test"]) is None
    )


def test_the_report_of_a_day() -> None:
    policy = parse_policy("example.com", "abc", POLICY, WHEN)

    def session(result: str, mx: str = "mail.example.com", policy_id: str = "abc") -> Session:
        kind = "sts" if policy_id else "no-policy-found"
        return Session(
            "2026-12-03", "example.com", kind, policy_id, mx, "192.0.2.1", "198.51.100.7", result
        )

    rows = [
        (session("success"), 40),
        (session("certificate-expired"), 3),
        (session("certificate-expired", "mx2.example.net"), 2),
        (session("success", policy_id=""), 1),
        (Session("2026-12-02", "example.com", "sts", "abc", "m", "", "", "success"), 99),
    ]
    report = build_report(
        "example.com",
        date(2026, 12, 3),
        rows,
        policy,
        organization="postroom.test",
        contact="postmaster@postroom.test",
        report_id="r1",
    )
    assert report["date-range"] == {
        "start-datetime": "2026-12-03T00:00:00Z",
        "end-datetime": "2026-12-03T23:59:59Z",
    }
    assert report["organization-name"] == "postroom.test" and report["report-id"] == "r1"
    none, sts = report["policies"]
    assert none["policy"] == {"policy-type": "no-policy-found", "policy-domain": "example.com"}
    assert none["summary"] == {
        "total-successful-session-count": 1,
        "total-failure-session-count": 0,
    }
    assert sts["policy"]["policy-type"] == "sts"
    assert sts["policy"]["policy-string"][1] == "mode: enforce"
    assert sts["policy"]["mx-host"] == ["mail.example.com", "*.example.net"]
    assert sts["summary"] == {
        "total-successful-session-count": 40,
        "total-failure-session-count": 5,
    }
    assert sts["failure-details"] == [
        {
            "result-type": "certificate-expired",
            "sending-mta-ip": "192.0.2.1",
            "receiving-ip": "198.51.100.7",
            "receiving-mx-hostname": "mail.example.com",
            "failed-session-count": 3,
        },
        {
            "result-type": "certificate-expired",
            "sending-mta-ip": "192.0.2.1",
            "receiving-ip": "198.51.100.7",
            "receiving-mx-hostname": "mx2.example.net",
            "failed-session-count": 2,
        },
    ]
