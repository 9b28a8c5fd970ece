"""The sending rules of pipeline/identity.py: credential check, IP credential match, sender
identities. The management side's tests (tests/unit/platform) run them against the SQL store."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from postroom.core.clock import FakeClock
from postroom.core.platform import IpCredential
from postroom.pipeline import identity
from postroom.pipeline.identity import (
    IpCredentials,
    check_smtp_credential,
    sender_allowed,
    unverified_identities,
)
from postroom.pipeline.projects import ProjectDirectory

from .fakes import CREATED, FakePlatformStore, credential, domain, project, verified_address


def ip(cid: str, network: str, minutes: int = 0, project_id: str = "acme") -> IpCredential:
    return IpCredential(cid, project_id, network, CREATED + timedelta(minutes=minutes))


def test_check_smtp_credential_does_the_same_work_for_unknown_users(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FakePlatformStore()
    store.add_smtp_credential(credential("app", "pw1"))
    compared: list[str] = []
    real = identity.verify_secret

    def counting(secret: str, digest: str) -> bool:
        compared.append(digest)
        return real(secret, digest)

    monkeypatch.setattr(identity, "verify_secret", counting)
    found = check_smtp_credential(store, "app", "pw1")
    assert found is not None and found.username == "app"
    assert check_smtp_credential(store, "app", "wrong") is None
    assert check_smtp_credential(store, "nobody", "pw1") is None
    # one look-up and one digest comparison each, whether the user exists or not
    assert store.calls["smtp_credential_by_username"] == 3
    assert len(compared) == 3
    assert compared[2] != compared[0]  # the unknown user is compared against a dummy digest


def test_ip_credentials_most_specific_then_oldest() -> None:
    table = IpCredentials(
        [
            ip("young", "10.1.0.0/16", minutes=5),
            ip("old", "10.1.0.0/16", minutes=1),
            ip("wide", "10.0.0.0/8"),
            ip("host", "10.1.2.3/32", minutes=9),
            ip("v6", "2001:db8::/32"),
            ip("broken", "not a network"),
        ]
    )
    assert len(table) == 5  # the broken one is left out
    assert table.match("10.1.2.3").id == "host"  # type: ignore[union-attr]
    assert table.match("10.1.9.9").id == "old"  # type: ignore[union-attr]
    assert table.match("10.2.0.1").id == "wide"  # type: ignore[union-attr]
    assert table.match("::ffff:10.1.9.9").id == "old"  # type: ignore[union-attr]
    assert table.match("2001:db8::1%eth0").id == "v6"  # type: ignore[union-attr]
    assert table.match("192.0.2.1") is None
    assert table.match("not-an-ip") is None
    assert IpCredentials().match("10.1.2.3") is None
    # same network and age: the smaller id, whatever the order they were read in
    same = [ip("b", "192.0.2.0/24"), ip("a", "192.0.2.0/24")]
    assert IpCredentials(same).match("192.0.2.9").id == "a"  # type: ignore[union-attr]
    assert IpCredentials(same[::-1]).match("192.0.2.9").id == "a"  # type: ignore[union-attr]


def test_ip_credentials_answer_again_as_the_first_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers are remembered per address (a session asks at MAIL and for its message), the
    same answers, within a bound."""
    monkeypatch.setattr(identity, "MAX_MATCHED", 3)
    table = IpCredentials([ip("host", "10.1.2.3/32"), ip("wide", "10.0.0.0/8")])
    hosts = ["10.1.2.3", "10.9.9.9", "192.0.2.1", "::ffff:10.1.2.3", "10.1.2.3", "192.0.2.1"]
    first = [table.match(host) for host in hosts]
    again = [table.match(host) for host in hosts]
    assert [c and c.id for c in first] == ["host", "wide", None, "host", "host", None]
    assert again == first
    assert len(table._matched) <= 3


async def test_sender_identities() -> None:
    store = FakePlatformStore()
    store.create_project(project("acme", "live"))
    store.add_domain(domain("example.com"))
    store.add_domain(domain("xn--bcher-kva.example"))
    store.add_domain(domain("pending.example", verified=False))
    store.add_address_identity(verified_address("Person@Gmail.example"))
    view = await ProjectDirectory(store, FakeClock()).get("acme")
    assert sender_allowed(view, "anyone@EXAMPLE.com")
    assert sender_allowed(view, "person@gmail.example")
    assert sender_allowed(view, "x@bücher.example")  # IDN: matched by its A-label
    assert not sender_allowed(view, "other@gmail.example")
    assert not sender_allowed(view, "x@sub.example.com")  # exact domain only
    assert not sender_allowed(view, "x@pending.example")  # not verified
    # odd addresses are simply not verified identities (never an exception)
    for odd in ("root@localhost", "x@[192.0.2.1]", "garbage", "", "a@-bad-.example"):
        assert not sender_allowed(view, odd)
    # a credential restricted to senders: within them and verified
    assert sender_allowed(view, "news@example.com", ("example.com",))
    assert sender_allowed(view, "ceo@example.com", ("ceo@example.com",))
    assert not sender_allowed(view, "cfo@example.com", ("ceo@example.com",))
    assert not sender_allowed(view, "someone@elsewhere.example", ("elsewhere.example",))
    assert unverified_identities(
        view, ["a@example.com", "x@nope.example", "x@nope.example", "root@localhost"], ()
    ) == ["x@nope.example", "root@localhost"]


async def test_the_directory_drops_its_snapshots_when_the_change_counter_moves() -> None:
    """The submission door hands over the counter it read at MAIL: a change made anywhere
    applies to the next message without waiting for the TTL (a FakeClock: it never runs
    out here)."""
    store = FakePlatformStore()
    store.create_project(project("acme", "live"))
    store.add_address_identity(verified_address("a@example.com"))
    directory = ProjectDirectory(store, FakeClock())
    directory.saw_generation(store.generation())
    assert (await directory.get("acme")).verified("a@example.com")
    store.delete_address_identity("acme", "a@example.com")
    directory.saw_generation(store.generation())  # unchanged counter: kept; moved: dropped
    assert not (await directory.get("acme")).verified("a@example.com")
    reads = store.calls["get_project"]
    directory.saw_generation(store.generation())
    await directory.get("acme")
    assert store.calls["get_project"] == reads  # the same counter: the snapshot is kept


async def test_a_snapshot_read_while_the_counter_moved_is_not_kept() -> None:
    store = FakePlatformStore()
    store.create_project(project("acme", "live"))
    directory = ProjectDirectory(store, FakeClock())
    loading = asyncio.ensure_future(directory.get("acme"))
    while "get_project" not in store.calls:  # the read is under way on a worker thread
        await asyncio.sleep(0.001)
    directory.saw_generation(1)
    await loading
    reads = store.calls["get_project"]
    await directory.get("acme")
    assert store.calls["get_project"] == reads + 1  # read afresh, not the one under way
