from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from postroom.core.errors import InvalidInput
from postroom.core.search import QuerySyntaxError, SearchQuery, Term, parse_query

NOW = datetime(2025, 1, 15, 12, 30, tzinfo=UTC)


def terms(text: str) -> tuple[Term, ...]:
    return parse_query(text, NOW).terms


def test_empty_query() -> None:
    assert parse_query("", NOW) == SearchQuery(())
    assert parse_query("   \t ", NOW).empty


def test_free_words_are_lower_cased_terms() -> None:
    assert terms("Hello  WORLD") == (Term("text", text="hello"), Term("text", text="world"))


def test_quoted_phrase_is_one_term() -> None:
    assert terms('"Quarterly Report" due') == (
        Term("text", text="quarterly report"),
        Term("text", text="due"),
    )


def test_unterminated_quote_runs_to_the_end() -> None:
    assert terms('"open phrase here') == (Term("text", text="open phrase here"),)


def test_empty_quotes_are_ignored() -> None:
    assert terms('"" x') == (Term("text", text="x"),)


@pytest.mark.parametrize(
    ("query", "field", "text"),
    [
        ("from:Alice@Example.com", "from", "alice@example.com"),
        ("to:bob", "to", "bob"),
        ("cc:carol", "cc", "carol"),
        ("bcc:dave", "bcc", "dave"),
        ("subject:Invoice", "subject", "invoice"),
        ('subject:"Your Invoice"', "subject", "your invoice"),
        ("message-id:<ABC@host>", "message-id", "abc@host"),
        ("message-id:abc@host", "message-id", "abc@host"),
        ("FROM:alice", "from", "alice"),
        ('from:"Alice Smith"', "from", "alice smith"),
    ],
)
def test_text_fields(query: str, field: str, text: str) -> None:
    assert terms(query) == (Term(field, text=text),)  # type: ignore[arg-type]


def test_tag_keeps_case_and_allows_quotes() -> None:
    assert terms("tag:Orders") == (Term("tag", text="Orders"),)
    assert terms('tag:"Two Words"') == (Term("tag", text="Two Words"),)


@pytest.mark.parametrize(
    ("query", "negated"),
    [
        ("is:read", False),
        ("is:unread", True),
        ("-is:read", True),
        ("-is:unread", False),
        ("!is:unread", False),
        ("IS:READ", False),
    ],
)
def test_read_state(query: str, negated: bool) -> None:
    assert terms(query) == (Term("is-read", negated=negated),)


@pytest.mark.parametrize("query", ["has:attachment", "has:attachments", "has:Attachment"])
def test_has_attachment(query: str) -> None:
    assert terms(query) == (Term("has-attachment"),)
    assert terms("-" + query) == (Term("has-attachment", negated=True),)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("-spam", Term("text", text="spam", negated=True)),
        ("!spam", Term("text", text="spam", negated=True)),
        ('-"two words"', Term("text", text="two words", negated=True)),
        ("-from:alice", Term("from", text="alice", negated=True)),
        ('!tag:"a b"', Term("tag", text="a b", negated=True)),
        ("-larger:1kb", Term("larger", size=1024, negated=True)),
        (
            "-before:2024-01-31",
            Term("before", when=datetime(2024, 1, 31, tzinfo=UTC), negated=True),
        ),
    ],
)
def test_negation(query: str, expected: Term) -> None:
    assert terms(query) == (expected,)


def test_lone_dash_is_text() -> None:
    assert terms("a - b") == (
        Term("text", text="a"),
        Term("text", text="-"),
        Term("text", text="b"),
    )


@pytest.mark.parametrize("query", ["http://example.com/x", "foo:bar", "Re:Meeting", "10:30"])
def test_words_with_a_colon_that_are_no_operator_are_free_text(query: str) -> None:
    assert terms(query) == (Term("text", text=query.lower()),)


def test_mailpits_other_operators() -> None:
    """Issue 12: these were searched as text and found nothing."""
    assert terms("is:tagged -is:Tagged has:inline !has:INLINE") == (
        Term("is-tagged"),
        Term("is-tagged", negated=True),
        Term("has-inline"),
        Term("has-inline", negated=True),
    )
    assert terms('reply-to:Help@X.test addressed:"Ann B" bcc:c@d') == (
        Term("reply-to", text="help@x.test"),
        Term("addressed", text="ann b"),
        Term("bcc", text="c@d"),
    )


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("is:starred", '"is:starred" is not known'),
        ("has:pdf", '"has:pdf" is not known'),
        ("in:inbox", 'operator "in:" is not supported'),
        ("-label:work", 'operator "label:" is not supported'),
        ("filename:report.pdf", 'operator "filename:" is not supported'),
        ("older_than:7d", 'operator "older_than:" is not supported'),
    ],
)
def test_unknown_operators_are_refused_naming_them(query: str, named: str) -> None:
    with pytest.raises(QuerySyntaxError, match=named) as refused:
        terms(query)
    assert refused.value.field == "query"
    assert terms(f'"{query}"') == (Term("text", text=query.lower()),)


def test_quoted_prefix_is_free_text() -> None:
    assert terms('"from:alice"') == (Term("text", text="from:alice"),)


def test_empty_field_values_are_dropped() -> None:
    assert terms("from: subject:  x") == (Term("text", text="x"),)


