"""The suppression list on the real server: `/api/v2/projects/{project}/suppressions` and the
account's `/api/v2/suppressions` (JSON only, 400s naming the field, CSV in and out, every
response validated against the served OpenAPI document), never reachable from another project
or by an API key for the account; and at acceptance, a suppressed recipient is not delivered:
the message is accepted for the others with a `suppressed` event each, and a message whose
every recipient is suppressed is accepted with only events."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import jsonschema
import pytest

from postroom.core.suppression import ACCOUNT
from postroom.suppression.service import SuppressionList

from .conftest import Env

MESSAGE = (
    b"From: App <app@example.com>\r\nTo: Ann <ann@example.net>\r\nSubject: Receipt\r\n\r\n"
    b"Thank you.\r\n"
)
PJ = "/api/v2/projects/{project}/suppressions"


def client(env: Env, project: str | None) -> httpx.Client:
    headers = {}
    if project is not None:
        service = env.server.app.platform_service
        assert service is not None
        issued = service.create_api_key(project, "suppressions", ["manage"])
        headers["Authorization"] = f"Bearer {issued.token}"
    return httpx.Client(base_url=env.server.base_url, headers=headers, timeout=30)


def call(
    api: httpx.Client, method: str, template: str, status: int, body: Any = None, **path: str
) -> Any:
    """Make the request; check the status and the body against the OpenAPI document."""
    response = api.request(method, template.format(**path), json=body)
    assert response.status_code == status, response.text
    doc = api.get("/api/v2/openapi.json").json()
    operation = doc["paths"][template][method.lower()]
    content = operation["responses"][str(status)]["content"]
    if "application/json" in content:
        schema = content["application/json"]["schema"]
        jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(
            response.json()
        )
        return response.json()
    return response.text


def test_the_list_through_the_api(env: Env) -> None:
    with client(env, "acme") as api:
        added = call(
            api, "POST", PJ, 201,
            {"address": "Gone@Example.net", "reason": "bounce", "detail": "5.1.1"},
            project="acme",
        )  # fmt: skip
        assert (added["address"], added["reason"], added["scope"]) == (
            "Gone@Example.net",
            "bounce",
            "project",
        )
        one = call(api, "GET", PJ + "/{address}", 200, project="acme", address="gone@example.NET")
        assert one == added
        imported = call(
            api, "POST", PJ + "/import", 200,
            {"csv": "email,reason\nA@example.org,complaint\nb@example.org,\n", "reason": "manual"},
            project="acme",
        )  # fmt: skip
        assert imported == {"imported": 2}
        page = call(api, "GET", PJ, 200, project="acme")
        assert [(e["address"], e["reason"]) for e in page["suppressions"]] == [
            ("A@example.org", "complaint"),
            ("b@example.org", "manual"),
            ("Gone@Example.net", "bounce"),
        ]
        first = api.get(PJ.format(project="acme"), params={"limit": 2}).json()
        assert first["next"] == "b@example.org"
        rest = api.get(PJ.format(project="acme"), params={"after": first["next"]}).json()
        assert [e["address"] for e in rest["suppressions"]] == ["Gone@Example.net"]
        found = api.get(PJ.format(project="acme"), params={"search": "EXAMPLE.ORG"}).json()
        assert len(found["suppressions"]) == 2
        exported = call(api, "GET", PJ + "/export", 200, project="acme")
        assert exported.splitlines()[0] == "address,reason,created,expires,detail"
        assert len(exported.splitlines()) == 4
        deleted = call(
            api, "DELETE", PJ + "/{address}", 200, project="acme", address="b@example.org"
        )
        assert deleted == {"deleted": "b@example.org"}
        call(api, "DELETE", PJ + "/{address}", 404, project="acme", address="b@example.org")
        for body, field in (
            ({"address": "not an address"}, "address"),
            ({"address": "x@example.org", "reason": "annoying"}, "reason"),
            ({"address": "x@example.org", "expires": "tomorrow"}, "expires"),
            ({"address": "x@example.org", "expires": "2020-01-01T00:00:00Z"}, "expires"),
            ({"address": "x@example.org", "colour": "red"}, "colour"),
            ({"address": ["x@example.org"]}, "address"),
        ):
            assert call(api, "POST", PJ, 400, body, project="acme")["Field"] == field
        bad_csv = {"csv": "address\nok@example.org\nbroken\n"}
        refused = call(api, "POST", PJ + "/import", 400, bad_csv, project="acme")
        assert refused["Field"] == "csv" and refused["Error"].startswith("line 3:")
        assert api.get(PJ.format(project="acme"), params={"limit": "0"}).json()["Field"] == "limit"
        assert api.get(PJ.format(project="acme"), params={"x": "1"}).json()["Field"] == "x"
        not_json = api.post(
            PJ.format(project="acme"),
            content=b"address=x@example.org",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert not_json.status_code == 415
        # The account-wide list is for admins: an API key may not read or change it.
        assert api.get("/api/v2/suppressions").status_code == 403
        assert api.post("/api/v2/suppressions", json={"address": "x@y.org"}).status_code == 403


def test_another_projects_list_is_never_reachable(env: Env) -> None:
    with client(env, "acme") as acme:
        call(acme, "POST", PJ, 201, {"address": "secret@example.net"}, project="acme")
    with client(env, "sandbox") as other:
        for method, path in (
            ("GET", "/api/v2/projects/acme/suppressions"),
            ("GET", "/api/v2/projects/acme/suppressions/secret@example.net"),
            ("GET", "/api/v2/projects/acme/suppressions/export"),
            ("DELETE", "/api/v2/projects/acme/suppressions/secret@example.net"),
            ("GET", "/api/v2/projects/sandbox/../acme/suppressions"),
            ("GET", "/api/v2/projects/sandbox%2F..%2Facme/suppressions"),
        ):
            response = other.request(method, path)
            assert response.status_code in (403, 404), (path, response.text)
            assert "secret" not in response.text
        assert call(other, "GET", PJ, 200, project="sandbox")["suppressions"] == []
        call(other, "GET", PJ + "/{address}", 404, project="sandbox", address="secret@example.net")
    account(env, "all@example.org", "manual")
    with client(env, None) as open_mode:  # no admin user: reads only
        call(open_mode, "GET", PJ, 404, project="nope")
        listed = call(open_mode, "GET", "/api/v2/suppressions", 200)
        assert [(e["address"], e["scope"]) for e in listed["suppressions"]] == [
            ("all@example.org", "account")
        ]
        for method, path in (
            ("POST", "/api/v2/suppressions"),
            ("POST", "/api/v2/projects/acme/suppressions"),
            ("DELETE", "/api/v2/projects/acme/suppressions/secret@example.net"),
        ):
            response = open_mode.request(method, path, json={"address": "x@example.org"})
            assert response.status_code == 403 and "open mode" in response.json()["Error"]


def account(env: Env, address: str, reason: str) -> None:
    """An account-wide entry (the API gives that list to admins only)."""
    SuppressionList(env.store.suppressions, env.clock).add(ACCOUNT, address, reason)


@pytest.mark.parametrize("env", [False, True], indirect=True, ids=["thread", "writer-process"])
def test_suppressed_recipients_are_not_delivered(env: Env) -> None:
    with client(env, "acme") as api:
        call(api, "POST", PJ, 201, {"address": "Gone@example.net", "reason": "bounce"},
             project="acme")  # fmt: skip
    with client(env, "sandbox") as other:
        call(other, "POST", PJ, 201, {"address": "other@example.net"}, project="sandbox")
    account(env, "everyone-hates@example.net", "complaint")
    with env.smtp() as smtp:
        refused = smtp.sendmail(
            "app@example.com",
            [
                "ann@example.net",
                "gone@EXAMPLE.net",
                "everyone-hates@example.net",
                "other@example.net",
            ],
            MESSAGE,
        )
        assert refused == {}  # accepted for every recipient at the SMTP level
        smtp.sendmail("app@example.com", ["gone@example.net"], MESSAGE)
    messages = {len(m.envelope.recipients): m for m in env.messages()}
    mixed, alone = messages[4], messages[1]
    delivered = sorted(e.recipient for e in env.queue(mixed.id))
    assert delivered == ["ann@example.net", "other@example.net"]  # sandbox's list is not acme's
    assert env.queue(alone.id) == []
    assert alone.status == "suppressed" and mixed.status == "queued"
    with client(env, "acme") as api:
        events = api.get("/api/v2/projects/acme/events", params={"type": "suppressed"}).json()
    seen = [(e["message"], e["recipient"], e["detail"]) for e in events["events"]]
    assert seen == [
        (mixed.id, "gone@EXAMPLE.net", {"reason": "bounce", "scope": "project"}),
        (mixed.id, "everyone-hates@example.net", {"reason": "complaint", "scope": "account"}),
        (alone.id, "gone@example.net", {"reason": "bounce", "scope": "project"}),
    ]


def test_a_hard_bounce_suppresses_the_next_message(env: Env) -> None:
    with env.smtp() as smtp:
        smtp.sendmail("app@example.com", ["gone@example.net", "ann@example.net"], MESSAGE)
    queue = env.store.queue
    claimed = queue.claim("w", env.clock.now(), timedelta(minutes=5), 10)
    gone = next(e for e in claimed if e.recipient == "gone@example.net")
    detail = {"code": 550, "enhanced": "5.1.1", "reason": "userunknown", "hard": True}
    assert queue.fail(gone.id, "w", env.clock.now(), "550 5.1.1 no such user", detail)
    deadline = time.monotonic() + 20
    with client(env, "acme") as api:
        while True:
            listed = call(api, "GET", PJ, 200, project="acme")["suppressions"]
            if listed or time.monotonic() > deadline:
                break
            env.tick(2)  # the server's feed reads the event log every 2 s of its fake clock
            time.sleep(0.2)
    assert [(e["address"], e["reason"], e["detail"]) for e in listed] == [
        ("gone@example.net", "bounce", "userunknown 5.1.1 550")
    ]
    assert listed[0]["event_id"] is not None
    with env.smtp() as smtp:
        smtp.sendmail("app@example.com", ["gone@example.net"], MESSAGE)
    (latest,) = [m for m in env.messages() if len(m.envelope.recipients) == 1]
    assert latest.status == "suppressed" and env.queue(latest.id) == []


def test_a_change_to_the_list_applies_to_the_next_message_of_an_open_session(env: Env) -> None:
    """No cache stands between the list and the door: an address added (or removed) between
    two messages of one SMTP session applies to the second."""

    def message(n: int) -> bytes:
        return MESSAGE.replace(b"Subject: Receipt", b"Subject: Receipt %d" % n)

    with env.smtp() as smtp, client(env, "acme") as api:
        smtp.sendmail("app@example.com", ["ann@example.net"], message(1))
        call(api, "POST", PJ, 201, {"address": "ann@example.net"}, project="acme")
        smtp.sendmail("app@example.com", ["ann@example.net"], message(2))
        response = api.delete(PJ.format(project="acme") + "/ann@example.net")
        assert response.status_code == 200, response.text
        smtp.sendmail("app@example.com", ["ann@example.net"], message(3))
    statuses = sorted((m.summary.subject, m.status) for m in env.messages())
    assert statuses == [
        ("Receipt 1", "queued"),
        ("Receipt 2", "suppressed"),
        ("Receipt 3", "queued"),
    ]


def test_messages_accepted_at_once_each_get_their_own_answer(env: Env) -> None:
    """Sessions submitting at the same time share the list's reads (pipeline/shared_reads.py):
    each message still leaves out exactly its own suppressed recipients."""
    with client(env, "acme") as api:
        for i in range(0, 8, 2):  # every other session's own recipient is suppressed
            call(api, "POST", PJ, 201, {"address": f"own{i}@example.net"}, project="acme")
    account(env, "everyone-hates@example.net", "complaint")

    def send(i: int) -> None:
        with env.smtp() as smtp:
            for _ in range(3):
                recipients = [f"own{i}@example.net", "everyone-hates@example.net", "x@example.net"]
                smtp.sendmail("app@example.com", recipients, MESSAGE)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(8)))
    messages = env.messages()
    assert len(messages) == 24
    for message in messages:
        own = message.envelope.recipients[0]
        delivered = sorted(e.recipient for e in env.queue(message.id))
        expected = ["x@example.net"] if int(own[3]) % 2 == 0 else [own, "x@example.net"]
        assert delivered == sorted(expected), (own, delivered)
