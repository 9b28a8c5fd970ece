"""The native send API (POST /api/v2/messages and /batch) on a real server with a real HTTP
client: a live project's message runs the submission path (verified identities, quota with
429 and Retry-After, DKIM, queue), each recipient is answered, bad input names its field,
Idempotency-Key sends once under concurrent retries, a batch answers each message."""

from __future__ import annotations

import asyncio
import base64
import email
from email.message import Message
from email.policy import default
from typing import Any

import httpx

from postroom.core.platform import ApiKey
from postroom.core.secrets import new_api_key
from tests.dnszone import dkimpy_verify

from .conftest import CREATED, Env


def key(env: Env, project: str = "acme", scopes: tuple[Any, ...] = ("send",)) -> str:
    issued = new_api_key()
    env.platform.add_api_key(ApiKey(issued.key_id, project, "app", scopes, issued.digest, CREATED))
    return issued.token


def message(**extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "from": "App <app@example.com>",
        "to": ["a@example.net", {"email": "b@example.org", "name": "Bee"}],
        "subject": "Native",
        "text": "Hello natively\n",
    }
    values.update(extra)
    return values


async def post(
    env: Env, token: str, body: Any, path: str = "/api/v2/messages", **headers: str
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=env.server.base_url, timeout=60) as http:
        return await http.post(
            path, json=body, headers={"Authorization": f"Bearer {token}", **headers}
        )


def parsed(env: Env, message_id: str, project: str = "acme") -> Message:
    [record] = [m for m in env.messages(project) if m.id == message_id]
    return email.message_from_bytes(env.raw(record), policy=default)


