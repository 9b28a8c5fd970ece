"""The SES-compatible API driven by real boto3 clients (`sesv2` and `ses`) against a running
server: sending (Simple, Raw, Template, bulk) into a live project (verified identities, quota,
DKIM, queue) and a capture project, identities, templates, quotas, SES's error classes, and
attacks on the SigV4 gate (no signature, wrong secret, unknown key, replay, expiry, foreign
Host, another project's data)."""

from __future__ import annotations

import asyncio
import email
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from email.policy import default
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import httpx
import pytest
import trustme
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from postroom.config import HostPort
from postroom.core.clock import FakeClock
from tests.dnszone import DnsZone, dkimpy_verify
from tests.proofmail import link_in, token_of

from .conftest import Env, start_env
from .test_address_proof import queued_mails
from .test_native_send import key
from .test_reputation_guard import bad_sending


@pytest.fixture
def env(tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone) -> Iterator[Env]:
    # boto3 signs with the real time: the server's clock starts at it.
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    environment = start_env(tmp_path, ca, dns_zone, clock, ses=HostPort("127.0.0.1", 0))
    try:
        yield environment
    finally:
        environment.server.stop()


def endpoint(env: Env) -> str:
    return f"http://127.0.0.1:{env.server.app.listener('ses').port}"


def ses_key(env: Env, project: str = "acme") -> tuple[str, str]:
    manage = key(env, project, scopes=("manage",))
    with httpx.Client(base_url=env.server.base_url, timeout=30) as http:
        created = http.post(
            f"/api/v2/projects/{project}/ses-keys",
            headers={"Authorization": f"Bearer {manage}", "Content-Type": "application/json"},
        )
    assert created.status_code == 201, created.text
    body = created.json()
    return body["access_key_id"], body["secret_access_key"]


