"""Search terms translated to SQL: every field, negation, case and LIKE metacharacters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from tests.integration.storage.factory import attachment, make_message

from postroom.core.clock import FakeClock
from postroom.core.search import Field, SearchQuery, Term
from postroom.storage import SqlMessageStore

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Corpus:
    ids: dict[str, str]  # name -> id


@pytest.fixture
async def corpus(store: SqlMessageStore) -> Corpus:
    clock = FakeClock(START)
    specs = {
        "invoice": dict(
            subject="Your INVOICE #42",
            from_="Billing Dept <billing@shop.example>",
            to=("Alice <alice@example.com>",),
            body="amount due: 100% of it",
            tags=("Finance",),
            attachments=(attachment("invoice.pdf"),),
        ),
        "newsletter": dict(
            subject="Weekly news",
            from_="News <news@letters.example>",
            to=("bob@example.org",),
            cc=("Carol Cc <carol@example.net>",),
            body="caf\u00e9 \u00c9T\u00c9 special_offer",
            tags=("marketing", "Finance"),
        ),
        "reset": dict(
            subject="Password reset",
            from_="Security <no-reply@auth.example>",
            to=("alice@example.com",),
            bcc=("Audit Trail <audit@example.com>",),
            message_id="RESET-TOKEN-777@auth.example",
            body="click the link",
            attachments=(attachment("logo.png", inline=True),),
        ),
        "big": dict(
            subject="Large upload 50_percent",
            from_="Uploader <up@files.example>",
            to=("dave@example.org",),
            raw=b"x" * 50_000,
            body="lots of data",
        ),
    }
    ids = {}
    for name, spec in specs.items():
        message = make_message(clock, step=3600, **spec)  # type: ignore[arg-type]
        ids[name] = message.id
        await store.add(message)
    store.set_read("default", [ids["reset"]], None, True)
    # Another project's message must never match.
    await store.add(make_message(clock, subject="Your INVOICE #42", project="other"))
    return Corpus(ids)


def search(store: SqlMessageStore, corpus: Corpus, *terms: Term) -> set[str]:
    page = store.list("default", SearchQuery(tuple(terms)), 0, 100)
    by_id = {v: k for k, v in corpus.ids.items()}
    found = {by_id[m.id] for m in page.messages}
    assert page.matched == len(found)
    return found


def t(field: Field, text: str = "", negated: bool = False) -> Term:
    return Term(field, text=text, negated=negated)


ALL = {"invoice", "newsletter", "reset", "big"}

TEXT_CASES = [
    ("invoice", {"invoice"}),  # subject, case-insensitive
    ("billing dept", {"invoice"}),  # from name
    ("letters.example", {"newsletter"}),  # from address
    ("alice@example.com", {"invoice", "reset"}),  # to
    ("carol cc", {"newsletter"}),  # cc name
    ("audit@example.com", {"reset"}),  # bcc
    ("reset-token-777", {"reset"}),  # message id
    ("click the", {"reset"}),  # body phrase
    ("\u00e9t\u00e9", {"newsletter"}),  # non-ASCII, stored upper-case
    ("100%", {"invoice"}),  # % is literal
    ("0% of", {"invoice"}),
    ("special_offer", {"newsletter"}),  # _ is literal
    ("50_percent", {"big"}),
    ("l_ts", set()),  # _ is not a wildcard
    ("%", {"invoice"}),
    ("\\", set()),
    ("no such words", set()),
]


async def test_free_text(store: SqlMessageStore, corpus: Corpus, subtests: pytest.Subtests) -> None:
    for text, expected in TEXT_CASES:
        with subtests.test(text=text):
            assert search(store, corpus, t("text", text.lower())) == expected
            assert search(store, corpus, t("text", text.lower(), negated=True)) == ALL - expected


FIELD_CASES: list[tuple[Field, str, set[str]]] = [
    ("from", "billing", {"invoice"}),
    ("from", "@auth.example", {"reset"}),
    ("from", "alice", set()),  # alice is a recipient, not a sender
    ("to", "alice", {"invoice", "reset"}),
    ("to", "news", set()),
    ("cc", "carol@example.net", {"newsletter"}),
    ("cc", "alice", set()),
    ("bcc", "audit trail", {"reset"}),
    ("subject", "weekly", {"newsletter"}),
    ("subject", "billing", set()),  # only the subject
    ("message-id", "token-777@", {"reset"}),
    ("message-id", "click", set()),
]


async def test_field_filters(
    store: SqlMessageStore, corpus: Corpus, subtests: pytest.Subtests
) -> None:
    for field, text, expected in FIELD_CASES:
        with subtests.test(field=field, text=text):
            assert search(store, corpus, t(field, text)) == expected
            assert search(store, corpus, t(field, text, negated=True)) == ALL - expected


async def test_tag_is_exact_and_case_insensitive(store: SqlMessageStore, corpus: Corpus) -> None:
    assert search(store, corpus, t("tag", "Finance")) == {"invoice", "newsletter"}
    assert search(store, corpus, t("tag", "FINANCE")) == {"invoice", "newsletter"}
    assert search(store, corpus, t("tag", "finan")) == set()  # not a substring match
    assert search(store, corpus, t("tag", "marketing", negated=True)) == ALL - {"newsletter"}


async def test_flags(store: SqlMessageStore, corpus: Corpus) -> None:
    assert search(store, corpus, t("is-read")) == {"reset"}
    assert search(store, corpus, t("is-read", negated=True)) == ALL - {"reset"}
    # Inline parts are not attachments.
    assert search(store, corpus, t("has-attachment")) == {"invoice"}
    assert search(store, corpus, t("has-attachment", negated=True)) == ALL - {"invoice"}


async def test_dates(store: SqlMessageStore, corpus: Corpus) -> None:
    # created: invoice 12:00, newsletter 13:00, reset 14:00, big 15:00
    at = datetime(2026, 3, 1, 13, 30, tzinfo=UTC)
    assert search(store, corpus, Term("before", when=at)) == {"invoice", "newsletter"}
    assert search(store, corpus, Term("after", when=at)) == {"reset", "big"}
    assert search(store, corpus, Term("after", when=at, negated=True)) == {"invoice", "newsletter"}
    exact = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
    assert search(store, corpus, Term("before", when=exact)) == {"invoice"}
    assert search(store, corpus, Term("after", when=exact)) == {"reset", "big"}


async def test_sizes(store: SqlMessageStore, corpus: Corpus) -> None:
    assert search(store, corpus, Term("larger", size=10_000)) == {"big"}
    assert search(store, corpus, Term("smaller", size=10_000)) == ALL - {"big"}
    assert search(store, corpus, Term("larger", size=10_000, negated=True)) == ALL - {"big"}
    assert search(store, corpus, Term("smaller", size=50_000)) == ALL - {"big"}  # strictly


async def test_terms_combine_with_and(store: SqlMessageStore, corpus: Corpus) -> None:
    assert search(store, corpus, t("to", "alice"), t("is-read", negated=True)) == {"invoice"}
    assert search(store, corpus, t("tag", "finance"), t("text", "weekly", negated=True)) == {
        "invoice"
    }
    assert search(store, corpus, t("text", "example"), t("text", "nothing")) == set()


async def test_empty_query_matches_everything(store: SqlMessageStore, corpus: Corpus) -> None:
    page = store.list("default", SearchQuery(()), 0, 100)
    assert page.matched == page.total == 4


async def test_mailpits_other_operators(store: SqlMessageStore) -> None:
    """Issue 12: is:tagged, has:inline, reply-to:, addressed: and a bcc: that sees envelope
    recipients To and Cc do not name (the API reports those under Bcc), on both backends."""
    from dataclasses import replace

    from postroom.core.types import Envelope

    clock = FakeClock(START)
    made = {
        "tagged": make_message(clock, project="p2", tags=("x",), to=("ann@a.example",)),
        "inline": make_message(
            clock,
            project="p2",
            attachments=(attachment("logo.png", inline=True), attachment("a.pdf")),
        ),
        "attached": make_message(clock, project="p2", attachments=(attachment("a.pdf"),)),
        "replying": make_message(
            clock, project="p2", reply_to=("Help Desk <Help@Support.example>",)
        ),
        "hidden": make_message(clock, project="p2", to=("ann@a.example",)),
    }
    made["hidden"] = replace(
        made["hidden"], envelope=Envelope("a@b.example", ("ann@a.example", "Secret@C.example"))
    )
    for message in made.values():
        await store.add(message)
    names = {m.id: name for name, m in made.items()}

    def found(*terms: Term) -> set[str]:
        return {names[m.id] for m in store.list("p2", SearchQuery(terms), 0, 100).messages}

    every = set(made)
    assert found(Term("is-tagged")) == {"tagged"}
    assert found(Term("is-tagged", negated=True)) == every - {"tagged"}
    assert found(Term("has-inline")) == {"inline"}
    assert found(Term("has-inline", negated=True)) == every - {"inline"}
    assert found(Term("reply-to", text="help@support")) == {"replying"}
    assert found(Term("reply-to", text="help desk")) == {"replying"}
    assert found(Term("bcc", text="secret@c.example")) == {"hidden"}
    assert found(Term("bcc", text="ann@a.example")) == set()  # named in To: not Bcc
    assert found(Term("addressed", text="secret@c")) == {"hidden"}
    assert found(Term("addressed", text="help@support")) == {"replying"}
    assert found(Term("addressed", text="ann@a.example")) == {"tagged", "hidden"}
    assert found(Term("addressed", text="alice@example.com")) == every  # the sender
    assert found(Term("addressed", text="nobody")) == set()
