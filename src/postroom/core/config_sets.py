"""SES configuration sets and their event destinations, mapped onto Postroom's webhooks.

A configuration set is a named group of a project's sending rules (SES API v2). A message sent
with one (`ConfigurationSetName`) carries the tag `ses:configuration-set:NAME` (SES puts that
tag in `mail.tags` too), and its events go to the set's event destinations.

An event destination delivers to a Postroom webhook: its `SnsDestination.TopicArn` names the
webhook, either by its id alone or as the last part of an ARN
(`arn:aws:sns:us-east-1:000000000000:WEBHOOK_ID`), so that boto3 and other SDKs send it
unchanged. Firehose, CloudWatch, EventBridge and Pinpoint destinations are refused. SES's
MatchingEventTypes map onto the event log's types (MATCHING); OPEN, CLICK, SUBSCRIPTION and
RENDERING_FAILURE are accepted and kept, and match nothing: Postroom has no such events (a
template that does not render refuses the send at once).

A webhook named by any event destination serves configuration sets only: it receives the
events of messages sent with a set that has an enabled destination naming it, of that
destination's types, and no longer the project's other events (its own event types are not
used while a destination names it). Deleting the webhook deletes the destinations naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from postroom.core.errors import InvalidInput
from postroom.core.ids import is_id

# The tag a message sent with a configuration set carries: `ses:configuration-set:NAME`.
CONFIGURATION_SET_TAG = "ses:configuration-set"

MAX_CONFIGURATION_SETS = 100  # per project (LimitExceededException beyond)
MAX_EVENT_DESTINATIONS = 10  # per configuration set, as SES
MAX_NAME = 64

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

# SES's event types, and the event log's types each stands for.
MATCHING: Mapping[str, tuple[str, ...]] = {
    "SEND": ("send",),
    "DELIVERY": ("delivery",),
    "BOUNCE": ("bounce", "expired", "suppressed"),
    "COMPLAINT": ("complaint",),
    "DELIVERY_DELAY": ("deferred",),
    "REJECT": ("reject",),
    "RENDERING_FAILURE": (),
    "OPEN": (),
    "CLICK": (),
    "SUBSCRIPTION": (),
}

# Options of a configuration set that are kept and returned as given; only
# SendingOptions.SendingEnabled changes what Postroom does (false: sends are refused).
OPTION_FIELDS = (
    "TrackingOptions",
    "DeliveryOptions",
    "ReputationOptions",
    "SendingOptions",
    "SuppressionOptions",
    "VdmOptions",
    "ArchivingOptions",
    "MessageSecurityOptions",
)


@dataclass(frozen=True, slots=True)
class ConfigurationSet:
    project: str
    name: str
    created: datetime
    options: Mapping[str, Any] = field(default_factory=dict)  # OPTION_FIELDS as given
    tags: tuple[tuple[str, str], ...] = ()  # the set's own resource tags (Key, Value)

    @property
    def sending_enabled(self) -> bool:
        sending = self.options.get("SendingOptions")
        if isinstance(sending, dict):
            return sending.get("SendingEnabled", True) is not False
        return True


@dataclass(frozen=True, slots=True)
class EventDestination:
    project: str
    configuration_set: str
    name: str
    enabled: bool
    matching: tuple[str, ...]  # SES's names, as given
    webhook_id: str
    topic_arn: str  # as given
    created: datetime

    @property
    def types(self) -> tuple[str, ...]:
        """The event log's types the destination receives."""
        return postroom_types(self.matching)


def check_name(value: object, field_name: str) -> str:
    """A configuration set's or event destination's name: 1 to 64 ASCII letters, digits, `-`
    and `_` (as SES). InvalidInput names `field_name`."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInput(
            f"{field_name} must be 1 to {MAX_NAME} letters, digits, '-' or '_'", field_name
        )
    return value


def check_matching(value: object, field_name: str = "MatchingEventTypes") -> tuple[str, ...]:
    """SES's event types: a non-empty list of known ones, duplicates dropped."""
    if not isinstance(value, list | tuple) or not value:
        raise InvalidInput(
            f"{field_name} must be a non-empty list of: {', '.join(MATCHING)}", field_name
        )
    out: list[str] = []
    for name in value:
        if not isinstance(name, str) or name not in MATCHING:
            raise InvalidInput(
                f"{field_name}: unknown event type {name!r}; known: {', '.join(MATCHING)}",
                field_name,
            )
        if name not in out:
            out.append(name)
    return tuple(out)


def postroom_types(matching: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for name in matching:
        for kind in MATCHING.get(name, ()):
            if kind not in out:
                out.append(kind)
    return tuple(out)


def webhook_of_topic(value: object, field_name: str = "SnsDestination.TopicArn") -> str:
    """The webhook id a TopicArn names: the whole value, or its part after the last ':'."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            f"{field_name} is required: the id of a webhook of this project, or an ARN ending "
            "in ':' and that id",
            field_name,
        )
    webhook_id = value.strip().rpartition(":")[2]
    if not is_id(webhook_id.upper()):
        raise InvalidInput(
            f"{field_name} must end with a webhook id (26 characters), e.g. "
            "arn:aws:sns:us-east-1:000000000000:WEBHOOK_ID",
            field_name,
        )
    return webhook_id.upper()


def set_tag(name: str) -> str:
    """The tag of a message sent with configuration set `name`."""
    return f"{CONFIGURATION_SET_TAG}:{name}"


def set_of_tags(tags: Sequence[str]) -> str | None:
    """The configuration set a message's tags name, if any."""
    head = CONFIGURATION_SET_TAG + ":"
    for tag in tags:
        if tag.lower().startswith(head):
            return tag[len(head) :]
    return None


def mail_tags(tags: Sequence[str]) -> dict[str, list[str]]:
    """SES's `mail.tags` of a message's tags: `name:value` → {"name": ["value"]}; a tag
    without a value → {"tag": [""]}; `ses:...` tags keep their `ses:` prefix in the name
    (`ses:configuration-set:x` → {"ses:configuration-set": ["x"]})."""
    out: dict[str, list[str]] = {}
    for tag in tags:
        prefix = ""
        rest = tag
        if tag.lower().startswith("ses:"):
            prefix, rest = tag[:4], tag[4:]
        name, colon, value = rest.partition(":")
        key = prefix + name if colon else tag
        out.setdefault(key, []).append(value if colon else "")
    return out


__all__ = [
    "CONFIGURATION_SET_TAG",
    "MATCHING",
    "MAX_CONFIGURATION_SETS",
    "MAX_EVENT_DESTINATIONS",
    "OPTION_FIELDS",
    "ConfigurationSet",
    "EventDestination",
    "check_matching",
    "check_name",
    "mail_tags",
    "postroom_types",
    "set_of_tags",
    "set_tag",
    "webhook_of_topic",
]
