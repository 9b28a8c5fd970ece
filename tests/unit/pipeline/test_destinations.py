"""pipeline/destinations.py: which recipients a live project may not send to."""

from __future__ import annotations

import pytest

from postroom.core.errors import RefusalKind
from postroom.pipeline.destinations import destination_refusal, first_refusal


@pytest.mark.parametrize(
    "address",
    [
        "postmaster",
        "@example.com",
        "u@[192.0.2.1]",
        "u@[IPv6:2001:db8::1]",
        "u@localhost",
        "u@LocalHost",
        "u@a.b.localhost",
        "u@printer.local",
        "u@db.internal",
        "u@nas.home.arpa",
        "u@intranet",
        "u@127.0.0.1",
        "u@10.1.2.3",
        "u@\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",  # full-width localhost
        "u@db.\uff49\uff4e\uff54\uff45\uff52\uff4e\uff41\uff4c",  # db.internal, full-width
    ],
)
def test_refused(address: str) -> None:
    refusal = destination_refusal(address)
    assert refusal is not None
    assert refusal.kind is RefusalKind.DESTINATION_NOT_ALLOWED
    assert not refusal.temporary
    assert refusal.field == "To"
    assert f"<{address}>" in refusal.detail


@pytest.mark.parametrize(
    "address",
    ["u@example.com", "u@localhost.example.com", "u@local.example", "u@internal.example.net"],
)
def test_allowed(address: str) -> None:
    assert destination_refusal(address) is None


def test_a_route_allows_exactly_its_domain() -> None:
    routed = frozenset({"db.internal", "intranet"})
    assert destination_refusal("u@DB.internal", routed) is None
    assert destination_refusal("u@intranet", routed) is None
    assert destination_refusal("u@x.db.internal", routed) is not None
    assert destination_refusal("u@[10.0.0.5]", routed) is not None


def test_first_refusal_names_the_first_bad_recipient() -> None:
    assert first_refusal(["a@example.com", "b@example.org"]) is None
    refusal = first_refusal(["a@example.com", "root@localhost", "postmaster"])
    assert refusal is not None and "<root@localhost>" in refusal.detail