async def test_live_message_is_checked_signed_queued_and_answered_per_recipient(env: Env) -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    body = message(
        html='<p>Hi <img src="cid:logo@app"></p>',
        cc="c@example.net",
        bcc=["hidden@example.net"],
        reply_to="Support <support@example.com>",
        attachments=[
            {
                "filename": "logo.png",
                "content": png,
                "content_type": "image/png",
                "content_id": "logo@app",
            },
            {"filename": "report.txt", "content": base64.b64encode(b"numbers").decode()},
        ],
        headers={"X-Campaign": "spring"},
        tags=["welcome", "onboarding"],
        metadata={"user_id": "42"},
    )
    response = await post(env, key(env), body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["project"] == "acme" and answer["metadata"] == {"user_id": "42"}
    assert answer["recipients"] == [
        {"email": address, "status": "accepted"}
        for address in ("a@example.net", "b@example.org", "c@example.net", "hidden@example.net")
    ]
    [record] = env.messages()
    assert record.id == answer["id"] and record.status == "queued"
    assert sorted(e.recipient for e in env.queue(record.id)) == [
        "a@example.net",
        "b@example.org",
        "c@example.net",
        "hidden@example.net",
    ]
    raw = env.raw(record)
    assert await asyncio.to_thread(dkimpy_verify, raw, env.zone)
    msg = email.message_from_bytes(raw, policy=default)
    assert msg["Bcc"] is None and msg["X-Campaign"] == "spring"
    assert msg["Reply-To"] == "Support <support@example.com>"
    assert set(record.tags) >= {"welcome", "onboarding"}
    inline = [p for p in msg.walk() if p["Content-ID"] == "<logo@app>"]
    assert inline and inline[0].get_content_type() == "image/png"
    assert inline[0].get_content_disposition() == "inline"
    attached = [p for p in msg.walk() if p.get_filename() == "report.txt"]
    assert attached and attached[0].get_content() == "numbers"


async def test_recipients_are_refused_one_by_one(env: Env) -> None:
    body = message(to=["a@example.net", "root@localhost", "x@[127.0.0.1]"])
    response = await post(env, key(env), body)
    assert response.status_code == 200, response.text
    recipients = response.json()["recipients"]
    assert [r["status"] for r in recipients] == ["accepted", "refused", "refused"]
    assert (
        recipients[1]["code"] == "destination_not_allowed"
        and "localhost" in recipients[1]["reason"]
    )
    assert [e.recipient for e in env.queue(response.json()["id"])] == ["a@example.net"]
    none_left = await post(env, key(env), message(to="root@localhost"))
    assert none_left.status_code == 400
    assert none_left.json()["Field"] == "To"


async def test_refusals_are_the_pipelines(env: Env) -> None:
    token = key(env)
    unverified = await post(env, token, message(**{"from": "ceo@elsewhere.example"}))
    assert unverified.status_code == 403
    assert "identities failed the check: ceo@elsewhere.example" in unverified.json()["Error"]
    env.set_project(daily_quota=2)
    assert (await post(env, token, message())).status_code == 200
    over = await post(env, token, message())
    assert over.status_code == 429 and int(over.headers["Retry-After"]) > 0
    assert over.json()["Field"] == "daily_quota"
    assert len(env.messages()) == 1


async def test_bad_input_names_the_field(env: Env) -> None:
    token = key(env)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"to": "a@example.net", "text": "x"}, "from"),
        (message(to=["a@example.net", "not an address"]), "to[1]"),
        (message(cc=["jörg@example.net"]), "cc[0]"),  # needs SMTPUTF8: not written here
        (message(to=["a@" + "ü" * 70 + ".example"]), "to[0]"),  # no valid IDN
        (message(to=[]), "to"),
        (message(attachments=[{"filename": "a.bin", "content": "%%%"}]), "attachments[0].content"),
        (message(attachments=[{"content": "AAAA"}]), "attachments[0].filename"),
        (message(headers={"From": "evil@example.com"}), "headers.From"),
        (message(headers={"Bad Name": "x"}), "headers.Bad Name"),
        (message(subject="two\r\nBcc: x@example.net"), "subject"),
        (message(tags="one"), "tags"),
        (message(metadata={"a": 1}), "metadata.a"),
        (message(colour="red"), "colour"),
        (message(text=None), "text"),
        ({"raw": "not base64!"}, "raw"),
        ({"raw": base64.b64encode(b"Subject: x\r\n\r\nbody\r\n").decode()}, "from"),
    ]
    for body, field in cases:
        response = await post(env, token, body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["Field"] == field, (body, response.json())
    async with httpx.AsyncClient(base_url=env.server.base_url, timeout=30) as http:
        not_json = await http.post(
            "/api/v2/messages",
            content=b"{",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        form = await http.post(
            "/api/v2/messages",
            data={"from": "app@example.com"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert not_json.status_code == 400 and not_json.json()["Field"] == "body"
    assert form.status_code == 415
    assert env.messages() == []


async def test_an_internationalized_domain_goes_out_as_its_a_label(env: Env) -> None:
    response = await post(env, key(env), message(to=["Jörg <j@bücher.example>"]))
    assert response.status_code == 200, response.text
    assert "j@xn--bcher-kva.example" in response.text
    (stored,) = env.messages()
    assert stored.envelope.recipients == ("j@xn--bcher-kva.example",)


async def test_raw_mime_goes_the_same_way(env: Env) -> None:
    raw = (
        b"From: App <app@example.com>\r\nTo: a@example.net\r\nCc: c@example.net\r\n"
        b"Subject: raw one\r\n\r\nRaw body\r\n"
    )
    response = await post(env, key(env), {"raw": base64.b64encode(raw).decode(), "tags": ["raw"]})
    assert response.status_code == 200, response.text
    assert [r["email"] for r in response.json()["recipients"]] == ["a@example.net", "c@example.net"]
    msg = parsed(env, response.json()["id"])
    assert msg["Subject"] == "raw one" and msg["DKIM-Signature"] is not None
    only_to = await post(
        env, key(env), {"raw": base64.b64encode(raw).decode(), "to": ["z@example.net"]}
    )
    assert [r["email"] for r in only_to.json()["recipients"]] == ["z@example.net"]
    spoofed = raw.replace(b"app@example.com", b"ceo@elsewhere.example")
    refused = await post(env, key(env), {"raw": base64.b64encode(spoofed).decode()})
    assert refused.status_code == 403


async def test_scopes_and_projects(env: Env) -> None:
    read_only = await post(env, key(env, scopes=("read",)), message())
    assert read_only.status_code == 403 and "send scope" in read_only.json()["Error"]
    other = await post(env, key(env, "sandbox"), message(project="acme"))
    assert other.status_code == 400 and other.json()["Field"] == "project"
    captured = await post(
        env, key(env, "sandbox"), message(**{"from": "anyone@unverified.example"})
    )
    assert captured.status_code == 200, captured.text
    [record] = env.messages("sandbox")
    assert record.status == "captured" and env.queue(record.id) == []
    assert env.messages("acme") == []
    async with httpx.AsyncClient(base_url=env.server.base_url, timeout=30) as http:
        bad_key = await http.post(
            "/api/v2/messages", json=message(), headers={"Authorization": "Bearer prk_nope"}
        )
    assert bad_key.status_code == 401


async def test_idempotency_key_sends_once_under_concurrent_retries(env: Env) -> None:
    token = key(env)
    body = message()
    answers = await asyncio.gather(
        *(post(env, token, body, **{"Idempotency-Key": "order-1234"}) for _ in range(8))
    )
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 7
    assert len(env.messages()) == 1
    again = await post(env, token, body, **{"Idempotency-Key": "order-1234"})
    assert again.json() == answers[0].json() and again.headers["Idempotent-Replayed"] == "true"
    changed = await post(env, token, message(subject="other"), **{"Idempotency-Key": "order-1234"})
    assert changed.status_code == 422 and changed.json()["Field"] == "Idempotency-Key"
    other_project = await post(env, key(env, "sandbox"), body, **{"Idempotency-Key": "order-1234"})
    assert other_project.status_code == 200 and other_project.json()["project"] == "sandbox"
    bad = await post(env, token, body, **{"Idempotency-Key": "has space"})
    assert bad.status_code == 400 and bad.json()["Field"] == "Idempotency-Key"
    assert len(env.messages()) == 1

    env.clock.advance(24 * 3600 + 1)
    later = await post(env, token, body, **{"Idempotency-Key": "order-1234"})
    assert later.status_code == 200 and later.json()["id"] != answers[0].json()["id"]
    assert len(env.messages()) == 2


async def test_a_throttled_answer_is_not_kept_for_the_key(env: Env) -> None:
    token = key(env)
    env.set_project(daily_quota=1)
    assert (await post(env, token, message(to="a@example.net"))).status_code == 200
    throttled = await post(env, token, message(to="b@example.net"), **{"Idempotency-Key": "k1"})
    assert throttled.status_code == 429
    env.set_project(daily_quota=None)
    retried = await post(env, token, message(to="b@example.net"), **{"Idempotency-Key": "k1"})
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers


async def test_batch_answers_each_message_on_its_own(env: Env) -> None:
    token = key(env)
    batch = {
        "messages": [
            message(to="one@example.net"),
            message(**{"from": "ceo@elsewhere.example"}),
            message(to="three@example.net", attachments="x"),
            "not an object",
            message(to="five@example.net", subject="fifth"),
        ]
    }
    response = await post(env, token, batch, "/api/v2/messages/batch")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["refused"]) == (2, 3)
    statuses = [(m["index"], m["status"]) for m in answer["messages"]]
    assert statuses == [(0, 200), (1, 403), (2, 400), (3, 400), (4, 200)]
    assert answer["messages"][2]["Field"] == "attachments"
    stored = {m.id for m in env.messages()}
    assert stored == {answer["messages"][0]["id"], answer["messages"][4]["id"]}
    too_many = await post(env, token, {"messages": [message()] * 501}, "/api/v2/messages/batch")
    assert too_many.status_code == 400 and too_many.json()["Field"] == "messages"
    empty = await post(env, token, {"messages": []}, "/api/v2/messages/batch")
    assert empty.status_code == 400


async def test_batch_messages_go_through_the_pipeline_together_each_on_its_own(
    env: Env,
) -> None:
    """A batch's messages are checked, signed and committed together (accept_many): a
    suppressed recipient, a refused recipient and the daily quota answer per message, and
    no accepted message is lost to another's refusal."""
    from postroom.suppression.service import SuppressionList

    SuppressionList(env.store.suppressions, env.clock).add("acme", "gone@example.net", "bounce")
    env.set_project(daily_quota=5)
    token = key(env)
    batch = {
        "messages": [
            message(to=["one@example.net", "gone@example.net"], subject="first"),
            message(to=["two@example.net", "root@localhost"], subject="second"),
            message(to="three@example.net", subject="third"),
            message(to="gone@example.net", subject="only suppressed"),
            message(to="four@example.net", subject="over"),  # the sixth send of 5
        ]
    }
    response = await post(env, token, batch, "/api/v2/messages/batch")
    assert response.status_code == 200, response.text
    answer = response.json()
    statuses = [(m["index"], m["status"]) for m in answer["messages"]]
    assert statuses == [(0, 200), (1, 200), (2, 200), (3, 200), (4, 429)]
    first, second, third, fourth, _ = answer["messages"]
    assert [(r["email"], r["status"]) for r in first["recipients"]] == [
        ("one@example.net", "accepted"),
        ("gone@example.net", "suppressed"),
    ]
    assert [(r["email"], r["status"]) for r in second["recipients"]] == [
        ("two@example.net", "accepted"),
        ("root@localhost", "refused"),
    ]
    assert fourth["recipients"][0]["status"] == "suppressed"
    assert [e.recipient for e in env.queue(first["id"])] == ["one@example.net"]
    assert [e.recipient for e in env.queue(second["id"])] == ["two@example.net"]
    assert [e.recipient for e in env.queue(third["id"])] == ["three@example.net"]
    assert env.queue(fourth["id"]) == []
    records = {m.id: m for m in env.messages()}
    assert set(records) == {first["id"], second["id"], third["id"], fourth["id"]}
    for sent, subject in ((first, "first"), (second, "second"), (third, "third")):
        assert records[sent["id"]].status == "queued"
        assert parsed(env, sent["id"])["Subject"] == subject
        assert await asyncio.to_thread(dkimpy_verify, env.raw(records[sent["id"]]), env.zone)


async def test_full_batch_of_500(env: Env) -> None:
    token = key(env, "sandbox")
    batch = {"messages": [message(to=f"r{i}@example.net", subject=f"n{i}") for i in range(500)]}
    response = await post(env, token, batch, "/api/v2/messages/batch")
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 500
    assert len(env.store.list("sandbox", None, 0, 1000).messages) == 500


async def test_answers_match_the_openapi_document(env: Env) -> None:
    import jsonschema

    from postroom.api.openapi_v2 import document

    doc = document()

    def check(schema: str, data: Any) -> None:
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"#/components/schemas/{schema}", "components": doc["components"]}
        )
        validator.validate(data)

    token = key(env)
    body = message(
        tags=["t"], metadata={"k": "v"}, attachments=[{"filename": "a.txt", "content": "QQ=="}]
    )
    jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/SendRequest", "components": doc["components"]}
    ).validate(body)
    single = await post(env, token, body)
    check("SendResult", single.json())
    batch = await post(env, token, {"messages": [body, {"from": "x"}]}, "/api/v2/messages/batch")
    check("BatchResult", batch.json())
    check("Error", (await post(env, token, {"from": "x"})).json())


