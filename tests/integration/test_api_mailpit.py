"""The Mailpit-compatible API, driven over real SMTP and HTTP, validated against Mailpit's spec."""

from __future__ import annotations

import base64
import re
import smtplib
import urllib.parse
from email.message import EmailMessage
from typing import Any

import httpx
import jsonschema
import pytest

from tests.harness import ServerThread, load_spec

SPEC = load_spec()


def validate(instance: Any, definition: str) -> None:
    """Validate against a definition of Mailpit's swagger file; every documented field present."""
    if SPEC is None:
        pytest.skip("shared material absent: ../shared/specs/mailpit-api-v1.swagger.json")
    schema = dict(SPEC["definitions"][definition])
    schema["definitions"] = SPEC["definitions"]
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(instance)
    missing = set(schema.get("properties", {})) - set(instance)
    assert not missing, f"{definition} lacks {missing}"


def send(server: ServerThread, msg: EmailMessage, rcpts: list[str] | None = None) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
        client.send_message(msg, to_addrs=rcpts)


def simple(subject: str, to: str = "bob@example.com", body: str = "hello there") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Alice Example <alice@example.com>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def with_attachment() -> EmailMessage:
    msg = simple("Report attached", body="see the file")
    msg.add_alternative("<p>See <b>the file</b> <img src='cid:logo'></p>", subtype="html")
    html = msg.get_payload()[1]
    assert isinstance(html, EmailMessage)
    html.add_related(b"\x89PNG fake", maintype="image", subtype="png", cid="<logo>")
    msg.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="report.csv")
    return msg


def test_list_and_message_shapes(server: ServerThread, http: httpx.Client) -> None:
    send(server, simple("first"))
    send(server, with_attachment(), ["bob@example.com", "hidden@example.com"])
    listing = http.get("/api/v1/messages").json()
    validate(listing, "MessagesSummary")
    assert listing["total"] == 2 and listing["unread"] == 2
    newest = listing["messages"][0]
    validate(newest, "MessageSummary")
    assert newest["Subject"] == "Report attached"
    assert newest["Attachments"] == 1
    assert newest["From"] == {"Name": "Alice Example", "Address": "alice@example.com"}
    assert {"Name": "", "Address": "hidden@example.com"} in newest["Bcc"]

    message = http.get(f"/api/v1/message/{newest['ID']}").json()
    validate(message, "Message")
    assert message["Text"].strip() == "see the file"
    assert "<b>the file</b>" in message["HTML"]
    assert [a["FileName"] for a in message["Attachments"]] == ["report.csv"]
    assert [a["ContentID"] for a in message["Inline"]] == ["logo"]
    # Fetching a message marks it read, as Mailpit does, and says so: `Read` left Mailpit's
    # document but clients still read it (mailpit-api-client's Message: KeyError('read')).
    assert message["Read"] is True
    assert http.get("/api/v1/messages").json()["unread"] == 1

    part_id = message["Attachments"][0]["PartID"]
    part = http.get(f"/api/v1/message/{newest['ID']}/part/{part_id}")
    assert part.status_code == 200 and part.content == b"a,b\n1,2\n"
    assert part.headers["content-type"].startswith("text/csv")

    headers = http.get(f"/api/v1/message/{newest['ID']}/headers").json()
    assert headers["Subject"] == ["Report attached"]
    assert any("postroom.test" in v for v in headers["Received"])

    raw = http.get(f"/api/v1/message/{newest['ID']}/raw")
    assert raw.status_code == 200 and raw.content.startswith(b"Received: from ")
    assert b"Subject: Report attached" in raw.content

    html = http.get(f"/view/{newest['ID']}.html")
    assert html.status_code == 200 and "<b>the file</b>" in html.text
    assert "sandbox" in html.headers["content-security-policy"]
    text = http.get("/view/latest.txt")
    assert text.status_code == 200 and text.text.strip() == "see the file"


