"""/view/{ID}.html over HTTP against a real server (no browser): policy, cid: rewriting, embed."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import ServerThread

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


def send_fixture(server: ServerThread, name: str) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
        client.sendmail(
            "design@studio.example", ["client@example.net"], (FIXTURES / name).read_bytes()
        )


def test_html_view_policy_cid_and_remote_switch(server: ServerThread, http: httpx.Client) -> None:
    send_fixture(server, "html-inline-cid.eml")
    message_id = http.get("/api/v1/messages").json()["messages"][0]["ID"]

    plain = http.get(f"/view/{message_id}.html")
    assert plain.status_code == 200
    policy = plain.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert f"img-src data: {server.base_url}/api/v1/message/{message_id}/part/;" in policy
    assert "sandbox allow-popups allow-popups-to-escape-sandbox" in policy
    assert "http:" not in policy.replace(server.base_url, "")
    images = re.findall(r'<img src="([^"]+)"', plain.text)
    assert images and images[0].startswith(f"/api/v1/message/{message_id}/part/"), plain.text
    assert "cid:" not in plain.text
    assert '<base target="_blank">' not in plain.text
    image = http.get(images[0])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")

    embedded = http.get(f"/view/{message_id}.html", params={"embed": "1", "remote": "1"})
    assert embedded.text.startswith('<base target="_blank">')
    remote_policy = embedded.headers["content-security-policy"]
    assert "https: http:" in remote_policy and "allow-scripts" not in remote_policy


def test_html_view_of_a_text_only_message_is_a_json_404(
    server: ServerThread, http: httpx.Client
) -> None:
    send_fixture(server, "plain.eml")
    message_id = http.get("/api/v1/messages").json()["messages"][0]["ID"]
    response = http.get(f"/view/{message_id}.html")
    assert response.status_code == 404 and "Error" in response.json()
    assert http.get(f"/view/{message_id}.txt").status_code == 200


def test_shell_is_served_under_the_default_policy(server: ServerThread, http: httpx.Client) -> None:
    shell = http.get("/")
    assert shell.status_code == 200
    policy = shell.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    asset = re.search(r'src="(/ui/static/[0-9a-f]+/app\.js)"', shell.text)
    assert asset, shell.text[:500]
    script = http.get(asset.group(1))
    assert script.status_code == 200 and "EventSource" in script.text
    assert http.get(f"/message/{'0' * 26}").status_code == 200  # deep link, any ID
