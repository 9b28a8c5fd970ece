from __future__ import annotations

from pathlib import Path

import pytest

from postroom.core.errors import ConfigError
from postroom.delivery.shaping import (
    Gcra,
    Shaper,
    SiteLimits,
    is_push_back,
    load_rules,
    parse_rate,
    parse_rules,
    site_name,
)

GOOGLE = site_name(["alt1.aspmx.l.google.com", "ASPMX.L.GOOGLE.COM."])


def test_rates() -> None:
    assert parse_rate("100/s") == 100
    assert parse_rate("600/m") == 10
    assert parse_rate("7200 / hour") == 2
    for bad in ("", "10", "0/s", "-1/s", "5/week", "x/s"):
        with pytest.raises(ConfigError):
            parse_rate(bad)


def test_gcra_allows_a_burst_then_the_rate() -> None:
    bucket = Gcra(rate=2, burst=3)  # one every 0.5 s, three at once
    assert [bucket.wait(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.wait(0.0) == pytest.approx(0.5)
    assert bucket.wait(0.5) == 0.0
    assert bucket.wait(0.5) == pytest.approx(0.5)
    assert bucket.wait(10.0) == 0.0  # idle time refills the burst...
    assert [bucket.wait(10.0) for _ in range(2)] == [0.0, 0.0]
    assert bucket.wait(10.0) > 0  # ...but never beyond it


def test_site_names_roll_up_equal_mx_sets() -> None:
    assert site_name(["aspmx.l.google.com", "alt1.aspmx.l.google.com"]) == GOOGLE
    assert GOOGLE == "alt1.aspmx.l.google.com,aspmx.l.google.com"


def test_shipped_rules_match_providers_by_mx_suffix() -> None:
    rules = load_rules()
    assert rules.limits_for(["aspmx.l.google.com"])[0] == "google"
    name, limits = rules.limits_for(["example-com.mail.protection.outlook.com"])
    assert name == "microsoft" and limits.messages_per_connection == 20
    name, limits = rules.limits_for(["mx.small.example"])
    assert name == "default" and limits == SiteLimits(**rules.default)
    assert rules.limits_for(["notgoogle.com"])[0] == "default"  # suffix on a label boundary


def test_a_user_file_overrides_defaults_and_sites(tmp_path: Path) -> None:
    extra = tmp_path / "shaping.toml"
    extra.write_text(
        "[default]\nconnections = 2\n[site.google]\nmx_suffix = ['google.com']\nconnections = 50\n"
        "[site.internal]\nmx_suffix = 'corp.example'\nmessage_rate = '10/s'\n"
    )
    rules = load_rules(extra)
    assert rules.limits_for(["mx.other.example"])[1].connections == 2
    google = rules.limits_for(["aspmx.l.google.com"])[1]
    assert google.connections == 50 and google.message_rate == ""  # the user's rule replaces ours
    assert rules.limits_for(["mx1.corp.example"])[1].message_rate == "10/s"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[default]\nconections = 3\n", "unknown keys: conections"),
        ("[default]\nconnections = 0\n", "at least 1"),
        ("[site.x]\nconnections = 3\n", "needs mx_suffix"),
        ("[site.x]\nmx_suffix = ['a']\nmessage_rate = 'fast'\n", "COUNT/UNIT"),
        ("[sites.x]\n", "unknown tables: sites"),
        ("[default\n", "shaping"),
    ],
)
def test_bad_rules_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_rules(text)


def test_concurrency_limit_and_recovery_after_back_off() -> None:
    rules = parse_rules("[default]\nconnections = 4\nsuspend_seconds = 60\n")
    shaper = Shaper(rules)
    assert [shaper.open_connection("s", "ip1", 0.0) for _ in range(4)] == [0.0] * 4
    assert shaper.open_connection("s", "ip1", 0.0) == -1.0  # all four in use
    assert shaper.open_connection("s", "ip2", 0.0) == 0.0  # another source has its own
    shaper.back_off("s", "ip1", 10.0, "421 4.7.0 try again later")
    assert shaper.open_connection("s", "ip1", 20.0) == pytest.approx(50.0)
    assert shaper.send_message("s", "ip1", 20.0) == pytest.approx(50.0)
    for _ in range(4):
        shaper.close_connection("s", "ip1", succeeded=False)
    (status,) = [s for s in shaper.status(20.0) if s.source == "ip1"]
    assert (status.concurrency, status.active, status.reason) == (2, 0, "421 4.7.0 try again later")
    assert shaper.open_connection("s", "ip1", 70.0) == 0.0
    assert shaper.open_connection("s", "ip1", 70.0) == 0.0
    assert shaper.open_connection("s", "ip1", 70.0) == -1.0  # halved to 2
    shaper.close_connection("s", "ip1", succeeded=True)  # recovers one step per success
    assert shaper.status(70.0)[0].concurrency == 3 and shaper.status(70.0)[0].reason == ""


def test_message_rate_per_site_and_source() -> None:
    shaper = Shaper(parse_rules("[default]\nmessage_rate = '60/m'\nburst = 1\n"))
    assert shaper.send_message(GOOGLE, "ip", 0.0) == 0.0
    assert shaper.send_message(GOOGLE, "ip", 0.0) == pytest.approx(1.0)
    assert shaper.send_message(GOOGLE, "ip", 1.0) == 0.0


@pytest.mark.parametrize(
    ("code", "enhanced", "text", "expected"),
    [
        (421, "4.7.0", "Try again later, closing connection", True),
        (450, "4.7.1", "Client host rejected: too many connections", True),
        (451, "4.3.0", "Rate limit exceeded, slow down", True),
        (452, "4.5.3", "Too many recipients", False),
        (450, "4.2.1", "The user you are trying to contact is receiving mail too fast", True),
        (550, "5.7.1", "Rate limited", False),
        (451, "4.3.0", "Temporary local problem", False),
    ],
)
def test_push_back_replies(code: int, enhanced: str, text: str, expected: bool) -> None:
    assert is_push_back(code, enhanced, text) is expected