def test_latest_and_not_found(server: ServerThread, http: httpx.Client) -> None:
    r = http.get("/api/v1/message/latest")
    assert r.status_code == 404 and "Error" in r.json()
    send(server, simple("only one"))
    assert http.get("/api/v1/message/latest").json()["Subject"] == "only one"
    missing = http.get("/api/v1/message/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert missing.status_code == 404
    assert http.get("/api/v1/nope").status_code == 404


def test_search_and_delete_by_search(server: ServerThread, http: httpx.Client) -> None:
    send(server, simple("Invoice 42", to="carol@example.com"))
    send(server, simple("Welcome aboard"))
    send(server, with_attachment())
    found = http.get("/api/v1/search", params={"query": "subject:invoice"}).json()
    validate(found, "MessagesSummary")
    assert [m["Subject"] for m in found["messages"]] == ["Invoice 42"]
    assert found["messages_count"] == 1 and found["total"] == 3 and found["count"] == 1
    assert http.get("/api/v1/search", params={"query": "to:carol"}).json()["messages_count"] == 1
    attached = http.get("/api/v1/search", params={"query": "has:attachment"}).json()
    assert [m["Subject"] for m in attached["messages"]] == ["Report attached"]
    negated = http.get("/api/v1/search", params={"query": "-subject:invoice"}).json()
    assert negated["messages_count"] == 2
    assert (
        http.get("/api/v1/search", params={"query": '"welcome aboard"'}).json()["messages_count"]
        == 1
    )

    bad = http.get("/api/v1/search", params={"query": "before:not-a-date"})
    assert bad.status_code == 400 and bad.json()["Field"] == "query"
    empty = http.get("/api/v1/search")
    assert empty.status_code == 400 and empty.json()["Field"] == "query"

    assert (
        http.request("DELETE", "/api/v1/search", params={"query": "subject:welcome"}).status_code
        == 200
    )
    assert http.get("/api/v1/messages").json()["total"] == 2


def test_counts_skip_answers_the_page_without_counting_matches(
    server: ServerThread, http: httpx.Client
) -> None:
    for n in range(5):
        send(server, simple(f"Invoice {n}" if n % 2 == 0 else f"Welcome {n}"))
    http.put("/api/v1/messages", json={"IDs": [], "Read": True, "Search": "subject:welcome"})
    params = {"query": "subject:invoice", "limit": 2, "counts": "skip"}
    first = http.get("/api/v1/search", params=params).json()
    assert [m["Subject"] for m in first["messages"]] == ["Invoice 4", "Invoice 2"]
    # Never a guessed count: null, with whether more matches follow.
    assert first["messages_count"] is None and first["messages_unread"] is None
    assert first["more"] is True and first["count"] == 2
    assert (first["total"], first["unread"], first["start"]) == (5, 3, 0)
    last = http.get("/api/v1/search", params={**params, "start": 2}).json()
    assert [m["Subject"] for m in last["messages"]] == ["Invoice 0"] and last["more"] is False
    # The exact count comes with the default, or limit=0 (what the web UI asks next).
    exact = http.get("/api/v1/search", params={"query": "subject:invoice", "limit": 0}).json()
    assert (exact["messages_count"], exact["messages_unread"], exact["messages"]) == (3, 3, [])
    assert "more" not in exact
    # The inbox's counts are its own: exact with counts=skip too.
    inbox = http.get("/api/v1/messages", params={"limit": 4, "counts": "skip"}).json()
    validate(inbox, "MessagesSummary")
    assert (inbox["messages_count"], inbox["messages_unread"], inbox["more"]) == (5, 3, True)
    assert (inbox["total"], inbox["unread"], inbox["count"]) == (5, 3, 4)
    bad = http.get("/api/v1/messages", params={"counts": "some"})
    assert bad.status_code == 400 and bad.json()["Field"] == "counts"


def test_read_flags_delete_and_paging(server: ServerThread, http: httpx.Client) -> None:
    for i in range(5):
        send(server, simple(f"message {i}"))
    page = http.get("/api/v1/messages", params={"start": 1, "limit": 2}).json()
    assert [m["Subject"] for m in page["messages"]] == ["message 3", "message 2"]
    assert page["start"] == 1 and page["messages_count"] == 5
    assert page["count"] == 2  # this page's messages, as Mailpit sends (issue 12)
    ids = [m["ID"] for m in page["messages"]]
    assert http.put("/api/v1/messages", json={"IDs": ids, "Read": True}).status_code == 200
    assert http.get("/api/v1/messages").json()["unread"] == 3
    assert (
        http.put(
            "/api/v1/messages", json={"Read": True, "Search": 'subject:"message 0"'}
        ).status_code
        == 200
    )
    assert http.get("/api/v1/messages").json()["unread"] == 2
    assert http.put("/api/v1/messages", json={"Read": True}).status_code == 200
    assert http.get("/api/v1/messages").json()["unread"] == 0
    assert http.request("DELETE", "/api/v1/messages", json={"IDs": ids}).status_code == 200
    assert http.get("/api/v1/messages").json()["total"] == 3
    assert http.request("DELETE", "/api/v1/messages").status_code == 200
    assert http.get("/api/v1/messages").json()["total"] == 0


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "field"),
    [
        ("GET", "/api/v1/messages", {"params": {"limit": "ten"}}, "limit"),
        ("GET", "/api/v1/messages", {"params": {"start": "-1"}}, "start"),
        (
            "PUT",
            "/api/v1/messages",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            "body",
        ),
        ("PUT", "/api/v1/messages", {"json": {"Read": "yes"}}, "Read"),
        ("PUT", "/api/v1/messages", {"json": {"IDs": "abc", "Read": True}}, "IDs"),
        ("DELETE", "/api/v1/messages", {"json": [1, 2]}, "body"),
        ("PUT", "/api/v1/tags", {"json": {"IDs": []}}, "Tags"),
        ("PUT", "/api/v1/tags/foo", {"json": {"Name": ""}}, "Name"),
        ("POST", "/api/v1/send", {"json": {}}, "From"),
        (
            "POST",
            "/api/v1/send",
            {"json": {"From": {"Email": "nope"}, "To": [{"Email": "a@b.c"}]}},
            "From.Email",
        ),
        ("POST", "/api/v1/send", {"json": {"From": {"Email": "a@b.c"}}}, "To"),
        (
            "POST",
            "/api/v1/send",
            {
                "json": {
                    "From": {"Email": "a@b.c"},
                    "To": [{"Email": "x@y.z"}],
                    "Subject": "a\r\nBcc: evil@x",
                }
            },
            "Subject",
        ),
        (
            "POST",
            "/api/v1/send",
            {
                "json": {
                    "From": {"Email": "a@b.c"},
                    "To": [{"Email": "x@y.z"}],
                    "Attachments": [{"Filename": "a", "Content": "!!"}],
                }
            },
            "Attachments[0].Content",
        ),
        ("GET", "/api/v1/wait", {"params": {"timeout": "soon"}}, "timeout"),
    ],
)
def test_bad_input_gets_json_error_naming_the_field(
    http: httpx.Client, method: str, url: str, kwargs: dict[str, Any], field: str
) -> None:
    r = http.request(method, url, **kwargs)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["Field"] == field and body["Error"]


