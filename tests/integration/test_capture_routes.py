"""Capture routing on the capture door, with real smtplib clients: `--capture-route` rules by
SMTP user name and by recipient, stored rules through `/api/v2/capture-routes` (effective from
the next message), and the refusals: a live or missing project, an API key."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from postroom.core.errors import ConfigError
from postroom.platform.factory import open_platform
from tests.harness import ServerThread, make_config

ROUTES = ("user:staging=staging", "rcpt:*@team-a.test=team-a")


def setup_projects(config: Any, live: str | None = None) -> str:
    service = open_platform(config)
    try:
        for name in ("staging", "team-a", "team-b"):
            service.create_project(name)
        if live:
            service.create_project(live, mode="live")
        return service.create_api_key("team-a", "manager", ["manage", "read"]).token
    finally:
        service.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServerThread, str]]:
    config = make_config(tmp_path / "data", capture_route=ROUTES)
    key = setup_projects(config, live="shop")
    srv = ServerThread(config).start()
    try:
        yield srv, key
    finally:
        srv.stop()


def send(port: int, rcpts: list[str], subject: str, user: str | None = None) -> None:
    # No To header: the API's Bcc then lists exactly the envelope recipients stored.
    message = (
        f"From: app@example.com\r\nTo: undisclosed-recipients:;\r\nSubject: {subject}\r\n\r\nhi\r\n"
    )
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        if user:
            client.login(user, "any password")
        client.sendmail("app@example.com", rcpts, message.encode())


def subjects(server: ServerThread, project: str) -> dict[str, list[str]]:
    """Subject -> the envelope recipients stored (the API's Bcc) in a project."""
    prefix = "" if project == "default" else f"/p/{project}"
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        listed = http.get(f"{prefix}/api/v1/messages").json()["messages"]
        out = {}
        for summary in listed:
            full = http.get(f"{prefix}/api/v1/message/{summary['ID']}").json()
            out[summary["Subject"]] = sorted(a["Address"] for a in full["Bcc"])
        return out


def test_option_rules_route_by_user_name_and_by_recipient(
    server: tuple[ServerThread, str],
) -> None:
    srv, _ = server
    port = srv.smtp_port
    send(port, ["dev@anywhere.test", "qa@team-a.test"], "as staging", user="staging")
    send(port, ["qa@Team-A.test"], "for team a")
    send(port, ["x@team-a.test", "y@other.test"], "split", user="someone-else")
    send(port, ["plain@other.test"], "no rule")

    assert subjects(srv, "staging") == {"as staging": ["dev@anywhere.test", "qa@team-a.test"]}
    team_a = subjects(srv, "team-a")
    assert team_a == {"for team a": ["qa@Team-A.test"], "split": ["x@team-a.test"]}
    default = subjects(srv, "default")
    assert default == {"split": ["y@other.test"], "no rule": ["plain@other.test"]}
    assert subjects(srv, "team-b") == {}


def test_stored_rules_through_the_api_apply_to_the_next_message(
    server: tuple[ServerThread, str],
) -> None:
    srv, key = server
    base = srv.base_url
    with httpx.Client(base_url=base, timeout=10) as http:
        listed = http.get("/api/v2/capture-routes").json()["routes"]
        assert [(r["rule"], r["source"], r["id"]) for r in listed] == [
            ("user:staging=staging", "option", None),
            ("rcpt:*@team-a.test=team-a", "option", None),
        ]
        created = http.post(
            "/api/v2/capture-routes",
            json={"kind": "rcpt", "pattern": "*@team-b.test", "project": "team-b"},
        )
        assert created.status_code == 201, created.text
        rule = created.json()
        assert rule["rule"] == "rcpt:*@team-b.test=team-b" and rule["source"] == "stored"
        send(srv.smtp_port, ["b@team-b.test"], "to b")
        assert subjects(srv, "team-b") == {"to b": ["b@team-b.test"]}

        # Refusals name the field: a live project, an unknown one, a bad kind or field.
        for body, field in (
            ({"kind": "rcpt", "pattern": "*@shop.test", "project": "shop"}, "project"),
            ({"kind": "rcpt", "pattern": "*@x.test", "project": "nope"}, "project"),
            ({"kind": "from", "pattern": "*@x.test", "project": "team-b"}, "kind"),
            ({"kind": "rcpt", "pattern": " ", "project": "team-b"}, "pattern"),
            ({"kind": "rcpt", "pattern": "x", "project": "team-b", "extra": 1}, "extra"),
        ):
            refused = http.post("/api/v2/capture-routes", json=body)
            assert refused.status_code == 400, (body, refused.text)
            assert refused.json()["Field"] == field
        # Changes are JSON only (a form post from another site is refused before anything).
        form = http.post("/api/v2/capture-routes", data={"kind": "rcpt"})
        assert form.status_code == 415

        # An API key, even with the manage scope, may not touch routes (or read them).
        headers = {"Authorization": f"Bearer {key}"}
        assert http.get("/api/v2/capture-routes", headers=headers).status_code == 403
        stolen = http.post(
            "/api/v2/capture-routes",
            json={"kind": "rcpt", "pattern": "*", "project": "team-a"},
            headers=headers,
        )
        assert stolen.status_code == 403 and stolen.json()["Field"] == "Authorization"

        assert http.delete(f"/api/v2/capture-routes/{rule['id']}").status_code == 204
        assert http.delete(f"/api/v2/capture-routes/{rule['id']}").status_code == 404
        send(srv.smtp_port, ["b@team-b.test"], "after delete")
        assert "after delete" in subjects(srv, "default")


def test_a_route_into_a_project_that_went_live_is_refused_temporarily(
    server: tuple[ServerThread, str],
) -> None:
    srv, _ = server
    with httpx.Client(base_url=srv.base_url, timeout=10) as http:
        made = http.post(
            "/api/v2/capture-routes",
            json={"kind": "rcpt", "pattern": "*@team-b.test", "project": "team-b"},
        )
        assert made.status_code == 201
    service = open_platform(srv.app.config)
    try:
        service.update_project("team-b", mode="live")
    finally:
        service.close()
    srv.app.capture_router.invalidate()  # as after the 5 s a door trusts the projects it read
    with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=10) as client:
        client.ehlo()
        client.mail("app@example.com")
        client.rcpt("b@team-b.test")
        code, text = client.data(b"Subject: x\r\n\r\nhi\r\n")
    assert code == 451, text
    assert text.startswith(b"4.3.0 ") and b"project team-b, which is not a capture project" in text
    assert subjects(srv, "team-b") == {}


