"""Deadlines: per command, per data block (silence and minimum rate), per session."""

from __future__ import annotations

import pytest

from postroom.smtp.deadlines import Deadlines


def make(now: float = 0.0, **limits: float) -> Deadlines:
    values = {"command_timeout": 300.0, "data_timeout": 180.0, "data_min_rate": 1024.0}
    values.update(limits)
    return Deadlines(now, **values)


def test_partial_command_octets_do_not_extend_the_command_deadline() -> None:
    deadlines = make()
    for t in range(3, 300, 3):  # a byte every 3 s
        deadlines.received(float(t), 1)
        assert deadlines.expired(float(t)) is None
    assert deadlines.expired(300.0) == "timeout"


def test_a_completed_command_gives_a_new_prompt() -> None:
    deadlines = make()
    deadlines.command(299.0)
    assert deadlines.next() == (599.0, "timeout")
    assert deadlines.expired(598.9) is None


def test_a_trickle_in_data_is_cut_when_the_grace_ends() -> None:
    deadlines = make()
    deadlines.data(10.0)
    t = 10.0
    while deadlines.expired(t) is None:
        t += 3.0
        deadlines.received(t, 1)
        assert t < 200
    assert deadlines.expired(t) == "too_slow"
    assert 190.0 <= t <= 193.0  # 180 s of grace, then the rate is owed


def test_a_block_at_the_minimum_rate_goes_on_and_a_fast_one_runs_ahead() -> None:
    deadlines = make()
    deadlines.data(0.0)
    for t in range(1, 3600):
        deadlines.received(float(t), 1024)
        assert deadlines.expired(float(t)) is None
    fast = make()
    fast.data(0.0)
    fast.received(1.0, 40 * 1024 * 1024)
    assert fast.credit() > 40_000  # far ahead of the clock: never the one evicted
    assert fast.next() == (181.0, "timeout")  # silence is still limited to data_timeout


def test_silence_in_a_block_is_the_rfc_data_timeout() -> None:
    deadlines = make(data_min_rate=0)
    deadlines.data(0.0)
    deadlines.received(100.0, 1)
    assert deadlines.next() == (280.0, "timeout")
    assert deadlines.credit() == 100.0


def test_the_session_lifetime_caps_everything() -> None:
    deadlines = make(session_lifetime=600.0)
    for t in range(0, 600, 240):  # a NOOP every 4 minutes
        deadlines.command(float(t))
    assert deadlines.next() == (600.0, "session_lifetime")
    assert deadlines.expired(600.0) == "session_lifetime"


@pytest.mark.parametrize("lifetime", [0.0, -1.0])
def test_no_lifetime(lifetime: float) -> None:
    deadlines = make(session_lifetime=lifetime)
    deadlines.command(1e9)
    assert deadlines.next() == (1e9 + 300.0, "timeout")


def test_credit_is_the_last_step_towards_mail_while_waiting_for_a_command() -> None:
    deadlines = make()
    deadlines.received(50.0, 1)
    assert deadlines.credit() == 0.0
    deadlines.command(60.0)  # a NOOP: a new prompt, but no step
    assert deadlines.credit() == 0.0
    deadlines.advanced(60.0)  # a MAIL
    assert deadlines.credit() == 60.0
    deadlines.data(70.0, 2048)
    assert deadlines.credit() == 72.0
