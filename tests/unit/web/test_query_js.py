"""static/query.js run in Node beside the server's side of each thing it writes: the tag filter
the inbox writes (quoted when it must be) is read back by the server's search parser as that
tag, and the URL of a page of the list is the very URL the shell preloads for it (quotes,
negations, operators, non-ASCII), so the script's request is the preloaded one."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from starlette.requests import Request

from postroom.core.search import Term, parse_query
from postroom.web.routes import first_page_url
from tests.unit.web.run_js import needs_node, run_module

pytestmark = needs_node

QUERIES = [
    "",
    "   ",
    "invoice",
    "from:alice@example.com",
    '-tag:"two words"',
    '!subject:"order 42" invoice',
    "is:unread has:attachment larger:100kb",
    "after:2025-01-31 before:2025-02-01 -from:noreply@example.com",
    'ünïcode "a quoted phrase" 日本語',
    "it's ~*+%&=#?/\\",
    "  padded:with spaces\t",
]
# A tag, and the tag the server reads back from the filter the inbox writes for it (a quote
# cannot be written inside a quoted term: it is dropped).
TAGS = {
    "signup": "signup",
    "two words": "two words",
    'say "hi"': "say hi",
    "ünï": "ünï",
    "a:b": "a:b",
    "-dash": "-dash",
    "tab\there": "tab\there",
}


def page_request(params: dict[str, str]) -> Request:
    return Request({"type": "http", "query_string": urlencode(params).encode(), "headers": []})


def test_a_tag_filter_is_read_back_as_that_tag() -> None:
    written = run_module("query.js", [("tagQuery", [tag]) for tag in TAGS])
    assert written[:3] == ["tag:signup", 'tag:"two words"', 'tag:"say hi"']
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for (tag, expected), query in zip(TAGS.items(), written, strict=True):
        parsed = parse_query(query, now)
        assert parsed.terms == (Term("tag", expected),), (tag, query, parsed)


@pytest.mark.parametrize("base", ["", "/p/acme"])
def test_the_list_url_is_the_one_the_shell_preloads(base: str) -> None:
    cases = [(q, start, size) for q in QUERIES for start, size in ((0, 50), (100, 25))]
    urls = run_module("query.js", [("listUrl", [base, q, start, size]) for q, start, size in cases])
    for (q, start, size), url in zip(cases, urls, strict=True):
        request = page_request({"q": q, "start": str(start)} if start else {"q": q})
        assert url == first_page_url(request, base, size), (q, url)
        assert ("/api/v1/search?" in url) == bool(q.strip())
