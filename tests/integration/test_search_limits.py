"""Search limits over the real HTTP API: hostile queries get a 400 naming the problem, before
any SQL runs (issue 9: `larger:99999999999999999999` was a 500 with a traceback, 500 terms a
misleading 503 after seconds of CPU)."""

from __future__ import annotations

import smtplib

import httpx
import pytest

from tests.harness import ServerThread

MAX_TERMS = 32  # postroom.core.search, as documented in the README
MAX_QUERY_LENGTH = 2000


def send(server: ServerThread, subject: str, size: int = 0) -> None:
    body = f"Subject: {subject}\r\n\r\nhello\r\n" + ("x" * 70 + "\r\n") * (size // 72)
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
        client.sendmail("a@example.com", ["b@example.com"], body)


def search(http: httpx.Client, query: str) -> httpx.Response:
    return http.get("/api/v1/search", params={"query": query})


@pytest.mark.parametrize(
    "query",
    [
        "larger:99999999999999999999",
        "smaller:99999999999999999999",
        "larger:9223372036854775808",  # one past the largest 64-bit integer
        "-larger:2tb",
        "smaller:1.5tb",
    ],
)
def test_sizes_beyond_the_limit_get_400_naming_the_size(
    server: ServerThread, http: httpx.Client, query: str
) -> None:
    send(server, "one")
    answer = search(http, query)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["Field"] == "query"
    assert query.lstrip("-") in body["Error"] and "largest allowed" in body["Error"]
    # the same through PUT /api/v1/messages {"Search"}, naming that field
    put = http.put("/api/v1/messages", json={"Search": query, "Read": True})
    assert put.status_code == 400, put.text
    assert put.json()["Field"] == "Search"
    assert "largest allowed" in put.json()["Error"]
    # and through DELETE /api/v1/search, which must not delete anything
    deleted = http.request("DELETE", "/api/v1/search", params={"query": query})
    assert deleted.status_code == 400
    assert http.get("/api/v1/messages").json()["total"] == 1


def test_the_largest_size_still_searches(server: ServerThread, http: httpx.Client) -> None:
    send(server, "small")
    send(server, "big", size=5000)
    assert search(http, "larger:1tb").json()["messages_count"] == 0
    assert search(http, "smaller:1tb").json()["messages_count"] == 2
    assert search(http, "larger:4kb").json()["messages_count"] == 1


def test_too_many_terms_get_400_naming_the_count(server: ServerThread, http: httpx.Client) -> None:
    send(server, "w0 w1")
    at_limit = " ".join(f"-nomatch{i}" for i in range(MAX_TERMS))
    answer = search(http, at_limit)
    assert answer.status_code == 200, answer.text
    assert answer.json()["messages_count"] == 1
    for count in (MAX_TERMS + 1, 500, 900):
        answer = search(http, " ".join("w" for _ in range(count)))
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body == {
            "Error": f"The search has {count} terms; at most {MAX_TERMS} are allowed "
            '(put words that belong together in one "quoted phrase").',
            "Field": "query",
        }
    tags = search(http, " ".join("tag:t" for _ in range(300)))
    assert tags.status_code == 400 and "300 terms" in tags.json()["Error"]
    # /api/v1/wait parses the same way
    wait = http.get("/api/v1/wait", params={"query": "larger:99999999999999999999", "timeout": 1})
    assert wait.status_code == 400 and wait.json()["Field"] == "query"


def test_too_long_a_query_gets_400(server: ServerThread, http: httpx.Client) -> None:
    phrase = '"' + "x" * MAX_QUERY_LENGTH + '"'
    answer = search(http, phrase)
    assert answer.status_code == 400
    assert answer.json() == {
        "Error": f"The search is {len(phrase)} characters long; "
        f"at most {MAX_QUERY_LENGTH} are allowed.",
        "Field": "query",
    }
    put = http.put("/api/v1/messages", json={"Search": "y" * 100_000, "Read": True})
    assert put.status_code == 400 and put.json()["Field"] == "Search"