def client(env: Env, service: str, pair: tuple[str, str]) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint(env),
        region_name="us-east-1",
        aws_access_key_id=pair[0],
        aws_secret_access_key=pair[1],
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def stored(env: Env, message_id: str, project: str = "acme") -> email.message.EmailMessage:
    [record] = [m for m in env.messages(project) if m.id == message_id]
    parsed = email.message_from_bytes(env.raw(record), policy=default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def simple(**extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "FromEmailAddress": "App <app@example.com>",
        "Destination": {"ToAddresses": ["ann@example.net"], "CcAddresses": ["cy@example.org"]},
        "ReplyToAddresses": ["help@example.com"],
        "Content": {
            "Simple": {
                "Subject": {"Data": "Hello from SES"},
                "Body": {"Text": {"Data": "plain body"}, "Html": {"Data": "<b>html body</b>"}},
            }
        },
        "EmailTags": [{"Name": "campaign", "Value": "spring"}],
    }
    values.update(extra)
    return values


def test_sesv2_send_email_simple_raw_and_template(env: Env) -> None:
    v2 = client(env, "sesv2", ses_key(env))
    sent = v2.send_email(**simple())
    record = next(m for m in env.messages() if m.id == sent["MessageId"])
    assert record.status == "queued" and "campaign:spring" in record.tags
    assert sorted(e.recipient for e in env.queue(record.id)) == [
        "ann@example.net",
        "cy@example.org",
    ]
    raw = env.raw(record)
    assert asyncio.run(asyncio.to_thread(dkimpy_verify, raw, env.zone))
    msg = stored(env, sent["MessageId"])
    assert msg["Subject"] == "Hello from SES" and msg["Reply-To"] == "help@example.com"

    mime = b"From: app@example.com\r\nTo: raw@example.net\r\nSubject: raw\r\n\r\nraw body\r\n"
    raw_sent = v2.send_email(FromEmailAddress="app@example.com", Content={"Raw": {"Data": mime}})
    assert stored(env, raw_sent["MessageId"])["Subject"] == "raw"

    v2.create_email_template(
        TemplateName="welcome",
        TemplateContent={
            "Subject": "Hi {{name}}",
            "Text": "Dear {{name}}",
            "Html": "<p>{{name}}</p>",
        },
    )
    templated = v2.send_email(
        FromEmailAddress="app@example.com",
        Destination={"ToAddresses": ["t@example.net"]},
        Content={
            "Template": {"TemplateName": "welcome", "TemplateData": json.dumps({"name": "Ann"})}
        },
    )
    assert stored(env, templated["MessageId"])["Subject"] == "Hi Ann"
    inline = v2.send_email(
        FromEmailAddress="app@example.com",
        Destination={"ToAddresses": ["t@example.net"]},
        Content={
            "Template": {
                "TemplateContent": {"Subject": "Inline {{x}}", "Text": "{{x}}"},
                "TemplateData": '{"x": "yes"}',
            }
        },
    )
    assert stored(env, inline["MessageId"])["Subject"] == "Inline yes"


def test_sesv2_errors_are_the_sdk_exceptions(env: Env) -> None:
    v2 = client(env, "sesv2", ses_key(env))
    with pytest.raises(v2.exceptions.MessageRejected) as rejected:
        v2.send_email(**simple(FromEmailAddress="ceo@elsewhere.example"))
    assert "ceo@elsewhere.example" in str(rejected.value)
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.send_email(**simple(Destination={"ToAddresses": ["root@localhost"]}))
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.send_email(**simple(Destination={"ToAddresses": ["not an address"]}))
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_email_template(TemplateName="nope")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.send_email(
            FromEmailAddress="app@example.com",
            Destination={"ToAddresses": ["t@example.net"]},
            Content={"Template": {"TemplateName": "nope", "TemplateData": "{}"}},
        )
    v2.create_email_template(TemplateName="t", TemplateContent={"Subject": "{{a}}", "Text": "x"})
    with pytest.raises(v2.exceptions.AlreadyExistsException):
        v2.create_email_template(
            TemplateName="t", TemplateContent={"Subject": "{{a}}", "Text": "y"}
        )
    with pytest.raises(v2.exceptions.BadRequestException) as missing:
        v2.send_email(
            FromEmailAddress="app@example.com",
            Destination={"ToAddresses": ["t@example.net"]},
            Content={"Template": {"TemplateName": "t", "TemplateData": "{}"}},
        )
    assert "'a' is missing" in str(missing.value)
    env.set_project(daily_quota=1)
    v2.send_email(**simple(Destination={"ToAddresses": ["one@example.net"]}))
    with pytest.raises(v2.exceptions.TooManyRequestsException) as throttled:
        v2.send_email(**simple(Destination={"ToAddresses": ["two@example.net"]}))
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    account = v2.get_account()
    assert account["SendQuota"] == {
        "Max24HourSend": 1.0,
        "MaxSendRate": -1.0,
        "SentLast24Hours": 1.0,
    }
    assert account["ProductionAccessEnabled"] is True and account["SendingEnabled"] is True


def test_send_bulk_email(env: Env) -> None:
    v2 = client(env, "sesv2", ses_key(env))
    v2.create_email_template(
        TemplateName="news", TemplateContent={"Subject": "{{greeting}} {{name}}", "Text": "body"}
    )
    entries: list[dict[str, Any]] = [
        {
            "Destination": {"ToAddresses": [f"r{i}@example.net"]},
            "ReplacementEmailContent": {
                "ReplacementTemplate": {"ReplacementTemplateData": json.dumps({"name": f"n{i}"})}
            },
        }
        for i in range(3)
    ]
    entries.append({"Destination": {"ToAddresses": ["bad@localhost"]}})
    answer = v2.send_bulk_email(
        FromEmailAddress="app@example.com",
        DefaultContent={
            "Template": {"TemplateName": "news", "TemplateData": '{"greeting": "Hi", "name": "x"}'}
        },
        BulkEmailEntries=entries,
    )
    results = answer["BulkEmailEntryResults"]
    assert [r["Status"] for r in results] == ["SUCCESS"] * 3 + ["INVALID_PARAMETER"]
    subjects = sorted(stored(env, r["MessageId"])["Subject"] for r in results[:3])
    assert subjects == ["Hi n0", "Hi n1", "Hi n2"]
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.send_bulk_email(
            FromEmailAddress="app@example.com",
            DefaultContent={"Template": {"TemplateName": "news", "TemplateData": "{}"}},
            BulkEmailEntries=[{"Destination": {"ToAddresses": ["a@example.net"]}}] * 51,
        )


def test_identities_and_templates(env: Env) -> None:
    v2 = client(env, "sesv2", ses_key(env))
    created = v2.create_email_identity(EmailIdentity="new.example")
    assert created["IdentityType"] == "DOMAIN" and created["VerifiedForSendingStatus"] is False
    assert created["DkimAttributes"]["Tokens"]
    again = client(env, "sesv2", ses_key(env))  # another key: the same call signs differently
    with pytest.raises(v2.exceptions.AlreadyExistsException):
        again.create_email_identity(EmailIdentity="new.example")
    with pytest.raises(ClientError) as replay:  # the same signed call within a second: a replay
        v2.create_email_identity(EmailIdentity="new.example")
    assert replay.value.response["Error"]["Code"] in ("RequestExpired", "AlreadyExistsException")
    assert v2.get_email_identity(EmailIdentity="example.com")["VerifiedForSendingStatus"] is True
    address = v2.create_email_identity(EmailIdentity="someone@unverified.example")
    assert address["VerifiedForSendingStatus"] is False  # pending: the proof is mailed to it
    [proof] = queued_mails(env, "someone@unverified.example")
    assert v2.create_email_identity(EmailIdentity="x@example.com")["VerifiedForSendingStatus"]
    names = {i["IdentityName"]: i for i in v2.list_email_identities()["EmailIdentities"]}
    assert names["new.example"]["VerificationStatus"] == "PENDING"
    assert names["someone@gmail.example"]["IdentityType"] == "EMAIL_ADDRESS"
    assert names["someone@unverified.example"]["VerificationStatus"] == "PENDING"
    pending = v2.get_email_identity(EmailIdentity="someone@unverified.example")
    assert pending["VerifiedForSendingStatus"] is False
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_email_identity(EmailIdentity="nobody@unverified.example")
    v2.delete_email_identity(EmailIdentity="new.example")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_email_identity(EmailIdentity="new.example")
    with pytest.raises(v2.exceptions.MessageRejected):  # pending allows nothing
        v2.send_email(**simple(FromEmailAddress="someone@unverified.example"))
    with httpx.Client(base_url=env.server.base_url, timeout=30) as http:
        confirmed = http.post("/confirm-address", json={"token": token_of(link_in(proof))})
    assert confirmed.status_code == 200, confirmed.text
    env.invalidate()  # the pipeline's project snapshot is cached for a few seconds
    assert v2.get_email_identity(EmailIdentity="someone@unverified.example")[
        "VerifiedForSendingStatus"
    ]
    v2.send_email(**simple(FromEmailAddress="someone@unverified.example"))

    v2.create_email_template(
        TemplateName="a", TemplateContent={"Subject": "S {{v}}", "Html": "<i>{{v}}</i>"}
    )
    v2.update_email_template(
        TemplateName="a", TemplateContent={"Subject": "T {{v}}", "Html": "<u>{{v}}</u>"}
    )
    got = v2.get_email_template(TemplateName="a")
    assert got["TemplateContent"]["Subject"] == "T {{v}}"
    assert [t["TemplateName"] for t in v2.list_email_templates()["TemplatesMetadata"]] == ["a"]
    rendered = v2.test_render_email_template(TemplateName="a", TemplateData='{"v": "<x>"}')
    assert "Subject: T <x>" in rendered["RenderedTemplate"]
    assert "&lt;x&gt;" in rendered["RenderedTemplate"]
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.create_email_template(
            TemplateName="b", TemplateContent={"Subject": "{{#if x}}", "Text": "t"}
        )
    v2.delete_email_template(TemplateName="a")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.delete_email_template(TemplateName="a")


def test_ses_v1_query_protocol(env: Env) -> None:
    v1 = client(env, "ses", ses_key(env))
    sent = v1.send_email(
        Source="app@example.com",
        Destination={"ToAddresses": ["ann@example.net"], "BccAddresses": ["b@example.net"]},
        Message={"Subject": {"Data": "v1 subject"}, "Body": {"Text": {"Data": "v1 body"}}},
        Tags=[{"Name": "kind", "Value": "v1"}],
    )
    msg = stored(env, sent["MessageId"])
    assert msg["Subject"] == "v1 subject" and msg["Bcc"] is None
    assert sorted(e.recipient for e in env.queue(sent["MessageId"])) == [
        "ann@example.net",
        "b@example.net",
    ]
    mime = b"From: app@example.com\r\nTo: x@example.net\r\nSubject: raw v1\r\n\r\nbody\r\n"
    raw = v1.send_raw_email(RawMessage={"Data": mime}, Destinations=["y@example.net"])
    assert [e.recipient for e in env.queue(raw["MessageId"])] == ["y@example.net"]
    client(env, "sesv2", ses_key(env)).create_email_template(
        TemplateName="v1t", TemplateContent={"Subject": "To {{who}}", "Text": "x"}
    )
    templated = v1.send_templated_email(
        Source="app@example.com",
        Destination={"ToAddresses": ["z@example.net"]},
        Template="v1t",
        TemplateData='{"who": "Zed"}',
    )
    assert stored(env, templated["MessageId"])["Subject"] == "To Zed"

    with pytest.raises(v1.exceptions.MessageRejected):
        v1.send_email(
            Source="ceo@elsewhere.example",
            Destination={"ToAddresses": ["ann@example.net"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
        )
    with pytest.raises(ClientError) as no_template:
        v1.send_templated_email(
            Source="app@example.com",
            Destination={"ToAddresses": ["z@example.net"]},
            Template="none",
            TemplateData="{}",
        )
    assert no_template.value.response["Error"]["Code"] == "TemplateDoesNotExist"

    quota = v1.get_send_quota()
    assert quota["SentLast24Hours"] == 4.0 and quota["Max24HourSend"] == -1.0
    points = v1.get_send_statistics()["SendDataPoints"]
    assert sum(p["DeliveryAttempts"] for p in points) == 4
    env.set_project(daily_quota=4)
    with pytest.raises(ClientError) as throttled:
        v1.send_email(
            Source="app@example.com",
            Destination={"ToAddresses": ["ann@example.net"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
        )
    assert throttled.value.response["Error"]["Code"] == "Throttling"

    token = v1.verify_domain_identity(Domain="v1.example")["VerificationToken"]
    assert token
    v1.verify_email_identity(EmailAddress="nobody@unverified.example")
    assert len(queued_mails(env, "nobody@unverified.example")) == 1  # its proof, mailed
    assert "v1.example" in v1.list_identities(IdentityType="Domain")["Identities"]
    assert v1.list_identities(IdentityType="EmailAddress")["Identities"] == [
        "nobody@unverified.example",
        "someone@gmail.example",
    ]
    attributes = v1.get_identity_verification_attributes(
        Identities=[
            "v1.example",
            "example.com",
            "someone@gmail.example",
            "nobody@unverified.example",
        ]
    )["VerificationAttributes"]
    assert attributes["v1.example"] == {"VerificationStatus": "Pending", "VerificationToken": token}
    assert attributes["example.com"]["VerificationStatus"] == "Success"
    assert attributes["someone@gmail.example"]["VerificationStatus"] == "Success"
    assert attributes["nobody@unverified.example"]["VerificationStatus"] == "Pending"


def test_capture_project_captures(env: Env) -> None:
    v2 = client(env, "sesv2", ses_key(env, "sandbox"))
    sent = v2.send_email(**simple(FromEmailAddress="anyone@unverified.example"))
    [record] = env.messages("sandbox")
    assert record.id == sent["MessageId"] and record.status == "captured"
    assert env.queue(record.id) == [] and env.messages("acme") == []
    assert v2.get_account()["ProductionAccessEnabled"] is False


def _signed(
    env: Env, pair: tuple[str, str], body: bytes, path: str = "/", **headers: str
) -> tuple[str, dict[str, str]]:
    url = endpoint(env) + path
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )
    SigV4Auth(Credentials(*pair), "ses", "us-east-1").add_auth(request)
    return url, dict(request.headers.items())


def test_the_gate_refuses_what_is_not_signed_by_a_key(env: Env) -> None:
    pair = ses_key(env)
    form = b"Action=SendEmail&Source=app%40example.com&Destination.ToAddresses.member.1=a%40example.net&Message.Subject.Data=s&Message.Body.Text.Data=b"
    with httpx.Client(timeout=30) as http:
        unsigned = http.post(
            endpoint(env) + "/",
            content=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert (
            unsigned.status_code == 403
            and b"<Code>MissingAuthenticationToken</Code>" in unsigned.content
        )
        url, headers = _signed(env, (pair[0], "wrong-secret-" + "x" * 27), form)
        wrong = http.post(url, content=form, headers=headers)
        assert wrong.status_code == 403 and b"SignatureDoesNotMatch" in wrong.content
        url, headers = _signed(env, ("AKPRAAAAAAAAAAAAAAAA", pair[1]), form)
        unknown = http.post(url, content=form, headers=headers)
        assert unknown.status_code == 403 and b"InvalidClientTokenId" in unknown.content
        url, headers = _signed(env, pair, form)
        first = http.post(url, content=form, headers=headers)
        assert first.status_code == 200, first.text
        replayed = http.post(url, content=form, headers=headers)
        assert replayed.status_code == 403 and b"RequestExpired" in replayed.content
        tampered = http.post(url, content=form.replace(b"a%40", b"b%40"), headers=headers)
        assert tampered.status_code == 403 and b"SignatureDoesNotMatch" in tampered.content
        url, headers = _signed(env, pair, form, Host="evil.example")
        foreign = http.post(url, content=form, headers=headers)
        assert foreign.status_code == 421
        v2_unsigned = http.post(endpoint(env) + "/v2/email/outbound-emails", json=simple())
        assert v2_unsigned.status_code == 403
        assert v2_unsigned.headers["x-amzn-ErrorType"] == "MissingAuthenticationToken"
    assert len(env.messages()) == 1  # only the signed request sent anything

    env.clock.advance(600)  # the server's clock is now 10 minutes ahead of boto3's
    with pytest.raises(ClientError) as expired:
        client(env, "sesv2", pair).get_account()
    assert expired.value.response["Error"]["Code"] == "RequestExpired"


def test_keys_reach_their_own_project_only(env: Env) -> None:
    pair = ses_key(env)
    database = b"".join(p.read_bytes() for p in (env.tmp / "data").glob("postroom.db*"))
    assert pair[0].encode() in database  # the key id is stored,
    assert pair[1].encode() not in database  # its secret only sealed
    acme = client(env, "sesv2", pair)
    sandbox = client(env, "sesv2", ses_key(env, "sandbox"))
    acme.create_email_template(TemplateName="secret", TemplateContent={"Subject": "s", "Text": "t"})
    with pytest.raises(sandbox.exceptions.NotFoundException):
        sandbox.get_email_template(TemplateName="secret")
    assert "example.com" not in {
        i["IdentityName"] for i in sandbox.list_email_identities()["EmailIdentities"]
    }
    with pytest.raises(sandbox.exceptions.NotFoundException):
        sandbox.delete_email_identity(EmailIdentity="example.com")

    manage = key(env, "acme", scopes=("manage",))
    sender = key(env, "acme")
    with httpx.Client(base_url=env.server.base_url, timeout=30) as http:
        listed = http.get(
            "/api/v2/projects/acme/ses-keys", headers={"Authorization": f"Bearer {manage}"}
        )
        assert listed.status_code == 200 and len(listed.json()["ses_keys"]) == 1
        assert "secret" not in listed.text
        refused = http.post(
            "/api/v2/projects/acme/ses-keys",
            headers={"Authorization": f"Bearer {sender}", "Content-Type": "application/json"},
        )
        assert refused.status_code == 403
        key_id = listed.json()["ses_keys"][0]["access_key_id"]
        other = http.delete(
            f"/api/v2/projects/sandbox/ses-keys/{key_id}",
            headers={"Authorization": f"Bearer {manage}"},
        )
        assert other.status_code == 403
        deleted = http.delete(
            f"/api/v2/projects/acme/ses-keys/{key_id}",
            headers={"Authorization": f"Bearer {manage}"},
        )
        assert deleted.status_code == 200
    with pytest.raises(ClientError) as gone:
        acme.get_account()
    assert gone.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_unknown_operations_get_an_aws_shaped_error(env: Env) -> None:
    v2 = client(env, "sesv2", ses_key(env))
    with pytest.raises(ClientError) as unknown:
        v2.list_contact_lists()
    assert unknown.value.response["Error"]["Code"] == "UnknownOperationException"
    v1 = client(env, "ses", ses_key(env))
    with pytest.raises(ClientError) as invalid:
        v1.list_templates()
    assert invalid.value.response["Error"]["Code"] == "InvalidAction"


def test_keys_from_the_cli_work_with_boto3(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    from postroom.cli import main

    storage = ["--data-dir", str(env.tmp / "data"), "--json"]
    assert main(["seskey", "create", "--project", "sandbox", *storage]) == 0
    issued = json.loads(capsys.readouterr().out)
    pair = (issued["access_key_id"], issued["secret_access_key"])
    assert client(env, "ses", pair).get_send_quota()["SentLast24Hours"] == 0.0
    assert main(["seskey", "list", "--project", "sandbox", *storage]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["access_key_id"] for k in listed["ses_keys"]] == [pair[0]]
    assert pair[1] not in json.dumps(listed)
    assert main(["seskey", "delete", pair[0], "--project", "sandbox", *storage]) == 0
    with pytest.raises(ClientError):
        client(env, "ses", pair).get_send_quota()


def test_suppression_list_operations_and_sends(env: Env) -> None:
    v2 = client(env, "sesv2", ses_key(env))
    v2.put_suppressed_destination(EmailAddress="Gone@Example.net", Reason="BOUNCE")
    v2.put_suppressed_destination(EmailAddress="angry@example.net", Reason="COMPLAINT")
    got = v2.get_suppressed_destination(EmailAddress="gone@example.net")["SuppressedDestination"]
    assert (got["EmailAddress"], got["Reason"]) == ("Gone@Example.net", "BOUNCE")
    listed = v2.list_suppressed_destinations()["SuppressedDestinationSummaries"]
    assert sorted(s["EmailAddress"].lower() for s in listed) == [
        "angry@example.net",
        "gone@example.net",
    ]
    bounces = v2.list_suppressed_destinations(Reasons=["BOUNCE"])["SuppressedDestinationSummaries"]
    assert [s["Reason"] for s in bounces] == ["BOUNCE"]
    first = v2.list_suppressed_destinations(PageSize=1)
    assert len(first["SuppressedDestinationSummaries"]) == 1 and first["NextToken"]
    rest = v2.list_suppressed_destinations(PageSize=1, NextToken=first["NextToken"])
    assert len(rest["SuppressedDestinationSummaries"]) == 1
    sandbox = client(env, "sesv2", ses_key(env, "sandbox"))
    assert sandbox.list_suppressed_destinations()["SuppressedDestinationSummaries"] == []
    with pytest.raises(sandbox.exceptions.NotFoundException):
        sandbox.get_suppressed_destination(EmailAddress="gone@example.net")

    # A send is accepted; suppressed recipients get no delivery (as over SMTP).
    sent = v2.send_email(
        **simple(Destination={"ToAddresses": ["gone@example.net", "ok@example.net"]})
    )
    assert [e.recipient for e in env.queue(sent["MessageId"])] == ["ok@example.net"]
    alone = v2.send_email(**simple(Destination={"ToAddresses": ["GONE@example.net"]}))
    assert env.queue(alone["MessageId"]) == []
    v2.delete_suppressed_destination(EmailAddress="gone@example.net")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.delete_suppressed_destination(EmailAddress="gone@example.net")
    again = v2.send_email(**simple(Destination={"ToAddresses": ["gone@example.net"]}))
    assert [e.recipient for e in env.queue(again["MessageId"])] == ["gone@example.net"]


def test_the_gate_bounds_bodies_before_reading_signatures(env: Env) -> None:
    limit = env.server.app.config.max_message_size
    big = b"Action=SendRawEmail&RawMessage.Data=" + b"A" * (limit * 2)
    with httpx.Client(timeout=60) as http:
        answer = http.post(
            endpoint(env) + "/",
            content=big,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert answer.status_code == 413 and b"MessageRejected" in answer.content


def test_return_paths_and_the_sending_errors_sdks_catch(env: Env) -> None:
    pair = ses_key(env)
    v2, v1 = client(env, "sesv2", pair), client(env, "ses", pair)
    # FeedbackForwardingEmailAddress (v2) and ReturnPath (v1) are the envelope sender: bounce
    # notices go there.
    sent = v2.send_email(**simple(FeedbackForwardingEmailAddress="bounces@example.com"))
    record = next(m for m in env.messages() if m.id == sent["MessageId"])
    assert record.envelope.mail_from == "bounces@example.com"
    assert stored(env, sent["MessageId"])["From"] == "App <app@example.com>"
    mime = b"From: app@example.com\r\nTo: raw@example.net\r\nSubject: raw\r\n\r\nraw body\r\n"
    v1_sent = v1.send_email(
        Source="app@example.com",
        ReturnPath="fb@example.com",
        Destination={"ToAddresses": ["ann@example.net"]},
        Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}},
    )
    record = next(m for m in env.messages() if m.id == v1_sent["MessageId"])
    assert record.envelope.mail_from == "fb@example.com"
    # A verified From with an unverified return path: SES's MAIL FROM error, on both APIs.
    with pytest.raises(v2.exceptions.MailFromDomainNotVerifiedException) as mail_from:
        v2.send_email(**simple(FeedbackForwardingEmailAddress="fb@elsewhere.example"))
    assert "fb@elsewhere.example" in str(mail_from.value)
    with pytest.raises(v1.exceptions.MailFromDomainNotVerifiedException):
        v1.send_email(
            Source="app@example.com",
            ReturnPath="fb@elsewhere.example",
            Destination={"ToAddresses": ["ann@example.net"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}},
        )
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.send_email(**simple(FeedbackForwardingEmailAddress="not an address"))
    # An unverified From stays MessageRejected, whatever the return path.
    with pytest.raises(v2.exceptions.MessageRejected):
        v2.send_email(
            **simple(FromEmailAddress="x@elsewhere.example", FeedbackForwardingEmailAddress="")
        )
    # The reputation guard's pause: SendingPausedException (v2), AccountSendingPausedException
    # (v1), and GetAccount says sending is not enabled.
    guard = env.server.app.reputation
    assert guard is not None
    bad_sending(env)
    assert guard.run_once() == [("acme", "paused")]
    env.invalidate()  # HTTP doors read the change counter at most every 5 s (pipeline/projects)
    with pytest.raises(v2.exceptions.SendingPausedException) as paused:
        v2.send_email(**simple())
    assert paused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(v1.exceptions.AccountSendingPausedException):
        v1.send_raw_email(RawMessage={"Data": mime})
    assert v2.get_account()["SendingEnabled"] is False
    guard.resume("acme", "admin")
    env.invalidate()
    assert v2.get_account()["SendingEnabled"] is True
    v2.send_email(**simple())


@pytest.fixture
def prefixed(tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone) -> Iterator[Env]:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    environment = start_env(tmp_path, ca, dns_zone, clock, ses_prefix="/aws/ses")
    try:
        yield environment
    finally:
        environment.server.stop()


def test_ses_under_a_prefix_of_the_http_listener(prefixed: Env) -> None:
    """--ses-prefix: boto3 with endpoint_url http://HOST:PORT/aws/ses works unchanged (v1 and
    v2), behind the same gate (SigV4, replays); the HTTP listener's own paths are untouched."""
    env = prefixed
    pair = ses_key(env)
    options: dict[str, Any] = {
        "endpoint_url": f"{env.server.base_url}/aws/ses",
        "region_name": "us-east-1",
        "aws_access_key_id": pair[0],
        "aws_secret_access_key": pair[1],
        "config": botocore.config.Config(retries={"max_attempts": 1}),
    }
    v2, v1 = boto3.client("sesv2", **options), boto3.client("ses", **options)
    sent = v2.send_email(**simple())
    assert stored(env, sent["MessageId"])["Subject"] == "Hello from SES"
    assert v2.get_account()["SendingEnabled"] is True
    mime = b"From: app@example.com\r\nTo: raw@example.net\r\nSubject: raw v1\r\n\r\nbody\r\n"
    raw_sent = v1.send_raw_email(RawMessage={"Data": mime})
    assert stored(env, raw_sent["MessageId"])["Subject"] == "raw v1"
    assert "SentLast24Hours" in v1.get_send_quota()
    with pytest.raises(v2.exceptions.MessageRejected):
        v2.send_email(**simple(FromEmailAddress="ceo@elsewhere.example"))
    wrong = boto3.client("sesv2", **{**options, "aws_secret_access_key": "x" * 40})
    with pytest.raises(ClientError) as refused:
        wrong.get_account()
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"

    # A signed send replayed as it was is refused; unsigned requests are refused.
    url = f"{env.server.base_url}/aws/ses/v2/email/outbound-emails"
    body = json.dumps(simple(ReplyToAddresses=["replay@example.com"])).encode()
    request = AWSRequest("POST", url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(*pair), "ses", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    with httpx.Client(timeout=30) as http:
        first = http.post(url, content=body, headers=headers)
        assert first.status_code == 200, first.text
        again = http.post(url, content=body, headers=headers)
        assert again.status_code == 403 and again.headers["x-amzn-ErrorType"].startswith(
            "RequestExpired"
        )
        bare = http.post(url, json=simple())
        assert bare.status_code == 403
        assert bare.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationToken")
        # Paths beside the prefix are the HTTP listener's, with its own rules.
        beside = http.get(f"{env.server.base_url}/aws/sesame")
        assert "x-amzn-ErrorType" not in beside.headers
        assert http.get(f"{env.server.base_url}/livez").status_code == 200
    assert len([m for m in env.messages() if m.summary.subject == "Hello from SES"]) == 2
