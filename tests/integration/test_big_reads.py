"""Reading big messages (issue 9, item 3): raw, parts, the message view, headers and the
rendered bodies of a message above BIG_READ come out right over real HTTP, streamed."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import httpx

from postroom.api.big_reads import BIG_READ
from tests.harness import ServerThread


def test_big_message_reads_are_byte_exact(server: ServerThread, http: httpx.Client) -> None:
    attachment = bytes(range(256)) * (BIG_READ // 128)  # 2 MiB, more in base64
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg["To"] = "b@example.com"
    msg["Subject"] = "big one"
    msg.set_content("the text body\n")
    msg.add_alternative("<p>the <b>html</b> body</p>", subtype="html")
    msg.add_attachment(
        attachment, maintype="application", subtype="octet-stream", filename="data.bin"
    )
    data = msg.as_bytes().replace(b"\n", b"\r\n")
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
        client.sendmail("a@example.com", ["b@example.com"], data)
    summary = http.get("/api/v1/messages").json()["messages"][0]
    assert summary["Size"] > BIG_READ
    message_id = summary["ID"]

    with http.stream("GET", f"/api/v1/message/{message_id}/raw") as response:
        assert response.status_code == 200
        pieces = list(response.iter_raw())
    raw = b"".join(pieces)
    assert raw.endswith(data) and raw.startswith(b"Received: ")
    assert len(raw) == summary["Size"]

    view = http.get(f"/api/v1/message/{message_id}").json()
    assert view["Subject"] == "big one"
    assert view["Text"].strip() == "the text body"
    assert "<b>html</b>" in view["HTML"]
    [listed] = view["Attachments"]
    assert (listed["FileName"], listed["Size"]) == ("data.bin", len(attachment))

    part = http.get(f"/api/v1/message/{message_id}/part/{listed['PartID']}")
    assert part.status_code == 200
    assert part.content == attachment
    assert 'filename="data.bin"' in part.headers["content-disposition"]
    assert http.get(f"/api/v1/message/{message_id}/part/7").status_code == 404

    headers = http.get(f"/api/v1/message/{message_id}/headers").json()
    assert headers["Subject"] == ["big one"]
    assert http.get(f"/view/{message_id}.txt").text.strip() == "the text body"
    assert "<b>html</b>" in http.get(f"/view/{message_id}.html").text