async def test_suppressed_recipients_are_answered_and_skipped(env: Env) -> None:
    from postroom.suppression.service import SuppressionList

    SuppressionList(env.store.suppressions, env.clock).add("acme", "gone@example.net", "bounce")
    token = key(env)
    response = await post(env, token, message(to=["gone@example.net", "ok@example.net"]))
    assert response.status_code == 200, response.text
    assert [(r["email"], r["status"]) for r in response.json()["recipients"]] == [
        ("gone@example.net", "suppressed"),
        ("ok@example.net", "accepted"),
    ]
    assert [e.recipient for e in env.queue(response.json()["id"])] == ["ok@example.net"]
    none_left = await post(env, token, message(to="Gone@example.net"))
    assert none_left.status_code == 200  # accepted, as over SMTP, with no delivery
    assert none_left.json()["recipients"][0]["status"] == "suppressed"
    assert env.queue(none_left.json()["id"]) == []
    captured = await post(env, key(env, "sandbox"), message(to="gone@example.net"))
    assert captured.status_code == 200  # a capture project delivers nothing: no suppression


async def test_open_mode_sends_into_capture_projects_only(env: Env) -> None:
    """No admin exists in these tests' server (open mode): without a key the API sends into
    capture projects, never as a live one."""
    async with httpx.AsyncClient(base_url=env.server.base_url, timeout=30) as http:
        default = await http.post("/api/v2/messages", json=message())
        live = await http.post("/api/v2/messages", json=message(project="acme"))
        batch = await http.post(
            "/api/v2/messages/batch", json={"project": "acme", "messages": [message()]}
        )
        foreign = await http.post(
            "/api/v2/messages", json=message(), headers={"Host": "evil.example"}
        )
    assert default.status_code == 200, default.text
    assert default.json()["project"] == "default"
    assert live.status_code == 400 and live.json()["Field"] == "project"
    assert batch.status_code == 400 and batch.json()["Field"] == "project"
    assert foreign.status_code == 421
    assert env.messages("acme") == []


