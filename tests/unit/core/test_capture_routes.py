"""Capture route rules: parsing, wildcard matching without regard to case, and how a message's
recipients are split between projects."""

from __future__ import annotations

import pytest

from postroom.core.capture_routes import CaptureRoute, parse_route, route
from postroom.core.errors import InvalidInput


def test_parse_both_kinds() -> None:
    assert parse_route("user:staging=staging") == CaptureRoute("user", "staging", "staging")
    rule = parse_route(" RCPT:*@team-a.test=team-a ")
    assert (rule.kind, rule.pattern, rule.project) == ("rcpt", "*@team-a.test", "team-a")
    assert rule.text == "rcpt:*@team-a.test=team-a"
    # The last "=" separates the project: a pattern may hold one.
    assert parse_route("rcpt:a=b@x.test=p").pattern == "a=b@x.test"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("staging=staging", "capture_route"),
        ("user:staging", "capture_route"),
        ("from:x=y", "kind"),
        ("user:=staging", "pattern"),
        ("rcpt:a b=p", "pattern"),
        ("user:x=Not A Project", "project"),
        ("user:x=", "project"),
    ],
)
def test_malformed_rules_name_the_field(text: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_route(text)
    assert caught.value.field == field


def test_wildcards_ignore_case_and_match_whole_values() -> None:
    rule = parse_route("rcpt:*@Team-A.test=team-a")
    assert rule.matches("dev@team-a.TEST")
    assert not rule.matches("dev@team-a.test.evil")
    assert not rule.matches("dev@xteam-a.test.")
    assert parse_route("user:ci-?=ci").matches("CI-7")
    assert not parse_route("user:ci-?=ci").matches("ci-77")
    assert parse_route("rcpt:[ab]*@x.test=p").matches("bob@x.test")


def test_a_user_rule_takes_the_whole_message_else_each_recipient_its_own() -> None:
    rules = [
        parse_route("rcpt:*@team-a.test=team-a"),
        parse_route("user:staging=staging"),
        parse_route("rcpt:boss@*=bosses"),
        parse_route("rcpt:*@team-b.test=team-b"),
    ]
    rcpts = ["x@team-a.test", "y@other.test", "boss@team-b.test", "z@team-b.test"]
    assert route(rules, "staging", rcpts, "default") == {"staging": [0, 1, 2, 3]}
    # No user rule matches: per recipient, the first recipient rule in order.
    assert route(rules, "someone", rcpts, "default") == {
        "team-a": [0],
        "default": [1],
        "bosses": [2],
        "team-b": [3],
    }
    assert route(rules, None, ["a@nowhere.test"], "default") == {"default": [0]}
    assert route([], "staging", ["a@x.test"], "default") == {"default": [0]}