@pytest.mark.parametrize("query", ["tag:", "x tag: y", '-tag:""', "tag:  "])
def test_a_tag_without_a_name_is_refused(query: str) -> None:
    with pytest.raises(QuerySyntaxError, match="names no tag") as refused:
        terms(query)
    assert refused.value.field == "query"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-31", datetime(2024, 1, 31, tzinfo=UTC)),
        ("2024/1/5", datetime(2024, 1, 5, tzinfo=UTC)),
        ('"2024-01-31 10:15"', datetime(2024, 1, 31, 10, 15, tzinfo=UTC)),
        ("2024-01-31T10:15:30", datetime(2024, 1, 31, 10, 15, 30, tzinfo=UTC)),
        ("2024-01-31T10:15:30Z", datetime(2024, 1, 31, 10, 15, 30, tzinfo=UTC)),
        (
            "2024-01-31T10:15:30.250+02:00",
            datetime(2024, 1, 31, 10, 15, 30, 250000, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2024-01-31T10:15:30-0530", datetime(2024, 1, 31, 15, 45, 30, tzinfo=UTC)),
        ("today", datetime(2025, 1, 15, tzinfo=UTC)),
        ("Yesterday", datetime(2025, 1, 14, tzinfo=UTC)),
        ("now", NOW),
        ("7d", NOW - timedelta(days=7)),
        ("12h", NOW - timedelta(hours=12)),
        ("2w", NOW - timedelta(weeks=2)),
    ],
)
def test_dates(value: str, expected: datetime) -> None:
    (before,) = terms(f"before:{value}")
    (after,) = terms(f"after:{value}")
    assert before.field == "before" and after.field == "after"
    assert before.when == expected and after.when == expected
    assert before.when is not None and before.when.tzinfo is not None


def test_unquoted_date_and_time_are_joined() -> None:
    assert terms("after:2024-01-31 10:15 invoice") == (
        Term("after", when=datetime(2024, 1, 31, 10, 15, tzinfo=UTC)),
        Term("text", text="invoice"),
    )
    # A time-looking word after a full timestamp is left alone.
    assert terms("after:2024-01-31T10:00 10:15") == (
        Term("after", when=datetime(2024, 1, 31, 10, tzinfo=UTC)),
        Term("text", text="10:15"),
    )


def test_dates_in_a_caller_time_zone() -> None:
    auckland = timezone(timedelta(hours=13))  # Pacific/Auckland in January
    (term,) = parse_query("before:2024-01-31", NOW, tz=auckland).terms
    assert term.when == datetime(2024, 1, 31, tzinfo=auckland)
    assert term.when is not None and term.when.astimezone(UTC) == datetime(
        2024, 1, 30, 11, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("2000", 2000),
        ("10kb", 10 * 1024),
        ("10K", 10 * 1024),
        ("10KiB", 10 * 1024),
        ("1.5MB", 1572864),
        ("1m", 1024 * 1024),
        ("2GB", 2 * 1024**3),
        ("512b", 512),
        ("512bytes", 512),
        (".5k", 512),
    ],
)
def test_sizes(value: str, size: int) -> None:
    assert terms(f"larger:{value}") == (Term("larger", size=size),)
    assert terms(f"smaller:{value}") == (Term("smaller", size=size),)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("before:2024-13-01", "before:2024-13-01"),
        ("after:31/01/2024", "after:31/01/2024"),
        ("after:", "after:"),
        ("before:soon", "before:soon"),
        ("after:2024-01-31T25:00", "after:2024-01-31T25:00"),
        ("after:2024-01-31T10:00+99:00", "after:2024-01-31T10:00+99:00"),
    ],
)
def test_invalid_dates(query: str, words: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(query, NOW)
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.field == "query"
    assert words in str(caught.value)
    assert "date" in str(caught.value) and "YYYY-MM-DD" in str(caught.value)


@pytest.mark.parametrize(
    "query", ["larger:ten", "smaller:", "larger:-5", "larger:10xb", "smaller:1.2.3"]
)
def test_invalid_sizes(query: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_query(query, NOW)
    assert caught.value.field == "query"
    assert "size" in str(caught.value)


def test_a_full_query() -> None:
    query = parse_query(
        'from:shop "order shipped" -tag:spam is:unread has:attachment after:2025-01-01 '
        "smaller:2MB receipt",
        NOW,
    )
    assert query.terms == (
        Term("from", text="shop"),
        Term("text", text="order shipped"),
        Term("tag", text="spam", negated=True),
        Term("is-read", negated=True),
        Term("has-attachment"),
        Term("after", when=datetime(2025, 1, 1, tzinfo=UTC)),
        Term("smaller", size=2 * 1024 * 1024),
        Term("text", text="receipt"),
    )


def test_limits_name_the_problem() -> None:
    with pytest.raises(QuerySyntaxError, match="largest allowed"):
        parse_query("larger:99999999999999999999", NOW)
    assert terms("larger:1tb") == (Term("larger", size=1024**4),)
    with pytest.raises(QuerySyntaxError, match="33 terms; at most 32"):
        parse_query(" ".join("w" for _ in range(33)), NOW)
    assert len(terms(" ".join("w" for _ in range(32)))) == 32
    # a date with its time is one term
    assert len(terms(" ".join("before:2024-01-31 10:00" for _ in range(32)))) == 32
    with pytest.raises(QuerySyntaxError, match="2001 characters long"):
        parse_query("x" * 2001, NOW)
