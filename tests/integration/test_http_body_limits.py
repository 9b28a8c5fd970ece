"""HTTP body limits (issue 9, item 3): every endpoint refuses a body above its limit with 413,
checked before reading (Content-Length) and while reading (chunked), over real sockets."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from postroom.api.limits import BodyLimits
from tests.harness import ServerThread, make_config

MAX_MESSAGE = 64 * 1024
LIMITS = BodyLimits.from_max_message_size(MAX_MESSAGE)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    data = tmp_path_factory.mktemp("limits") / "data"
    srv = ServerThread(make_config(data, max_message_size=MAX_MESSAGE)).start()
    try:
        yield srv
    finally:
        srv.stop()


def _read_response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def _request_head(server: ServerThread, path: str, extra: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.app.http_port}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


@pytest.mark.parametrize("path", ["/api/v1/send", "/api/v2/projects", "/api/v1/messages"])
def test_declared_length_over_the_limit_is_refused_before_the_body(
    server: ServerThread, path: str
) -> None:
    # A terabyte announced and nothing sent: the answer must come without waiting for it.
    with socket.create_connection(("127.0.0.1", server.app.http_port)) as sock:
        sock.sendall(_request_head(server, path, "Content-Length: 1000000000000\r\n"))
        status, headers, body = _read_response(sock)
    assert status == 413
    assert headers.get("connection") == "close"
    error = json.loads(body)
    limit = LIMITS.for_path(path)
    assert str(limit) in error["Error"] and error["Field"] == "body"


@pytest.mark.parametrize("path", ["/api/v1/send", "/api/v2/projects"])
def test_chunked_body_over_the_limit_is_refused_while_streaming(
    server: ServerThread, path: str
) -> None:
    limit = LIMITS.for_path(path)
    chunk = b"x" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", server.app.http_port)) as sock:
        sock.sendall(_request_head(server, path, "Transfer-Encoding: chunked\r\n"))
        sock.settimeout(0.05)
        answered = b""
        # Keep sending (never the final chunk) until the server answers, up to 4x the limit.
        while sent < 4 * limit:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(chunk)
            try:
                answered = sock.recv(65536, socket.MSG_PEEK)
            except (TimeoutError, BlockingIOError):
                continue
            if answered:
                break
        status, _, body = _read_response(sock)
    assert status == 413
    assert str(limit) in json.loads(body)["Error"]
    assert sent <= limit + 4 * 1024 * 1024  # refused soon after the limit, not at the end


def test_httpx_declared_length_over_the_limit(server: ServerThread) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        response = client.post(
            "/api/v2/projects",
            content=b"{" + b" " * LIMITS.other + b"}",
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert str(LIMITS.other) in response.json()["Error"]


def test_bodies_within_the_limit_still_work(server: ServerThread) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        attachment = base64.b64encode(b"a" * (MAX_MESSAGE // 2)).decode()
        response = client.post(
            "/api/v1/send",
            json={
                "From": {"Email": "a@example.com"},
                "To": [{"Email": "b@example.com"}],
                "Subject": "fits",
                "Text": "hello",
                "Attachments": [{"Content": attachment, "Filename": "a.bin"}],
            },
        )
        assert response.status_code == 200, response.text
        # Chunked (no Content-Length) and small: accepted.
        chunks = iter([b'{"IDs": [', b"], ", b'"Read": true}'])
        response = client.put(
            "/api/v1/messages", content=chunks, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text


def test_send_refuses_a_message_over_max_message_size(server: ServerThread) -> None:
    # The body fits the HTTP limit (base64 overhead and room for JSON), the message does not.
    attachment = base64.b64encode(b"a" * (MAX_MESSAGE + 1)).decode()
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        response = client.post(
            "/api/v1/send",
            json={
                "From": {"Email": "a@example.com"},
                "To": [{"Email": "b@example.com"}],
                "Subject": "too big",
                "Attachments": [{"Content": attachment, "Filename": "a.bin"}],
            },
        )
        assert response.status_code == 413
        assert str(MAX_MESSAGE) in response.json()["Error"]
        time.sleep(0.1)
        listed = client.get("/api/v1/messages").json()["messages"]
        assert "too big" not in [m["Subject"] for m in listed]