async def test_a_batch_with_an_idempotency_key_is_sent_once(env: Env) -> None:
    token = key(env)
    batch = {"messages": [message(to=f"b{i}@example.net") for i in range(3)]}
    answers = await asyncio.gather(
        *(
            post(env, token, batch, "/api/v2/messages/batch", **{"Idempotency-Key": "batch-1"})
            for _ in range(4)
        )
    )
    assert {a.status_code for a in answers} == {200}
    assert len({tuple(m["id"] for m in a.json()["messages"]) for a in answers}) == 1
    assert len(env.messages()) == 3


async def test_the_documents_code_samples_send(env: Env) -> None:
    """The curl, Python (httpx) and JavaScript (fetch) examples of the served OpenAPI document,
    run as they are printed (the server's address and a key put in), each send a message."""
    import os
    import shutil
    import subprocess
    import sys

    from postroom.api.openapi_sending import EXAMPLE_BASE

    async with httpx.AsyncClient(base_url=env.server.base_url, timeout=60) as http:
        doc = (await http.get("/api/v2/openapi.json")).json()
    samples = {
        s["label"]: s["source"] for s in doc["paths"]["/api/v2/messages"]["post"]["x-codeSamples"]
    }
    assert sorted(samples) == ["JavaScript (fetch)", "Python (httpx)", "curl"]
    runners = {
        "curl": (["bash", "sample"], "sample"),
        "Python (httpx)": ([sys.executable, "sample.py"], "sample.py"),
        "JavaScript (fetch)": (["node", "sample.mjs"], "sample.mjs"),
    }
    workdir = env.tmp / "samples"
    workdir.mkdir()
    environ = {**os.environ, "POSTROOM_API_KEY": key(env)}
    before = {m.id for m in env.messages()}
    for index, (label, source) in enumerate(sorted(samples.items())):
        command, filename = runners[label]
        if shutil.which(command[0]) is None:
            assert os.environ.get("CI") != "true", (
                f"{command[0]} is needed to run the {label} sample"
            )
            continue
        # Its own Idempotency-Key, so that each sample sends (the same key would replay).
        text = source.replace(EXAMPLE_BASE, env.server.base_url).replace(
            "welcome-42", f"welcome-{index}"
        )
        (workdir / filename).write_text(text)
        done = await asyncio.to_thread(
            subprocess.run, command, cwd=workdir, env=environ, capture_output=True, timeout=60
        )
        assert done.returncode == 0, (label, done.stdout, done.stderr)
        assert b"ann@example.net" in done.stdout, (label, done.stdout)
    sent = [m for m in env.messages() if m.id not in before]
    assert len(sent) == 3
    for record in sent:
        msg = parsed(env, record.id)
        assert msg["Subject"] == "Welcome" and msg["To"] == "ann@example.net"
        assert record.tags == ("welcome",) and record.status == "queued"


