"""Webhooks through the wired server (app.py runs the webhook worker under its supervisor): a
live project's webhook made through the API, mail submitted with smtplib and delivered to a
receiving MX on loopback, and a real HTTP receiver on 127.0.0.1 that gets the signed `send` and
`delivery` events in order per message, after failing (500), timing out and recovering, across
a restart of the server; a webhook failing for a day is disabled, with a `webhook_disabled`
event and the reason shown. The backoff runs on the server's fake clock: nothing sleeps for it.

The worker's own behaviour (bodies, every retry rule, both databases) is covered at storage
level in tests/integration/storage/test_webhook_delivery.py; this is about the server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from postroom.core.events import EventQuery, NewEvent
from postroom.events.signing import verify
from tests.dnszone import DnsZone
from tests.harness import ServerThread
from tests.integration.storage.test_webhook_delivery import _FrozenTime, check_order, readme_code
from tests.webhook_receiver import Answer, Receiver

from .conftest import SANDBOX_PASSWORD, Env, start_env
from .test_delivery_e2e import MESSAGE
from .test_delivery_e2e import Receiver as Mx

WH = "/api/v2/projects/{project}/webhooks"
SANDBOX_MESSAGE = MESSAGE.replace(b"app@example.com", b"app@sandbox.example")


class HttpReceiver:
    """tests/webhook_receiver.Receiver on its own loop in a thread (the server has its own)."""

    def __init__(self, script: Callable[[int], Answer]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.receiver = self._call(Receiver(script=script).start())

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    @property
    def url(self) -> str:
        return self.receiver.url

    @property
    def requests(self) -> list[Any]:
        return list(self.receiver.requests)

    def stop(self) -> None:
        self._call(self.receiver.stop())
        self._call(self._finish())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @staticmethod
    async def _finish() -> None:
        """Cancel the connections still served (a hung one) and wait for them."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
def mx() -> Iterator[Mx]:
    started = Mx()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def hooked(tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone, mx: Mx) -> Iterator[Env]:
    """The server delivering to `mx`, with the webhook worker on (the default) and loopback
    webhook URLs allowed; a request gets 0.5 s before it counts as timed out."""
    dns_zone.add_mx("example.net", 10, "mx.example.net")
    dns_zone.add_a("mx.example.net", "127.0.0.1")
    environment = start_env(
        tmp_path,
        ca,
        dns_zone,
        delivery=True,
        resolver=dns_zone.nameserver,
        delivery_allow_private=True,
        delivery_mx_port=mx.port,
        webhook_allow_private=True,
        webhook_timeout=0.5,
    )
    try:
        yield environment
    finally:
        environment.server.stop()


def api(env: Env, project: str = "acme") -> httpx.Client:
    service = env.server.app.platform_service
    assert service is not None
    issued = service.create_api_key(project, "hooks", ["manage"])
    headers = {"Authorization": f"Bearer {issued.token}"}
    return httpx.Client(base_url=env.server.base_url, headers=headers, timeout=30)


def create_hook(env: Env, url: str, types: list[str], project: str = "acme") -> dict[str, Any]:
    with api(env, project) as client:
        made = client.post(WH.format(project=project), json={"url": url, "types": types})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def until(
    env: Env,
    done: Callable[[], bool],
    step: float,
    what: str,
    settled: Callable[[], bool] = lambda: True,
) -> None:
    """Move the server's fake clock on until `done()` (bounded: 90 s real): by `step` once
    `settled()` (the worker made the attempts due), else by a second (its next pass)."""
    deadline = time.monotonic() + 90
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        env.tick(step if settled() else 1.0)
        time.sleep(0.05)


def attempted(env: Env, webhook: str) -> Callable[[], bool]:
    """No pending row of the webhook is due: the worker has tried every due one."""

    def check() -> bool:
        now = env.clock.now()
        pending = env.store.webhooks.outbox("acme", webhook, status="pending")
        return all(item.next_attempt > now for item in pending)

    return check


def restart(env: Env) -> None:
    """Stop the server and start it again on the same data and database and the same clock."""
    config = env.server.app.config
    env.server.stop()
    env.server = ServerThread(config, env.clock).start()


def test_signed_events_in_order_after_failures_and_a_restart(hooked: Env, mx: Mx) -> None:
    env = hooked
    answers: list[Answer] = [500, "hang"]
    http = HttpReceiver(lambda n: answers[n] if n < len(answers) else 200)
    try:
        hook = create_hook(env, http.url, ["send", "delivery"])
        secret = hook["secret"]
        # Another project's mail never reaches acme's webhook.
        other = create_hook(env, http.url + "?sandbox", ["send", "delivery", "reject"], "sandbox")
        with env.smtp() as client:
            client.sendmail("app@example.com", ["reader@example.net"], MESSAGE)
            client.sendmail("app@example.com", ["one@example.net", "two@example.net"], MESSAGE)
        with env.smtp("sandbox", SANDBOX_PASSWORD) as client:
            client.sendmail("app@sandbox.example", ["x@example.net"], SANDBOX_MESSAGE)
        ours = {m.id for m in env.messages()}
        assert len(ours) == 2

        # The events wait in the outbox across a restart (none answered 2xx yet).
        restart(env)

        def delivered() -> set[int]:
            return {
                int(r.headers["postroom-event-id"])
                for r in http.requests
                if r.answer == 200 and r.path == "/hook"
            }

        def wanted() -> dict[int, Any]:
            found = env.store.events.query("acme", EventQuery()).events
            return {e.id: e for e in found if e.type in ("send", "delivery")}

        # 3 recipients: 3 send and 3 delivery events once the MX has everything.
        until(
            env,
            lambda: len(mx.messages) == 3 and len(wanted()) == 6 and delivered() == set(wanted()),
            5.0,
            "every send and delivery event answered 2xx",
        )
        events = wanted()
        requests = [r for r in http.requests if r.path == "/hook"]
        assert [r.answer for r in requests[:2]] == [500, "hang"]
        assert sorted(delivered()) == sorted(events)  # each event once answered 2xx
        check_order(requests, events)

        namespace: dict[str, Any] = {}
        exec(readme_code("webhook-verify-python"), namespace)
        check = namespace["verify_postroom_signature"]
        for request in requests:
            assert request.method == "POST"
            assert request.headers["postroom-webhook-id"] == hook["id"]
            stamp = int(request.headers["postroom-timestamp"])
            namespace["time"] = _FrozenTime(stamp)
            assert check(secret, request.headers, request.body) is True
            assert check(other["secret"], request.headers, request.body) is False
            assert verify(secret, request.headers, request.body, now=stamp)
            body = json.loads(request.body)
            assert body["mail"]["messageId"] in ours
            assert body["eventType"] in ("Send", "Delivery")
        # The sandbox project's webhook saw only sandbox events, never acme's.
        for request in http.requests:
            if request.path != "/hook":
                assert json.loads(request.body)["mail"]["messageId"] not in ours
    finally:
        http.stop()


