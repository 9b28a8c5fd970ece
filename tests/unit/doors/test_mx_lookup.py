"""What the MX door maps a recipient to, with in-memory platform and queue: hosted domains,
the return-path domains `rp.<domain>` (only for their own project's messages), the shared
`--bounce-domain` (any project's), postmaster of a return-path domain; and the verified
domains read again only when the platform's change counter moved."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from postroom.bounces.verp import Verp
from postroom.core.clock import FakeClock
from postroom.core.errors import NotFound, Refusal, RefusalKind
from postroom.core.platform import Domain
from postroom.core.types import Delivery, QueueEntry
from postroom.doors.mx import Bounce, Hosted, MxDoor

T0 = datetime(2026, 1, 1, tzinfo=UTC)
VERP = Verp(b"k" * 32)


def domain(name: str, project: str, verified: bool = True) -> Domain:
    return Domain(f"{project}-{name}", project, name, "t", verified, T0, T0, None, ())


class Platform:
    def __init__(self) -> None:
        self.value = 1
        self.reads = 0
        self.domains = [
            domain("a.example", "alpha"),
            domain("b.example", "beta"),
            domain("later.example", "alpha", verified=False),
        ]

    def generation(self) -> int:
        return self.value

    def list_domains(self, project_id: str | None = None) -> list[Domain]:
        self.reads += 1
        return list(self.domains)


class Queue:
    def __init__(self) -> None:
        self.entries = {
            7: QueueEntry(
                7,
                "m-alpha",
                "alpha",
                Delivery("x@dest.example", "dest.example"),
                "delivered",
                1,
                T0,
                T0,
            ),
            8: QueueEntry(
                8,
                "m-beta",
                "beta",
                Delivery("y@dest.example", "dest.example"),
                "delivered",
                1,
                T0,
                T0,
            ),
        }

    def get(self, entry_id: int) -> QueueEntry:
        try:
            return self.entries[entry_id]
        except KeyError:
            raise NotFound(f"queue entry {entry_id} not found") from None


def door(platform: Platform, bounce_domain: str = "") -> MxDoor:
    return MxDoor(
        platform,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        Queue(),  # type: ignore[arg-type]
        lambda events: None,
        VERP,
        FakeClock(T0),
        None,  # type: ignore[arg-type]
        bounce_domain=bounce_domain,
    )


def kind(found: Any) -> Any:
    return found.kind if isinstance(found, Refusal) else found


def test_hosted_and_return_path_domains() -> None:
    mx = door(Platform())
    assert mx._lookup("Anyone@A.Example") == Hosted("alpha")
    assert mx._lookup("postmaster@rp.a.example") == Hosted("alpha")
    alpha = mx._lookup(VERP.address(7, "rp.a.example"))
    assert isinstance(alpha, Bounce) and alpha.match.recipient == "x@dest.example"
    # A return path of beta's message on alpha's return-path domain is no return path here.
    assert kind(mx._lookup(VERP.address(8, "rp.a.example"))) == RefusalKind.UNKNOWN_RECIPIENT
    assert kind(mx._lookup(VERP.address(9, "rp.a.example"))) == RefusalKind.UNKNOWN_RECIPIENT
    assert kind(mx._lookup("x@later.example")) == RefusalKind.RELAY_DENIED  # not verified
    assert kind(mx._lookup("x@rp.later.example")) == RefusalKind.RELAY_DENIED
    assert kind(mx._lookup(VERP.address(7, "bounces.postroom.test"))) == RefusalKind.RELAY_DENIED


def test_the_shared_bounce_domain_takes_every_projects_return_paths() -> None:
    mx = door(Platform(), bounce_domain="Bounces.Postroom.Test.")
    for entry, project in ((7, "alpha"), (8, "beta")):
        found = mx._lookup(VERP.address(entry, "bounces.postroom.test"))
        assert isinstance(found, Bounce) and found.match.project == project
    assert kind(mx._lookup("postmaster@bounces.postroom.test")) == RefusalKind.UNKNOWN_RECIPIENT


def test_domains_are_read_again_only_when_the_counter_moved() -> None:
    platform = Platform()
    mx = door(platform)
    for _ in range(3):
        mx._lookup("x@a.example")
    assert platform.reads == 1
    platform.domains.append(domain("c.example", "beta"))
    assert kind(mx._lookup("x@c.example")) == RefusalKind.RELAY_DENIED  # not seen yet
    platform.value += 1
    assert mx._lookup("x@c.example") == Hosted("beta")
    assert platform.reads == 2
