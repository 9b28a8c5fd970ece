"""Throttling of failed authentications per client (IPv4 address, IPv6 /64)."""

from __future__ import annotations

from postroom.core.clock import FakeClock
from postroom.pipeline.throttle import AuthThrottle, client_key


def test_blocked_after_max_failures_until_the_oldest_ages_out() -> None:
    clock = FakeClock()
    throttle = AuthThrottle(3, 60, clock)
    throttle.failure("192.0.2.1")
    clock.advance(10)
    throttle.failure("192.0.2.1")
    assert not throttle.blocked("192.0.2.1")
    throttle.failure("192.0.2.1")
    assert throttle.blocked("192.0.2.1")
    assert not throttle.blocked("192.0.2.2")
    clock.advance(50)
    assert not throttle.blocked("192.0.2.1")  # the first failure is 60 s old
    throttle.failure("192.0.2.1")
    assert throttle.blocked("192.0.2.1")


def test_ipv6_clients_are_grouped_by_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    throttle = AuthThrottle(2, 60, FakeClock())
    throttle.failure("2001:db8::1")
    throttle.failure("2001:db8::2")
    assert throttle.blocked("2001:db8::3")


def test_zero_disables() -> None:
    throttle = AuthThrottle(0, 60, FakeClock())
    for _ in range(100):
        throttle.failure("192.0.2.1")
    assert not throttle.blocked("192.0.2.1")


def test_attempts_are_counted_before_they_are_judged() -> None:
    throttle = AuthThrottle(3, 60, FakeClock())
    tokens = [throttle.reserve("192.0.2.1") for _ in range(5)]
    assert [t is not None for t in tokens] == [True, True, True, False, False]
    assert throttle.blocked("192.0.2.1")


def test_a_successful_attempt_does_not_count() -> None:
    clock = FakeClock()
    throttle = AuthThrottle(2, 60, clock)
    first = throttle.reserve("192.0.2.1")
    assert first is not None
    clock.advance(1)
    second = throttle.reserve("192.0.2.1")
    assert second is not None
    assert throttle.reserve("192.0.2.1") is None
    throttle.succeeded("192.0.2.1", second)
    assert not throttle.blocked("192.0.2.1")
    assert throttle.reserve("2001:db8::1") is not None
    clock.advance(60)  # the first attempt aged out; taking it back later changes nothing
    throttle.succeeded("192.0.2.1", first)
    assert throttle.reserve("192.0.2.1") is not None


def test_zero_disables_reservations_too() -> None:
    throttle = AuthThrottle(0, 60, FakeClock())
    tokens = [throttle.reserve("192.0.2.1") for _ in range(100)]
    assert all(t is not None for t in tokens)
    assert not throttle.blocked("192.0.2.1")


def test_waiting_tells_attempts_in_flight_from_failures() -> None:
    throttle = AuthThrottle(2, 60, FakeClock())
    first, second = throttle.reserve("192.0.2.1"), throttle.reserve("192.0.2.1")
    assert first is not None and second is not None
    assert throttle.reserve("192.0.2.1") is None
    assert throttle.waiting("192.0.2.1")  # refused only for the two in flight
    throttle.succeeded("192.0.2.1", first)
    assert throttle.reserve("192.0.2.1") is not None  # room again
    throttle.failed("192.0.2.1", second)
    assert throttle.waiting("192.0.2.1")  # one in flight still
    assert not throttle.waiting("192.0.2.2")
