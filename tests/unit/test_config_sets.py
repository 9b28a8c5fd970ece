"""SES configuration sets' vocabulary: names, SES's event types and Postroom's, the webhook a
TopicArn names, and a message's tags as SES's `mail.tags`."""

from __future__ import annotations

import pytest

from postroom.core.config_sets import (
    MATCHING,
    check_matching,
    check_name,
    mail_tags,
    postroom_types,
    set_of_tags,
    set_tag,
    webhook_of_topic,
)
from postroom.core.errors import InvalidInput
from postroom.core.events import EVENT_TYPES

HOOK = "01J9ZQ3V5W6X7Y8Z9A0B1C2D3E"


def test_names_are_ses_names() -> None:
    assert check_name("Marketing_2026-a", "ConfigurationSetName") == "Marketing_2026-a"
    for bad in ("", "a b", "x" * 65, "dots.no", None, 7):
        with pytest.raises(InvalidInput) as refused:
            check_name(bad, "ConfigurationSetName")
        assert refused.value.field == "ConfigurationSetName"


def test_matching_types_map_onto_the_event_log() -> None:
    assert set(MATCHING) == {
        "SEND", "REJECT", "BOUNCE", "COMPLAINT", "DELIVERY", "OPEN", "CLICK",
        "RENDERING_FAILURE", "DELIVERY_DELAY", "SUBSCRIPTION",
    }  # fmt: skip
    assert all(kind in EVENT_TYPES for kinds in MATCHING.values() for kind in kinds)
    assert check_matching(["SEND", "BOUNCE", "SEND"]) == ("SEND", "BOUNCE")
    assert postroom_types(("SEND", "BOUNCE", "OPEN")) == ("send", "bounce", "expired", "suppressed")
    assert postroom_types(("DELIVERY_DELAY",)) == ("deferred",)
    for bad in ([], None, ["send"], ["SEND", "NOPE"]):
        with pytest.raises(InvalidInput):
            check_matching(bad)


def test_a_topic_arn_names_a_webhook() -> None:
    assert webhook_of_topic(f"arn:aws:sns:us-east-1:000000000000:{HOOK}") == HOOK
    assert webhook_of_topic(HOOK.lower()) == HOOK
    for bad in ("", None, "arn:aws:sns:us-east-1:1:my-topic", f"{HOOK}x"):
        with pytest.raises(InvalidInput) as refused:
            webhook_of_topic(bad)
        assert refused.value.field == "SnsDestination.TopicArn"


def test_tags_as_ses_shows_them() -> None:
    tags = ["campaign:spring", "campaign:b", "flag", set_tag("Marketing"), "kind:a:b"]
    assert mail_tags(tags) == {
        "campaign": ["spring", "b"],
        "flag": [""],
        "ses:configuration-set": ["Marketing"],
        "kind": ["a:b"],
    }
    assert set_of_tags(tags) == "Marketing" and set_of_tags(["x"]) is None
    assert mail_tags([]) == {}
