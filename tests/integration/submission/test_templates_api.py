"""Templates per project (/api/v2/projects/{project}/templates): versions, preview, clear
errors for malformed templates and missing variables; sending with a template id and data
through the native send API (single and batch). Real server, real HTTP client."""

from __future__ import annotations

import email
from email.policy import default
from typing import Any

import httpx

from .conftest import Env
from .test_native_send import key, post

T = "/api/v2/projects/acme/templates"
WELCOME = {
    "name": "welcome",
    "subject": "Welcome, {{name}}",
    "text": "Hi {{name}}{{#if plan}}, on {{plan}}{{/if}}.\n{{#each items}}- {{this}}\n{{/each}}",
    "html": "<p>Hi {{name}}</p>{{#each items}}<li>{{this}}</li>{{/each}}",
}


def call(env: Env, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=env.server.base_url, timeout=30) as http:
        if body is None:
            return http.request(method, path, headers=headers)
        return http.request(method, path, json=body, headers=headers)


def test_templates_are_versioned_previewed_and_checked(env: Env) -> None:
    manage = key(env, scopes=("manage",))
    created = call(env, manage, "POST", T, WELCOME)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1
    assert call(env, manage, "POST", T, WELCOME).json()["Field"] == "name"
    updated = call(env, manage, "PUT", f"{T}/welcome", {**WELCOME, "subject": "Hello {{name}}"})
    assert updated.status_code == 200 and updated.json()["version"] == 2
    assert call(env, manage, "GET", f"{T}/welcome").json()["subject"] == "Hello {{name}}"
    assert (
        call(env, manage, "GET", f"{T}/welcome?version=1").json()["subject"] == "Welcome, {{name}}"
    )
    listed = call(env, manage, "GET", T).json()
    assert [(t["name"], t["version"]) for t in listed["templates"]] == [("welcome", 2)]

    data = {"name": "<Ann & Bo>", "items": ["a<b", "c"], "plan": "pro"}
    preview = call(env, manage, "POST", f"{T}/welcome/preview", {"data": data})
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert shown["subject"] == "Hello <Ann & Bo>"
    assert shown["text"] == "Hi <Ann & Bo>, on pro.\n- a<b\n- c\n"
    assert shown["html"] == "<p>Hi &lt;Ann &amp; Bo&gt;</p><li>a&lt;b</li><li>c</li>"
    missing = call(env, manage, "POST", f"{T}/welcome/preview", {"data": {"items": []}})
    assert missing.status_code == 400
    assert missing.json()["Field"] == "data.name" and "'name' is missing" in missing.json()["Error"]

    broken = call(env, manage, "POST", T, {"name": "bad", "subject": "x", "html": "{{#if a}}open"})
    assert broken.status_code == 400 and broken.json()["Field"] == "html"
    helper = call(env, manage, "POST", T, {"name": "bad", "text": "{{lookup . 'x'}}"})
    assert helper.status_code == 400 and helper.json()["Field"] == "text"
    bad_name = call(env, manage, "POST", T, {"name": "../x", "text": "x"})
    assert bad_name.status_code == 400 and bad_name.json()["Field"] == "name"
    assert call(env, manage, "GET", f"{T}/nope").status_code == 404

    other = key(env, "sandbox", scopes=("manage",))
    assert call(env, other, "GET", f"{T}/welcome").status_code == 403
    assert call(env, other, "GET", "/api/v2/projects/sandbox/templates").json()["templates"] == []
    sender = key(env)
    assert call(env, sender, "GET", T).status_code == 403  # send scope does not manage

    assert call(env, manage, "DELETE", f"{T}/welcome").json() == {"deleted": "welcome"}
    assert call(env, manage, "GET", f"{T}/welcome").status_code == 404


async def test_sending_with_a_template(env: Env) -> None:
    manage = key(env, scopes=("manage",))
    assert call(env, manage, "POST", T, WELCOME).status_code == 201
    token = key(env)
    body = {
        "from": "app@example.com",
        "to": "ann@example.net",
        "template": {"id": "welcome", "data": {"name": "Ann", "items": ["x"]}},
    }
    sent = await post(env, token, body)
    assert sent.status_code == 200, sent.text
    [record] = env.messages()
    msg = email.message_from_bytes(env.raw(record), policy=default)
    assert msg["Subject"] == "Welcome, Ann" and msg["DKIM-Signature"] is not None
    html = msg.get_body(("html",))
    assert html is not None and "<li>x</li>" in html.get_content()

    missing = await post(env, token, {**body, "template": {"id": "welcome", "data": {}}})
    assert missing.status_code == 400 and missing.json()["Field"] == "template.data.name"
    unknown = await post(env, token, {**body, "template": {"id": "nope", "data": {}}})
    assert unknown.status_code == 404
    both = await post(env, token, {**body, "subject": "x"})
    assert both.status_code == 400 and both.json()["Field"] == "subject"
    old = await post(env, token, {**body, "template": {"id": "welcome", "version": 7, "data": {}}})
    assert old.status_code == 404

    batch = {
        "messages": [
            {**body, "to": f"{n}@example.net", "template": {"id": "welcome", "data": {"name": n}}}
            for n in ("bo", "cy")
        ]
        + [{**body, "template": {"id": "welcome", "data": {"nom": "x"}}}]
    }
    answer = (await post(env, token, batch, "/api/v2/messages/batch")).json()
    assert [m["status"] for m in answer["messages"]] == [200, 200, 400]
    assert answer["messages"][2]["Field"] == "template.data.name"
    subjects = sorted(m.summary.subject for m in env.messages() if m.summary is not None)
    assert subjects == ["Welcome, Ann", "Welcome, bo", "Welcome, cy"]
