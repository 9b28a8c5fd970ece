"""SES configuration sets and event destinations driven by real boto3 clients (`sesv2`, `ses`)
against a running server: every operation with SES's shapes, the errors SDKs raise
(NotFoundException, AlreadyExistsException, LimitExceededException, BadRequestException; v1
ConfigurationSetDoesNotExistException, ConfigurationSetSendingPausedException), and end to end:
a message sent with a configuration set yields a signed webhook request at a loopback receiver
for a matching event type, with the EmailTags and the set in `mail.tags`, and none for a
non-matching one or for a message sent without the set."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from postroom.config import HostPort
from postroom.core.clock import FakeClock
from postroom.core.config_sets import MAX_CONFIGURATION_SETS, MAX_EVENT_DESTINATIONS
from tests.dnszone import DnsZone

from .conftest import Env, start_env
from .test_native_send import key
from .test_ses_api import client, ses_key, simple
from .test_webhooks_e2e import HttpReceiver


@pytest.fixture
def env(tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone) -> Iterator[Env]:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))  # boto3 signs with real time
    environment = start_env(
        tmp_path,
        ca,
        dns_zone,
        clock,
        ses=HostPort("127.0.0.1", 0),
        webhook_allow_private=True,
    )
    try:
        yield environment
    finally:
        environment.server.stop()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    started = HttpReceiver(lambda n: 200)
    try:
        yield started
    finally:
        started.stop()


def webhook(env: Env, url: str, types: list[str]) -> str:
    manage = key(env, "acme", scopes=("manage",))
    with httpx.Client(base_url=env.server.base_url, timeout=30) as http:
        made = http.post(
            "/api/v2/projects/acme/webhooks",
            headers={"Authorization": f"Bearer {manage}"},
            json={"url": url, "types": types},
        )
    assert made.status_code == 201, made.text
    webhook_id: str = made.json()["id"]
    return webhook_id


def sns(webhook_id: str) -> dict[str, str]:
    return {"TopicArn": f"arn:aws:sns:us-east-1:000000000000:{webhook_id}"}


def payloads(receiver: HttpReceiver, path: str) -> list[dict[str, Any]]:
    found = []
    for request in receiver.requests:
        if request.path == path:
            body: dict[str, Any] = json.loads(request.body)
            found.append(body)
    return found


def wait_for(env: Env, done: Callable[[], bool], what: str) -> None:
    """Until `done()`, moving the server's clock on (the webhook worker's passes run on it)."""
    deadline = time.monotonic() + 30
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        env.tick(1.0)
        time.sleep(0.05)


def test_configuration_set_operations(env: Env) -> None:
    v2 = client(env, "sesv2", ses_key(env))
    hook_id = webhook(env, "http://127.0.0.1:9/hook", ["send"])
    v2.create_configuration_set(
        ConfigurationSetName="marketing",
        SendingOptions={"SendingEnabled": True},
        ReputationOptions={"ReputationMetricsEnabled": True},
        Tags=[{"Key": "team", "Value": "growth"}],
    )
    v2.create_configuration_set(ConfigurationSetName="billing")
    got = v2.get_configuration_set(ConfigurationSetName="marketing")
    assert got["ConfigurationSetName"] == "marketing"
    assert got["SendingOptions"] == {"SendingEnabled": True}
    assert got["ReputationOptions"] == {"ReputationMetricsEnabled": True}
    assert got["Tags"] == [{"Key": "team", "Value": "growth"}]
    listed = v2.list_configuration_sets(PageSize=1)
    assert listed["ConfigurationSets"] == ["billing"] and listed["NextToken"]
    rest = v2.list_configuration_sets(PageSize=1, NextToken=listed["NextToken"])
    assert rest["ConfigurationSets"] == ["marketing"] and "NextToken" not in rest

    v2.create_configuration_set_event_destination(
        ConfigurationSetName="marketing",
        EventDestinationName="to-hook",
        EventDestination={
            "Enabled": True,
            "MatchingEventTypes": ["SEND", "BOUNCE", "COMPLAINT"],
            "SnsDestination": sns(hook_id),
        },
    )
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="marketing",
        EventDestinationName="off",
        EventDestination={"MatchingEventTypes": ["DELIVERY"], "SnsDestination": sns(hook_id)},
    )
    found = v2.get_configuration_set_event_destinations(ConfigurationSetName="marketing")
    assert found["EventDestinations"] == [  # by name
        {
            "Name": "off",
            "Enabled": False,
            "MatchingEventTypes": ["DELIVERY"],
            "SnsDestination": sns(hook_id),
        },
        {
            "Name": "to-hook",
            "Enabled": True,
            "MatchingEventTypes": ["SEND", "BOUNCE", "COMPLAINT"],
            "SnsDestination": sns(hook_id),
        },
    ]
    v2.update_configuration_set_event_destination(
        ConfigurationSetName="marketing",
        EventDestinationName="off",
        EventDestination={
            "Enabled": True,
            "MatchingEventTypes": ["DELIVERY_DELAY"],
            "SnsDestination": {"TopicArn": hook_id},
        },
    )
    found = v2.get_configuration_set_event_destinations(ConfigurationSetName="marketing")
    assert found["EventDestinations"][0] == {
        "Name": "off",
        "Enabled": True,
        "MatchingEventTypes": ["DELIVERY_DELAY"],
        "SnsDestination": {"TopicArn": hook_id},
    }
    v2.delete_configuration_set_event_destination(
        ConfigurationSetName="marketing", EventDestinationName="off"
    )
    found = v2.get_configuration_set_event_destinations(ConfigurationSetName="marketing")
    assert [d["Name"] for d in found["EventDestinations"]] == ["to-hook"]
    v2.delete_configuration_set(ConfigurationSetName="marketing")
    assert v2.list_configuration_sets()["ConfigurationSets"] == ["billing"]


def test_configuration_set_errors_are_the_sdk_exceptions(env: Env) -> None:
    v2 = client(env, "sesv2", ses_key(env))
    hook_id = webhook(env, "http://127.0.0.1:9/hook", ["send"])
    v2.create_configuration_set(ConfigurationSetName="one")
    with pytest.raises(v2.exceptions.AlreadyExistsException):
        v2.create_configuration_set(ConfigurationSetName="ONE")
    with pytest.raises(v2.exceptions.BadRequestException) as bad_name:
        v2.create_configuration_set(ConfigurationSetName="no spaces allowed")
    assert "ConfigurationSetName" in str(bad_name.value)
    for name, call in (
        ("get", lambda: v2.get_configuration_set(ConfigurationSetName="nope")),
        ("delete", lambda: v2.delete_configuration_set(ConfigurationSetName="nope")),
        (
            "destinations",
            lambda: v2.get_configuration_set_event_destinations(ConfigurationSetName="nope"),
        ),
        (
            "delete destination",
            lambda: v2.delete_configuration_set_event_destination(
                ConfigurationSetName="one", EventDestinationName="nope"
            ),
        ),
    ):
        with pytest.raises(v2.exceptions.NotFoundException) as missing:
            call()
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404, name
    with pytest.raises(v2.exceptions.NotFoundException) as unknown_set:
        v2.send_email(**simple(ConfigurationSetName="nope"))
    assert "Configuration set <nope> does not exist." in str(unknown_set.value)
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.send_bulk_email(
            FromEmailAddress="app@example.com",
            ConfigurationSetName="nope",
            DefaultContent={"Template": {"TemplateContent": {"Subject": "s", "Text": "t"}}},
            BulkEmailEntries=[{"Destination": {"ToAddresses": ["a@example.net"]}}],
        )

    good = {"MatchingEventTypes": ["SEND"], "SnsDestination": sns(hook_id)}
    for definition, field in (
        (
            {
                "MatchingEventTypes": ["SEND"],
                "CloudWatchDestination": {"DimensionConfigurations": []},
            },
            "CloudWatchDestination",
        ),
        ({"MatchingEventTypes": ["SEND"]}, "SnsDestination"),
        ({"MatchingEventTypes": [], "SnsDestination": sns(hook_id)}, "MatchingEventTypes"),
        ({"MatchingEventTypes": ["SEND"], "SnsDestination": sns("0" * 26)}, "TopicArn"),
        ({"MatchingEventTypes": ["SEND"], "SnsDestination": {"TopicArn": "arn:x"}}, "TopicArn"),
    ):
        with pytest.raises(v2.exceptions.BadRequestException) as refused:
            v2.create_configuration_set_event_destination(
                ConfigurationSetName="one", EventDestinationName="d", EventDestination=definition
            )
        assert field in str(refused.value)
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.update_configuration_set_event_destination(
            ConfigurationSetName="one", EventDestinationName="nope", EventDestination=good
        )
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="one", EventDestinationName="d0", EventDestination=good
    )
    with pytest.raises(v2.exceptions.AlreadyExistsException):
        v2.create_configuration_set_event_destination(
            ConfigurationSetName="one", EventDestinationName="d0", EventDestination=good
        )
    for i in range(1, MAX_EVENT_DESTINATIONS):
        v2.create_configuration_set_event_destination(
            ConfigurationSetName="one", EventDestinationName=f"d{i}", EventDestination=good
        )
    with pytest.raises(v2.exceptions.LimitExceededException) as too_many:
        v2.create_configuration_set_event_destination(
            ConfigurationSetName="one", EventDestinationName="more", EventDestination=good
        )
    assert too_many.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert f"at most {MAX_EVENT_DESTINATIONS} event destinations" in str(too_many.value)
    for i in range(1, MAX_CONFIGURATION_SETS):
        v2.create_configuration_set(ConfigurationSetName=f"set{i}")
    with pytest.raises(v2.exceptions.LimitExceededException) as no_more:
        v2.create_configuration_set(ConfigurationSetName="one-too-many")
    assert f"at most {MAX_CONFIGURATION_SETS} configuration sets" in str(no_more.value)

    # Sending disabled for the set: v2 SendingPausedException.
    v2.delete_configuration_set(ConfigurationSetName="set1")
    v2.create_configuration_set(
        ConfigurationSetName="paused", SendingOptions={"SendingEnabled": False}
    )
    with pytest.raises(v2.exceptions.SendingPausedException):
        v2.send_email(**simple(ConfigurationSetName="paused"))


def test_sesv1_configuration_set_and_tags(env: Env, receiver: HttpReceiver) -> None:
    pair = ses_key(env)
    v1, v2 = client(env, "ses", pair), client(env, "sesv2", pair)
    with pytest.raises(v1.exceptions.ConfigurationSetDoesNotExistException):
        v1.send_email(
            Source="app@example.com",
            Destination={"ToAddresses": ["a@example.net"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}},
            ConfigurationSetName="nope",
        )
    v2.create_configuration_set(
        ConfigurationSetName="paused", SendingOptions={"SendingEnabled": False}
    )
    with pytest.raises(v1.exceptions.ConfigurationSetSendingPausedException):
        v1.send_raw_email(
            RawMessage={"Data": b"From: app@example.com\r\nTo: a@example.net\r\n\r\nhi\r\n"},
            ConfigurationSetName="paused",
        )
    with pytest.raises(v1.exceptions.ClientError) as bad_tag:
        v1.send_email(
            Source="app@example.com",
            Destination={"ToAddresses": ["a@example.net"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}},
            Tags=[{"Name": "has space", "Value": "x"}],
        )
    assert bad_tag.value.response["Error"]["Code"] == "InvalidParameterValue"

    hook_id = webhook(env, receiver.url, ["send"])
    v2.create_configuration_set(ConfigurationSetName="v1set")
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="v1set",
        EventDestinationName="all",
        EventDestination={
            "Enabled": True,
            "MatchingEventTypes": ["SEND"],
            "SnsDestination": sns(hook_id),
        },
    )
    raw = b"From: app@example.com\r\nTo: r@example.net\r\nSubject: raw\r\n\r\nbody\r\n"
    sent = v1.send_raw_email(
        RawMessage={"Data": raw},
        ConfigurationSetName="v1set",
        Tags=[{"Name": "kind", "Value": "raw-v1"}],
    )
    wait_for(env, lambda: len(receiver.requests) >= 1, "the v1 message's Send event")
    [payload] = [json.loads(r.body) for r in receiver.requests]
    assert payload["eventType"] == "Send"
    assert payload["mail"]["messageId"] == sent["MessageId"]
    assert payload["mail"]["tags"] == {"kind": ["raw-v1"], "ses:configuration-set": ["v1set"]}
    record = next(m for m in env.messages() if m.id == sent["MessageId"])
    assert "X-Tags" not in env.raw(record).decode()  # tags are kept beside the message


def test_events_of_a_configuration_set_reach_its_webhook(env: Env, receiver: HttpReceiver) -> None:
    v2 = client(env, "sesv2", ses_key(env))
    base = receiver.url.rsplit("/", 1)[0]
    scoped = webhook(env, f"{base}/marketing", ["delivery"])  # its own types stop counting
    other = webhook(env, f"{base}/billing", ["send"])
    webhook(env, f"{base}/all", ["send"])  # project-wide
    v2.create_configuration_set(ConfigurationSetName="marketing")
    v2.create_configuration_set(ConfigurationSetName="billing")
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="marketing",
        EventDestinationName="sends",
        EventDestination={
            "Enabled": True,
            "MatchingEventTypes": ["SEND", "BOUNCE"],
            "SnsDestination": sns(scoped),
        },
    )
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="billing",
        EventDestinationName="bounces",
        EventDestination={
            "Enabled": True,
            "MatchingEventTypes": ["BOUNCE", "COMPLAINT"],
            "SnsDestination": sns(other),
        },
    )
    marketing = v2.send_email(
        **simple(
            ConfigurationSetName="marketing",
            Destination={"ToAddresses": ["ann@example.net"]},
            EmailTags=[{"Name": "campaign", "Value": "spring"}, {"Name": "flag", "Value": ""}],
        )
    )["MessageId"]
    billing = v2.send_email(
        **simple(ConfigurationSetName="billing", Destination={"ToAddresses": ["bo@example.net"]})
    )["MessageId"]
    plain = v2.send_email(**simple(Destination={"ToAddresses": ["cy@example.net"]}))["MessageId"]
    bulk = v2.send_bulk_email(
        FromEmailAddress="app@example.com",
        ConfigurationSetName="marketing",
        DefaultEmailTags=[{"Name": "campaign", "Value": "bulk"}],
        DefaultContent={"Template": {"TemplateContent": {"Subject": "s", "Text": "t"}}},
        BulkEmailEntries=[
            {
                "Destination": {"ToAddresses": ["d1@example.net"]},
                "ReplacementTags": [{"Name": "row", "Value": "1"}],
            }
        ],
    )["BulkEmailEntryResults"][0]["MessageId"]

    # Every message's Send reaches the project-wide webhook: once it has all four, the
    # others have had their chance (the outbox rows were written with the events).
    wait_for(env, lambda: len(payloads(receiver, "/all")) == 4, "the project-wide webhook")
    wait_for(env, lambda: len(payloads(receiver, "/marketing")) == 2, "the marketing webhook")
    sent = payloads(receiver, "/marketing")
    assert sorted(p["mail"]["messageId"] for p in sent) == sorted([marketing, bulk])
    assert all(p["eventType"] == "Send" for p in sent)
    by_id = {p["mail"]["messageId"]: p for p in sent}
    assert by_id[marketing]["mail"]["tags"] == {
        "campaign": ["spring"],
        "flag": [""],
        "ses:configuration-set": ["marketing"],
    }
    assert by_id[bulk]["mail"]["tags"] == {
        "campaign": ["bulk"],
        "row": ["1"],
        "ses:configuration-set": ["marketing"],
    }
    assert payloads(receiver, "/billing") == []  # SEND is not among its set's types
    everyone = {p["mail"]["messageId"]: p for p in payloads(receiver, "/all")}
    assert set(everyone) == {marketing, billing, plain, bulk}
    assert everyone[plain]["mail"]["tags"] == {"campaign": ["spring"]}
    assert everyone[billing]["mail"]["tags"]["ses:configuration-set"] == ["billing"]
    rows = env.store.webhooks.outbox("acme", other)
    assert rows == []
    for _ in range(5):  # nothing late either: a few more passes of the worker
        env.tick(1.0)
        time.sleep(0.1)
    assert len(payloads(receiver, "/marketing")) == 2 and payloads(receiver, "/billing") == []