async def test_send_at_schedules_until_then_and_can_be_cancelled(env: Env) -> None:
    """A live message with `send_at` is checked, signed and stored at once, but no claim takes
    its deliveries before that time on the server's (fake) clock; until then the queue API
    cancels it; a bad `send_at` is a 400 naming it."""
    from datetime import UTC, datetime, timedelta

    token = key(env, scopes=("send", "manage"))
    start = env.clock.now()
    when = start + timedelta(hours=1)
    stamp = when.isoformat().replace("+00:00", "Z")
    scheduled = await post(env, token, message(send_at=stamp))
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["send_at"] == stamp
    cancelled = await post(env, token, message(send_at=stamp, subject="Cancelled"))
    now_one = await post(env, token, message(subject="Now", to="now@example.net"))
    sched_id, cancel_id = scheduled.json()["id"], cancelled.json()["id"]
    assert {e.next_attempt for e in env.queue(sched_id)} == {when}
    assert parsed(env, sched_id)["DKIM-Signature"] is not None

    queue = env.store.queue
    lease = timedelta(minutes=5)
    claimed = queue.claim("w", env.clock.now(), lease, 100)
    assert [e.message_id for e in claimed] == [now_one.json()["id"]]
    assert queue.complete(claimed[0].id, "w", env.clock.now(), {"code": 250, "text": "OK"})
    env.tick(3600 - 1)
    assert queue.claim("w", env.clock.now(), lease, 100) == []
    async with httpx.AsyncClient(base_url=env.server.base_url, timeout=60) as http:
        answer = await http.post(
            "/api/v2/projects/acme/queue/cancel",
            json={"messages": [cancel_id]},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text
    assert {e.status for e in env.queue(cancel_id)} == {"cancelled"}
    env.tick(1)
    due = queue.claim("w", env.clock.now(), lease, 100)
    assert sorted(e.message_id for e in due) == [sched_id, sched_id]

    # A time already past sends at once; bad ones name the field.
    past = (start - timedelta(days=1)).isoformat()
    late = await post(env, token, message(send_at=past, to="late@example.net"))
    assert late.status_code == 200
    assert [e.message_id for e in queue.claim("w", env.clock.now(), lease, 100)] == [
        late.json()["id"]
    ]
    far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    for bad in ("tomorrow", "2026-01-01T09:00:00", 1767225600, far):
        refused = await post(env, token, message(send_at=bad))
        assert refused.status_code == 400 and refused.json()["Field"] == "send_at", bad


async def test_stored_summary_is_the_parsed_one_without_parsing(env: Env) -> None:
    """A message the API wrote is stored with the summary parsing it gives (its body is not
    parsed back, mime/summary.summarize_built), live (fixed up, signed) and captured."""
    from postroom.mime.summary import summarize

    body = message(
        **{"from": "Ünïcode Ñame <app@example.com>"},
        subject="Grüße, a long subject " + "that folds " * 12,
        html="<p>ignored for text</p>",
        text="Line one\n\tline two — 你好\n" * 30,
        reply_to="Support <support@example.com>",
        tags=["welcome"],
    )
    for project in ("acme", "sandbox"):
        sent = await post(env, key(env, project), body)
        assert sent.status_code == 200, sent.text
        [record] = [m for m in env.messages(project) if m.id == sent.json()["id"]]
        stored, expected = record.summary, summarize(env.raw(record))
        for name in (
            "from_", "to", "cc", "bcc", "reply_to", "subject", "message_id", "date",
            "snippet", "attachments", "header_tags", "return_path", "defects",
        ):  # fmt: skip
            assert getattr(stored, name) == getattr(expected, name), (project, name)
        assert stored.subject.startswith("Grüße") and "你好" in stored.snippet
        assert record.tags[0] == "welcome"
