"""Chaos over real SMTP: triggers set through /api/v1/chaos make the capture door answer
MAIL, RCPT or AUTH with the chosen code (probability 100 always, 0 never, 50 as the seeded
dice say); each project has its own triggers; bad triggers are 400 JSON naming the field;
without --enable-chaos the endpoint says how to enable it."""

from __future__ import annotations

import random
import smtplib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from postroom.platform import IssuedApiKey
from tests.harness import ServerThread, make_config
from tests.integration.auth.conftest import create_admin, create_key

MESSAGE = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: chaos\r\n\r\nhello\r\n"
SEED = 1234


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[tuple[ServerThread, IssuedApiKey, IssuedApiKey]]:
    config = make_config(tmp_path / "data", enable_chaos=True)
    create_admin(config)
    own = create_key(config, "default", "read")
    other = create_key(config, "other-team", "read")
    server = ServerThread(config)
    assert server.app.chaos is not None
    server.app.chaos.rng = random.Random(SEED)
    server.start()
    try:
        yield server, own, other
    finally:
        server.stop()


def api(server: ServerThread, key: IssuedApiKey) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key.token}"}, timeout=30
    )


def send(server: ServerThread, login: bool = False) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
        if login:
            smtp.login("tester", "secret")
        smtp.sendmail("a@example.com", ["b@example.com"], MESSAGE)


def stages(**given: tuple[int, int]) -> dict[str, dict[str, int]]:
    return {
        stage: {"ErrorCode": code, "Probability": probability}
        for stage, (code, probability) in given.items()
    }


DEFAULTS = stages(Authentication=(451, 0), Recipient=(451, 0), Sender=(451, 0))


def test_each_stage_fails_on_purpose_at_100_and_never_at_0(
    keys: tuple[ServerThread, IssuedApiKey, IssuedApiKey],
) -> None:
    server, own, _ = keys
    with api(server, own) as http:
        assert http.get("/api/v1/chaos").json() == DEFAULTS
        assert http.get("/api/v1/webui").json()["ChaosEnabled"] is True

        answer = http.put("/api/v1/chaos", json=stages(Sender=(451, 100)))
        assert answer.status_code == 200
        assert answer.json() == {**DEFAULTS, **stages(Sender=(451, 100))}
        with pytest.raises(smtplib.SMTPSenderRefused) as sender:
            send(server)
        assert sender.value.smtp_code == 451
        assert sender.value.smtp_error.startswith(b"4.0.0 Chaos: Sender error injected")

        # Stages left out go back to 0 %.
        answer = http.put("/api/v1/chaos", json=stages(Recipient=(550, 100)))
        assert answer.json() == {**DEFAULTS, **stages(Recipient=(550, 100))}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as recipient:
            send(server)
        code, text = recipient.value.recipients["b@example.com"]
        assert code == 550 and text.startswith(b"5.0.0 Chaos: Recipient error")

        http.put("/api/v1/chaos", json=stages(Authentication=(535, 100)))
        with pytest.raises(smtplib.SMTPAuthenticationError) as auth:
            send(server, login=True)
        assert auth.value.smtp_code == 535
        send(server)  # without AUTH the message goes through

        http.put("/api/v1/chaos", json=stages(Sender=(421, 0), Recipient=(550, 0)))
        send(server, login=True)
        assert http.put("/api/v1/chaos", json={}).json() == DEFAULTS
        assert http.get("/api/v1/messages").json()["total"] == 2


def test_probability_follows_the_seeded_dice(
    keys: tuple[ServerThread, IssuedApiKey, IssuedApiKey],
) -> None:
    server, own, _ = keys
    dice = random.Random(SEED)
    expected = [dice.randrange(100) < 30 for _ in range(12)]
    assert True in expected and False in expected  # the seed shows both outcomes
    with api(server, own) as http:
        http.put("/api/v1/chaos", json=stages(Sender=(452, 30)))
        failed = []
        for _ in expected:
            try:
                send(server)
                failed.append(False)
            except smtplib.SMTPSenderRefused as exc:
                assert exc.smtp_code == 452
                failed.append(True)
        assert failed == expected
        assert http.get("/api/v1/messages").json()["total"] == expected.count(False)


def test_triggers_are_per_project(keys: tuple[ServerThread, IssuedApiKey, IssuedApiKey]) -> None:
    server, own, other = keys
    with api(server, other) as http:
        set_other = http.put("/api/v1/chaos", json=stages(Sender=(554, 100)))
        assert set_other.status_code == 200
        assert http.get("/api/v1/chaos").json()["Sender"] == {"ErrorCode": 554, "Probability": 100}
    with api(server, own) as http:
        assert http.get("/api/v1/chaos").json() == DEFAULTS
    send(server)  # the capture door's project (default) is untouched


def test_bad_triggers_are_refused_naming_the_field(
    keys: tuple[ServerThread, IssuedApiKey, IssuedApiKey],
) -> None:
    server, own, _ = keys
    cases = [
        (
            stages(Sender=(600, 5)),
            "Sender.ErrorCode",
            "Sender.ErrorCode must be from 400 to 599, got 600",
        ),
        (
            stages(Recipient=(451, 101)),
            "Recipient.Probability",
            "Recipient.Probability must be from 0 to 100, got 101",
        ),
        (
            {"Sender": {"ErrorCode": "451", "Probability": 5}},
            "Sender.ErrorCode",
            "Sender.ErrorCode must be a whole number from 400 to 599",
        ),
        ({"Sender": {"ErrorCode": 451}}, "Sender.Probability", "Sender.Probability is required"),
        ({"Sender": 5}, "Sender", "Sender must be an object with ErrorCode and Probability"),
        (
            {"Data": {"ErrorCode": 451, "Probability": 5}},
            "Data",
            "unknown Chaos stage 'Data': expected Authentication, Recipient, Sender",
        ),
    ]
    with api(server, own) as http:
        for body, field, error in cases:
            answer = http.put("/api/v1/chaos", json=body)
            assert answer.status_code == 400, body
            assert answer.json() == {"Error": error, "Field": field}
        not_json = http.put(
            "/api/v1/chaos", content=b"{", headers={"Content-Type": "application/json"}
        )
        assert not_json.status_code == 400 and not_json.json()["Field"] == "body"
        assert http.get("/api/v1/chaos").json() == DEFAULTS  # nothing was changed


def test_without_enable_chaos(tmp_path: Path) -> None:
    server = ServerThread(make_config(tmp_path / "data")).start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            for answer in (http.get("/api/v1/chaos"), http.put("/api/v1/chaos", json={})):
                assert answer.status_code == 400
                assert answer.json() == {
                    "Error": "Chaos is not enabled: start Postroom with --enable-chaos",
                    "Field": "chaos",
                }
            assert http.get("/api/v1/webui").json()["ChaosEnabled"] is False
        send(server)
    finally:
        server.stop()
