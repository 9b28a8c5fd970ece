from __future__ import annotations

from dataclasses import replace

import pytest

from postroom.core.types import Address
from postroom.mime.summary import summarize
from postroom.mime.tags import clean_tag, plus_tag, tags_for
from tests.unit.mime.support import fixture


def test_tags_from_header_and_plus_addresses_in_order() -> None:
    summary = summarize(fixture("plain.eml"))
    # X-Tags first; then the envelope's plus-address; "orders" again (To) is a duplicate.
    tags = tags_for(summary, ["archive+Audit@example.net", "bob+orders@example.net"])
    assert tags == ("orders", "Shipping Notice", "receipts", "Audit")


def test_deduplicated_case_insensitively_keeping_first_spelling() -> None:
    summary = replace(
        summarize(b"Subject: x\r\n\r\n."),
        header_tags=("Invoices", "invoices", "INVOICES "),
        to=(Address("", "a+invoices@example.com"),),
        cc=(Address("", "b+Reports@example.com"), Address("", "c+reports@example.com")),
    )
    assert tags_for(summary, ["x+REPORTS@example.com"]) == ("Invoices", "REPORTS")


def test_recipients_then_to_then_cc() -> None:
    summary = replace(
        summarize(b"Subject: x\r\n\r\n."),
        to=(Address("", "to+second@example.com"),),
        cc=(Address("", "cc+third@example.com"),),
    )
    assert tags_for(summary, ["env+first@example.com", "plain@example.com"]) == (
        "first",
        "second",
        "third",
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  spaced   out  ", "spaced out"),
        ("a<b>c;d,e", "abcde"),
        ("release/v1.2:rc_1-x", "release/v1.2:rc_1-x"),
        ("Überprüfung", "Überprüfung"),
        ("!!!", ""),
        ("tab\there", "tab here"),
    ],
)
def test_clean_tag(raw: str, expected: str) -> None:
    assert clean_tag(raw) == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("user+tag@example.com", "tag"),
        ("<user+tag@example.com>", "tag"),
        ("user+a+b@example.com", "a+b"),
        ("user@example.com", ""),
        ("user+@example.com", ""),
        ("no-at-sign+tag", ""),
        ("", ""),
    ],
)
def test_plus_tag(address: str, expected: str) -> None:
    assert plus_tag(address) == expected


def test_empty_and_unclean_tags_are_dropped() -> None:
    summary = replace(summarize(b"\r\n"), header_tags=("***", "ok"))
    assert tags_for(summary, ["u+@example.com", "u+a+b@example.com"]) == ("ok", "ab")