def test_send_requires_a_json_content_type(http: httpx.Client) -> None:
    body = b'{"From": {"Email": "a@example.com"}, "To": [{"Email": "b@example.com"}]}'
    r = http.post("/api/v1/send", content=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["Field"] == "Content-Type"
    assert http.get("/api/v1/messages").json()["total"] == 0
    ok = http.post(
        "/api/v1/send", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert ok.status_code == 200


def test_tags(server: ServerThread, http: httpx.Client) -> None:
    tagged = simple("tagged")
    tagged["X-Tags"] = "Alpha, beta"
    send(server, tagged, ["bob+gamma@example.com"])
    send(server, simple("plain"))
    assert sorted(http.get("/api/v1/tags").json(), key=str.lower) == ["Alpha", "beta", "gamma"]
    msg = http.get("/api/v1/search", params={"query": "tag:alpha"}).json()["messages"]
    assert [m["Subject"] for m in msg] == ["tagged"]
    plain_id = http.get("/api/v1/search", params={"query": "subject:plain"}).json()["messages"][0][
        "ID"
    ]
    assert http.put("/api/v1/tags", json={"IDs": [plain_id], "Tags": ["Delta"]}).status_code == 200
    assert http.get("/api/v1/search", params={"query": "tag:delta"}).json()["messages_count"] == 1
    assert http.put("/api/v1/tags/Delta", json={"Name": "Epsilon"}).status_code == 200
    assert "Epsilon" in http.get("/api/v1/tags").json()
    assert http.delete("/api/v1/tags/Epsilon").status_code == 200
    assert "Epsilon" not in http.get("/api/v1/tags").json()
    info = http.get("/api/v1/info").json()
    validate(info, "AppInformation")
    assert info["Messages"] == 2 and info["Tags"]["Alpha"] == 1


def test_send_api(http: httpx.Client) -> None:
    body = {
        "From": {"Email": "app@example.com", "Name": "The App"},
        "To": [{"Email": "user@example.com", "Name": "User"}],
        "Cc": [{"Email": "cc@example.com"}],
        "Bcc": ["secret@example.com"],
        "ReplyTo": [{"Email": "help@example.com"}],
        "Subject": "Via HTTP",
        "Text": "plain body",
        "HTML": "<p>html <img src='cid:logo1'></p>",
        "Tags": ["api"],
        "Headers": {"X-Custom": "42"},
        "Attachments": [
            {"Filename": "a.txt", "Content": base64.b64encode(b"attached").decode()},
            {
                "Filename": "logo.png",
                "Content": base64.b64encode(b"png").decode(),
                "ContentID": "logo1",
            },
        ],
    }
    r = http.post("/api/v1/send", json=body)
    assert r.status_code == 200, r.text
    message_id = r.json()["ID"]
    message = http.get(f"/api/v1/message/{message_id}").json()
    assert message["Subject"] == "Via HTTP" and message["Text"].strip() == "plain body"
    assert message["Tags"] == ["api"]
    assert {"Name": "", "Address": "secret@example.com"} in message["Bcc"]
    assert [a["FileName"] for a in message["Attachments"]] == ["a.txt"]
    assert [a["ContentID"] for a in message["Inline"]] == ["logo1"]
    headers = http.get(f"/api/v1/message/{message_id}/headers").json()
    assert headers["X-Custom"] == ["42"] and "Bcc" not in headers


def test_wait_returns_as_soon_as_a_match_arrives(server: ServerThread, http: httpx.Client) -> None:
    import threading

    timer = threading.Timer(0.3, lambda: send(server, simple("awaited one")))
    timer.start()
    r = http.get("/api/v1/wait", params={"query": "subject:awaited", "timeout": "20"})
    timer.join()
    assert r.status_code == 200 and r.json()["Subject"] == "awaited one"
    # Already present: returned at once. Newer than `since`: waits, then times out with 408.
    assert (
        http.get("/api/v1/wait", params={"query": "subject:awaited"}).json()["ID"] == r.json()["ID"]
    )
    late = http.get(
        "/api/v1/wait",
        params={"query": "subject:awaited", "since": r.json()["ID"], "timeout": "0.2"},
    )
    assert late.status_code == 408 and late.json()["Field"] == "query"


def test_event_stream_announces_new_and_deleted(server: ServerThread, http: httpx.Client) -> None:
    import threading

    events: list[str] = []

    def later() -> None:
        send(server, simple("streamed"))

    with http.stream("GET", "/api/v1/events", timeout=20) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        threading.Timer(0.3, later).start()
        for line in stream.iter_lines():
            if line.startswith("event:") or line.startswith("data:"):
                events.append(line)
            if any("streamed" in e for e in events):
                break
    assert "event: new" in events
    assert any(e.startswith("data:") and '"Subject": "streamed"' in e for e in events)


def test_health_and_metrics(server: ServerThread, http: httpx.Client) -> None:
    assert http.get("/livez").status_code == 200
    assert http.get("/readyz").status_code == 200
    send(server, simple("counted"))
    metrics = http.get("/metrics").text
    assert 'postroom_messages_received_total{door="capture"} 1.0' in metrics
    assert "postroom_commit_seconds_bucket" in metrics
    assert "postroom_smtp_sessions_total" in metrics


def _filename_of(disposition: str) -> tuple[str, str | None]:
    """(disposition type, file name) as RFC 6266 tells a client to read them: `filename*`
    (RFC 8187: charset'language'percent-encoded) over `filename` (a quoted string)."""
    kind = disposition.split(";", 1)[0].strip().lower()
    extended = re.search(r";\s*filename\*=([^;]*)", disposition)
    if extended is not None:
        charset, _language, encoded = extended.group(1).strip().split("'", 2)
        assert charset.lower() == "utf-8", disposition
        return kind, urllib.parse.unquote(encoded, errors="strict")
    plain = re.search(r';\s*filename="((?:[^"\\]|\\.)*)"', disposition)
    return kind, None if plain is None else re.sub(r"\\(.)", r"\1", plain.group(1))


@pytest.mark.parametrize(
    "name", ["日本語.txt", "café résumé.csv", "semi;colon=x.bin", "plain.txt", "naïve 😀.pdf"]
)
def test_downloads_carry_any_file_name(server: ServerThread, http: httpx.Client, name: str) -> None:
    """Issue 12: a name outside Latin-1 gave 500; Latin-1 went out as raw header bytes."""
    msg = simple("named")
    # text/plain: a type shown inline when no download is asked for (api/disposition.py)
    msg.add_attachment(b"content", maintype="text", subtype="plain", filename=name)
    send(server, msg)
    message = http.get("/api/v1/message/latest").json()
    assert [a["FileName"] for a in message["Attachments"]] == [name]
    part_id = message["Attachments"][0]["PartID"]
    for query, kind in (("", "inline"), ("?dl=1", "attachment")):
        answer = http.get(f"/api/v1/message/{message['ID']}/part/{part_id}{query}")
        assert answer.status_code == 200 and answer.content == b"content"
        raw_header = answer.headers.raw
        value = next(v for k, v in raw_header if k.lower() == b"content-disposition")
        assert value.isascii(), value  # nothing but ASCII on the wire
        assert _filename_of(value.decode("ascii")) == (kind, name)
    raw = http.get(f"/api/v1/message/{message['ID']}/raw?dl=1")
    assert _filename_of(raw.headers["content-disposition"]) == (
        "attachment",
        f"{message['ID']}.eml",
    )


def test_html_only_message_has_text_and_snippet_from_its_html(
    server: ServerThread, http: httpx.Client
) -> None:
    """Issue 12: `Text` was empty for HTML-only messages; Mailpit fills it from the HTML and
    clients read links and codes from it."""
    msg = EmailMessage()
    msg["From"] = "Shop <shop@example.com>"
    msg["To"] = "bob@example.com"
    msg["Subject"] = "Confirm"
    msg.set_content(
        "<html><head><style>p{color:red}</style></head><body><p>Your code is <b>482913</b>.</p>"
        '<p><a href="https://shop.example/confirm?t=abc&amp;u=1">Confirm your address</a></p>'
        "</body></html>",
        subtype="html",
    )
    send(server, msg)
    listing = http.get("/api/v1/messages").json()
    assert listing["messages"][0]["Snippet"] == ("Your code is 482913. Confirm your address")
    message = http.get(f"/api/v1/message/{listing['messages'][0]['ID']}").json()
    validate(message, "Message")
    assert message["Text"] == (
        "Your code is 482913.\n\nConfirm your address ( https://shop.example/confirm?t=abc&u=1 )"
    )
    assert "color:red" not in message["Text"]
    assert "<b>482913</b>" in message["HTML"]
    assert http.get("/view/latest.txt").text == message["Text"]


def test_search_operators_of_mailpit(server: ServerThread, http: httpx.Client) -> None:
    """Issue 12: has:inline, is:tagged, reply-to:, addressed:, bcc: of an envelope-only
    recipient, free text inside an attached message, and unknown operators refused."""
    send(server, simple("plain one", to="carol@example.com"))
    send(server, with_attachment(), ["bob@example.com", "hidden@example.com"])  # inline logo
    replying = simple("please answer")
    replying["Reply-To"] = "Help Desk <help@support.example>"
    send(server, replying)
    forwarded = simple("Fwd: notes", body="see below")
    inner = simple("Zanzibar trip", body="the ferry leaves at nine from Stone Town")
    forwarded.add_attachment(inner)  # message/rfc822
    send(server, forwarded)
    listing = http.get("/api/v1/messages").json()["messages"]
    by_subject = {m["Subject"]: m["ID"] for m in listing}
    tagged = http.put("/api/v1/tags", json={"IDs": [by_subject["plain one"]], "Tags": ["keep"]})
    assert tagged.status_code == 200

    def subjects(query: str) -> set[str]:
        answer = http.get("/api/v1/search", params={"query": query})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        validate(body, "MessagesSummary")
        return {m["Subject"] for m in body["messages"]}

    every = set(by_subject)
    assert subjects("has:inline") == {"Report attached"}
    assert subjects("is:tagged") == {"plain one"}
    assert subjects("-is:tagged") == every - {"plain one"}
    assert subjects("reply-to:help@support") == {"please answer"}
    assert subjects("addressed:help@support") == {"please answer"}
    assert subjects("addressed:carol@example.com") == {"plain one"}
    assert subjects("bcc:hidden@example.com") == {"Report attached"}
    assert subjects("stone town") == {"Fwd: notes"}  # words of the attached message
    assert subjects('"ferry leaves"') == {"Fwd: notes"}
    for query, named in (
        ("has:pdf", "has:pdf"),
        ("is:starred", "is:starred"),
        ("in:inbox", "in:"),
        ("label:work", "label:"),
        ("tag:", '"tag:" names no tag'),  # it matched every message
    ):
        refused = http.get("/api/v1/search", params={"query": query})
        assert refused.status_code == 400, query
        assert refused.json()["Field"] == "query" and named in refused.json()["Error"]
    assert subjects("re:hello") == set()  # a word with a colon that is no operator: text


@pytest.mark.parametrize("big", [False, True], ids=["small", "big"])
def test_attachment_entries_carry_checksums_of_the_download(
    server: ServerThread, http: httpx.Client, big: bool
) -> None:
    """Issue 12: Mailpit's Checksums (MD5, SHA1, SHA256) of each attachment and inline part,
    equal to those of the bytes the part endpoint serves; a big message (read as a stream,
    api/big_reads.py) gets them from the same pass that shrinks it."""
    import hashlib
    import os

    msg = with_attachment()
    payload = os.urandom(1_500_000 if big else 3000)
    msg.add_attachment(payload, maintype="application", subtype="zip", filename="data.zip")
    forwarded = simple("inner message", body="inner body")
    msg.add_attachment(forwarded)
    send(server, msg)
    message = http.get("/api/v1/message/latest").json()
    validate(message, "Message")
    assert message["Size"] > 1024 * 1024 if big else message["Size"] < 1024 * 1024
    entries = [*message["Attachments"], *message["Inline"]]
    assert {e["FileName"] for e in entries} >= {"report.csv", "data.zip", "inner message.eml"}
    for entry in entries:
        validate(entry, "Attachment")
        part = http.get(f"/api/v1/message/{message['ID']}/part/{entry['PartID']}")
        assert part.status_code == 200
        assert entry["Checksums"] == {
            "MD5": hashlib.md5(part.content).hexdigest(),
            "SHA1": hashlib.sha1(part.content).hexdigest(),
            "SHA256": hashlib.sha256(part.content).hexdigest(),
        }, entry["FileName"]
    zipped = next(e for e in entries if e["FileName"] == "data.zip")
    assert zipped["Checksums"]["SHA256"] == hashlib.sha256(payload).hexdigest()