def test_a_webhook_failing_for_a_day_is_disabled(hooked: Env) -> None:
    env = hooked
    failing = HttpReceiver(lambda n: 500)
    watching = HttpReceiver(lambda n: 200)
    try:
        hook = create_hook(env, failing.url, ["send"])
        watcher = create_hook(env, watching.url, ["webhook_disabled"])
        with env.smtp() as client:
            client.sendmail("app@example.com", ["reader@example.net"], MESSAGE)
        one = WH.format(project="acme") + "/" + hook["id"]

        with api(env) as client:

            def disabled() -> bool:
                return client.get(one).json()["enabled"] is False

            # The day of failures counts from the first failed request: the clock must not
            # run ahead of the worker.
            until(env, disabled, 1800.0, "the webhook disabled", attempted(env, hook["id"]))
            shown = client.get(one).json()
        assert shown["disabled_reason"], shown
        assert len(failing.requests) >= 8  # retried through the day, every answer a 500

        until(env, lambda: len(watching.requests) >= 1, 1.0, "the webhook_disabled event")
        (request,) = watching.requests
        stamp = int(request.headers["postroom-timestamp"])
        assert verify(watcher["secret"], request.headers, request.body, now=stamp)
        body = json.loads(request.body)
        assert body["eventType"] == "WebhookDisabled" and "mail" not in body
        assert body["webhook"]["id"] == hook["id"]
        assert body["webhook"]["reason"] == shown["disabled_reason"]
    finally:
        failing.stop()
        watching.stop()


@pytest.mark.parametrize("allow_private", [False, True])
def test_a_name_is_resolved_through_the_resolver_at_each_request(
    tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone, allow_private: bool
) -> None:
    """A webhook URL's name is looked up through --resolver when the request is made (the
    name exists only in the test zone): a name resolving to loopback is accepted at creation
    but its requests are refused unless --webhook-allow-private, and then they arrive."""
    dns_zone.add_a("hooks.test", "127.0.0.1")
    env = start_env(
        tmp_path,
        ca,
        dns_zone,
        resolver=dns_zone.nameserver,
        webhook_allow_private=allow_private,
        webhook_timeout=0.5,
    )
    http = HttpReceiver(lambda n: 200)
    try:
        hook = create_hook(env, f"http://hooks.test:{http.receiver.port}/hook", ["send"])
        with env.smtp() as client:
            client.sendmail("app@example.com", ["reader@example.net"], MESSAGE)

        def tried() -> bool:
            return bool(env.store.webhooks.requests("acme", hook["id"]))

        until(env, tried, 1.0, "a webhook request")
        record = env.store.webhooks.requests("acme", hook["id"])[-1]
        if allow_private:
            until(env, lambda: len(http.requests) >= 1, 1.0, "the request at the receiver")
            assert record.status_code == 200 and record.succeeded
            assert http.requests[0].headers["host"] == f"hooks.test:{http.receiver.port}"
        else:
            assert record.status_code is None and not record.succeeded
            assert "hooks.test resolves only to loopback" in (record.error or "")
            assert "--webhook-allow-private" in (record.error or "")
            assert http.requests == []
    finally:
        http.stop()
        env.server.stop()


def test_a_reputation_pause_calls_the_webhook(hooked: Env) -> None:
    """The guard's pause is an event of the project (no message) that reaches a webhook asking
    for `reputation`, signed, with the level, the rates and why."""
    env = hooked
    http = HttpReceiver(lambda n: 200)
    try:
        hook = create_hook(env, http.url, ["reputation"])
        now = env.clock.now()
        env.store.queue.record_reports(
            [NewEvent("acme", "send", now, "m1", f"r{i}@example.net") for i in range(200)]
            + [
                NewEvent("acme", "bounce", now, "m1", f"r{i}@example.net", {"hard": True})
                for i in range(30)
            ]
        )
        guard = env.server.app.reputation
        assert guard is not None
        assert ("acme", "paused") in guard.run_once()
        until(env, lambda: len(http.requests) >= 1, 1.0, "the reputation event")
        (request,) = http.requests
        assert verify(
            hook["secret"],
            request.headers,
            request.body,
            now=int(request.headers["postroom-timestamp"]),
        )
        body = json.loads(request.body)
        assert body["eventType"] == "Reputation" and "mail" not in body
        assert body["reputation"]["level"] == "paused"
        assert "bounce rate 15%" in json.dumps(body["reputation"])
    finally:
        http.stop()
