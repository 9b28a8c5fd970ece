"""The queue views and actions on the real server (`/api/v2/projects/{project}/queue...`) and
on the command line (`postroom queue`): responses validate against the OpenAPI document, bad
input is a 4xx naming the field, state changes are JSON-only and refused in open mode, and a
project's key reaches only its own queue."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from postroom.cli import main as cli

from .conftest import Env

MESSAGE = b"From: App <app@example.com>\r\nTo: x\r\nSubject: Queue\r\n\r\nHello.\r\n"
Q = "/api/v2/projects/{project}/queue"


def client(env: Env, project: str | None) -> httpx.Client:
    headers = {}
    if project is not None:
        service = env.server.app.platform_service
        assert service is not None
        issued = service.create_api_key(project, "queue", ["manage"])
        headers["Authorization"] = f"Bearer {issued.token}"
    return httpx.Client(base_url=env.server.base_url, headers=headers, timeout=30)


def call(
    api: httpx.Client, method: str, template: str, status: int, body: Any = None, **path: Any
) -> Any:
    response = api.request(method, template.format(**path), json=body)
    assert response.status_code == status, response.text
    doc = api.get("/api/v2/openapi.json").json()
    operation = doc["paths"][template][method.lower()]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(
        response.json()
    )
    return response.json()


def test_queue_views_and_actions(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    with env.smtp() as smtp:
        smtp.sendmail("app@example.com", ["a@example.net", "b@slow.example"], MESSAGE)
        smtp.sendmail("app@example.com", ["c@slow.example"], MESSAGE)
    entries = {e.recipient: e for e in env.queue()}
    q = Q
    with client(env, "acme") as api:
        summary = call(api, "GET", q, 200, project="acme")
        assert summary["states"]["queued"] == 3
        assert [(d["domain"], d["queued"]) for d in summary["domains"]] == [
            ("slow.example", 2),
            ("example.net", 1),
        ]
        listed = call(api, "GET", f"{q}/entries", 200, project="acme")
        assert len(listed["entries"]) == 3 and listed["next"] is None
        held = call(
            api,
            "POST",
            f"{q}/{{action}}",
            200,
            {"domain": "slow.example"},
            project="acme",
            action="hold",
        )
        assert held["count"] == 2
        found = call(api, "GET", f"{q}/entries", 200, project="acme")["entries"]
        assert {e["recipient"]: e["state"] for e in found} == {
            "a@example.net": "queued",
            "b@slow.example": "held",
            "c@slow.example": "held",
        }
        one = entries["c@slow.example"].id
        path = f"{q}/entries/{{entry}}/{{action}}"
        released = call(api, "POST", path, 200, {}, project="acme", entry=one, action="release")
        assert released["entry"]["state"] == "queued" and released["changed"] == [one]
        again = call(api, "POST", path, 409, {}, project="acme", entry=one, action="release")
        assert again["Field"] == "entry" and "queued" in again["Error"]
        cancelled = call(api, "POST", path, 200, {}, project="acme", entry=one, action="cancel")
        assert cancelled["entry"]["state"] == "cancelled"
        assert call(api, "POST", path, 404, {}, project="acme", entry=999999, action="cancel")
        for body, field in (
            ({}, "ids"),
            ({"ids": ["1"]}, "ids"),
            ({"ids": [True]}, "ids"),
            ({"state": "lost"}, "state"),
            ({"all": "yes"}, "all"),
            ({"colour": "red"}, "colour"),
            ({"messages": "x"}, "messages"),
        ):
            error = call(api, "POST", f"{q}/{{action}}", 400, body, project="acme", action="hold")
            assert error["Field"] == field, body
        response = api.post(Q.format(project="acme") + "/explode", json={"all": True})
        assert response.status_code == 404
        text = api.post(
            Q.format(project="acme") + "/hold",
            content=b'{"all": true}',
            headers={"Content-Type": "text/plain"},
        )
        assert text.status_code == 415
        bad = api.get(Q.format(project="acme") + "/entries", params={"state": "lost"})
        assert bad.status_code == 400 and bad.json()["Field"] == "state"
    # Another project's key: not its path, and its own path never reaches acme's entries.
    with client(env, "sandbox") as other:
        assert (
            other.post(Q.format(project="acme") + "/cancel", json={"all": True}).status_code == 403
        )
        ids = [e.id for e in env.queue()]
        gone = call(
            other, "POST", f"{q}/{{action}}", 200, {"ids": ids}, project="sandbox", action="cancel"
        )
        assert gone["changed"] == []
    # Open mode may look, not act.
    with client(env, None) as anonymous:
        assert anonymous.get(Q.format(project="acme")).status_code == 200
        refused = anonymous.post(Q.format(project="acme") + "/cancel", json={"all": True})
        assert refused.status_code == 403
    assert {e.recipient: e.status for e in env.queue()} == {
        "a@example.net": "queued",
        "b@slow.example": "held",
        "c@slow.example": "cancelled",
    }
    # The command line, on the same database while the server runs.
    data_dir = str(env.tmp / "data")
    assert cli(["queue", "show", "--project", "acme", "--data-dir", data_dir, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["states"]["held"] == 1 and shown["states"]["cancelled"] == 1
    args = ["--project", "acme", "--data-dir", data_dir, "--json"]
    assert cli(["queue", "release", "--state", "held", *args]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 1
    assert cli(["queue", "cancel", *args]) == 2  # no filter: refused, nothing done
    assert json.loads(capsys.readouterr().out)["Field"] == "filter"
    assert cli(["queue", "cancel", "--all", *args]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 2
    assert cli(["queue", "list", "--state", "cancelled", *args]) == 0
    assert len(json.loads(capsys.readouterr().out)["entries"]) == 3
    # The event log from the command line.
    assert cli(["events", "list", "--type", "cancelled", "--limit", "2", *args]) == 0
    page = json.loads(capsys.readouterr().out)
    assert [e["type"] for e in page["events"]] == ["cancelled"] * 2 and page["next"]
    assert (
        cli(["events", "list", "--type", "send,cancelled", "--after", str(page["next"]), *args])
        == 0
    )
    assert [e["type"] for e in json.loads(capsys.readouterr().out)["events"]] == ["cancelled"]
    assert cli(["events", "list", "--type", "delivered", *args]) == 2
    assert json.loads(capsys.readouterr().out)["Field"] == "type"
    assert cli(["events", "list", "--since", "yesterday", *args]) == 2
    assert json.loads(capsys.readouterr().out)["Field"] == "since"


def test_delivery_settings(env: Env) -> None:
    s = "/api/v2/projects/{project}/delivery-settings"
    with client(env, "acme") as api:
        assert call(api, "GET", s, 200, project="acme") == {
            "project": "acme",
            "bounce_notices": True,
            "ip_pool": None,
        }
        off = call(api, "PUT", s, 200, {"bounce_notices": False}, project="acme")
        assert off["bounce_notices"] is False
        assert call(api, "GET", s, 200, project="acme")["bounce_notices"] is False
        assert env.store.delivery_settings.get("acme").bounce_notices is False
        for body, field in (
            ({"bounce_notices": "no"}, "bounce_notices"),
            ({"x": 1}, "x"),
            ({}, "bounce_notices"),
            ({"ip_pool": "dedicated"}, "ip_pool"),  # no pool is configured here
            ({"ip_pool": 7}, "ip_pool"),
        ):
            assert call(api, "PUT", s, 400, body, project="acme")["Field"] == field
    with client(env, "sandbox") as other:
        response = other.put(s.format(project="acme"), json={"bounce_notices": True})
        assert response.status_code == 403
    with client(env, None) as anonymous:
        assert call(anonymous, "GET", s, 404, project="nope")["Error"]
        response = anonymous.put(s.format(project="acme"), json={"bounce_notices": True})
        assert response.status_code == 403
    assert env.store.delivery_settings.get("acme").bounce_notices is False
    service = env.server.app.platform_service
    assert service is not None
    service.delete_project("acme")  # its settings go with it
    service.create_project("acme", "Acme again", "capture")
    assert env.store.delivery_settings.get("acme").bounce_notices is True