def test_an_option_naming_a_missing_or_live_project_stops_the_start(tmp_path: Path) -> None:
    config = make_config(tmp_path / "one", capture_route=("user:ci=nowhere",))
    with pytest.raises(ConfigError, match="there is no project 'nowhere'"):
        ServerThread(config).start()
    config = make_config(tmp_path / "two", capture_route=("rcpt:*@shop.test=shop",))
    setup_projects(config, live="shop")
    with pytest.raises(ConfigError, match="'shop' is a live project"):
        ServerThread(config).start()


def test_chaos_strikes_in_the_project_the_mail_is_routed_to(tmp_path: Path) -> None:
    """Chaos is per project: mail a route sends into staging (by SMTP user) or team-a (by
    recipient) gets those projects' injected errors, at AUTH, MAIL and RCPT; the default
    project's mail does not (issue 12: one capture door serving many teams)."""
    config = make_config(tmp_path / "data", capture_route=ROUTES, enable_chaos=True)
    setup_projects(config)
    srv = ServerThread(config).start()
    try:
        with httpx.Client(base_url=srv.base_url, timeout=10) as http:

            def chaos(project: str, stage: str, code: int) -> None:
                body = {stage: {"ErrorCode": code, "Probability": 100}}
                answer = http.put(f"/p/{project}/api/v1/chaos", json=body)
                assert answer.status_code == 200, answer.text

            chaos("staging", "Sender", 451)
            with pytest.raises(smtplib.SMTPSenderRefused) as sender:
                send(srv.smtp_port, ["a@example.com"], "staging mail", user="staging")
            assert sender.value.smtp_code == 451
            assert b"Chaos: Sender" in sender.value.smtp_error
            send(srv.smtp_port, ["a@example.com"], "default mail", user="someone-else")

            chaos("staging", "Authentication", 535)
            with pytest.raises(smtplib.SMTPAuthenticationError) as auth:
                send(srv.smtp_port, ["a@example.com"], "staging mail", user="staging")
            assert auth.value.smtp_code == 535
            send(srv.smtp_port, ["a@example.com"], "default mail 2", user="other")

            chaos("team-a", "Recipient", 550)
            with pytest.raises(smtplib.SMTPRecipientsRefused) as rcpt:
                send(srv.smtp_port, ["dev@team-a.test"], "team-a mail")
            assert rcpt.value.recipients["dev@team-a.test"][0] == 550
            # A message to both: team-a's recipient refused, the default project's kept.
            send(srv.smtp_port, ["dev@team-a.test", "b@example.com"], "mixed")
        assert subjects(srv, "team-a") == {}
        assert subjects(srv, "staging") == {}
        assert subjects(srv, "default") == {
            "default mail": ["a@example.com"],
            "default mail 2": ["a@example.com"],
            "mixed": ["b@example.com"],
        }
    finally:
        srv.stop()
