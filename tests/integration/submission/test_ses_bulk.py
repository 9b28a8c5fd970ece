"""SendBulkEmail's entries are checked, signed and committed together (one request through
AcceptancePipeline.accept_many), yet each is accepted or refused on its own: driven with the
real boto3 `sesv2` client against a running server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.dnszone import dkimpy_verify

from .conftest import Env
from .test_ses_api import client, env, ses_key, stored

__all__ = ["env"]  # the fixture, imported for the tests below


def _entry(address: str, name: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"Destination": {"ToAddresses": [address]}}
    if name is not None:
        data = json.dumps({"name": name})
        entry["ReplacementEmailContent"] = {
            "ReplacementTemplate": {"ReplacementTemplateData": data}
        }
    return entry


def test_bulk_entries_refused_alone_lose_none_of_the_others(env: Env) -> None:
    v2 = client(env, "sesv2", ses_key(env))
    v2.create_email_template(
        TemplateName="news", TemplateContent={"Subject": "Hi {{name}}", "Text": "for {{name}}"}
    )
    v2.put_suppressed_destination(EmailAddress="gone@example.net", Reason="BOUNCE")
    env.set_project(daily_quota=4)
    entries = [
        _entry("r0@example.net", "n0"),
        _entry("gone@example.net", "gone"),  # suppressed: accepted, no delivery
        _entry("bad@localhost", "bad"),  # never delivered: refused before the pipeline
        _entry("r3@example.net"),  # no `name`: the template cannot be rendered
        _entry("r4@example.net", "n4"),
        _entry("r5@example.net", "n5"),
        _entry("r6@example.net", "n6"),  # the fifth send: over the daily quota of 4
        _entry("r7@example.net", "n7"),
    ]
    answer = v2.send_bulk_email(
        FromEmailAddress="app@example.com",
        DefaultContent={"Template": {"TemplateName": "news", "TemplateData": "{}"}},
        BulkEmailEntries=entries,
    )
    results = answer["BulkEmailEntryResults"]
    assert [r["Status"] for r in results] == [
        "SUCCESS",
        "SUCCESS",
        "INVALID_PARAMETER",
        "INVALID_PARAMETER",
        "SUCCESS",
        "SUCCESS",
        "ACCOUNT_DAILY_QUOTA_EXCEEDED",
        "ACCOUNT_DAILY_QUOTA_EXCEEDED",
    ]
    assert "'name'" in results[3]["Error"] and "Daily" in results[6]["Error"]
    sent = {i: results[i]["MessageId"] for i in (0, 1, 4, 5)}
    assert len(set(sent.values())) == 4
    records = {m.id: m for m in env.messages()}
    assert sorted(records) == sorted(sent.values())  # the refused ones stored nothing
    for index, name in ((0, "n0"), (4, "n4"), (5, "n5")):
        message_id = sent[index]
        assert records[message_id].status == "queued"
        assert [e.recipient for e in env.queue(message_id)] == [f"r{index}@example.net"]
        message = stored(env, message_id)
        assert message["Subject"] == f"Hi {name}" and message["To"] == f"r{index}@example.net"
        assert asyncio.run(asyncio.to_thread(dkimpy_verify, env.raw(records[message_id]), env.zone))
    assert records[sent[1]].status == "suppressed" and env.queue(sent[1]) == []
    ids = {stored(env, message_id)["Message-ID"] for message_id in sent.values()}
    assert len(ids) == 4  # each its own Message-ID, signed with it
    assert v2.get_account()["SendQuota"]["SentLast24Hours"] == 4.0


def test_bulk_into_a_capture_project(env: Env) -> None:
    v2 = client(env, "sesv2", ses_key(env, "sandbox"))
    answer = v2.send_bulk_email(
        FromEmailAddress="anyone@unverified.example",
        DefaultContent={
            "Template": {
                "TemplateContent": {"Subject": "To {{name}}", "Text": "x"},
                "TemplateData": '{"name": "all"}',
            }
        },
        BulkEmailEntries=[_entry(f"c{i}@example.net", f"c{i}") for i in range(5)]
        + [_entry("root@localhost")],  # a capture project captures whatever the address
    )
    results = answer["BulkEmailEntryResults"]
    assert [r["Status"] for r in results] == ["SUCCESS"] * 6
    records = {m.id: m for m in env.messages("sandbox")}
    assert sorted(records) == sorted(r["MessageId"] for r in results)
    assert all(m.status == "captured" for m in records.values()) and env.queue() == []
    subjects = sorted(stored(env, r["MessageId"], "sandbox")["Subject"] for r in results)
    assert subjects == ["To all", "To c0", "To c1", "To c2", "To c3", "To c4"]
