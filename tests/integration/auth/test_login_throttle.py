"""The login throttle on a real server: attempts are counted before the password is checked
(parallel guesses cannot all slip through), and the client address comes from
X-Forwarded-For only when the peer is one of --trusted-proxies."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.integration.auth.conftest import ADMIN, PASSWORD, ServerFactory, form_token


def login(base_url: str, password: str, headers: dict[str, str] | None = None) -> int:
    with httpx.Client(base_url=base_url, timeout=60, headers=headers or {}) as client:
        token = form_token(client.get("/login").text)
        data = {"username": ADMIN, "password": password, "csrf_token": token}
        return client.post("/login", data=data).status_code


def test_parallel_logins_cannot_pass_the_limit(start_server: ServerFactory) -> None:
    server = start_server(login_max_failures=10)
    with ThreadPoolExecutor(30) as pool:
        statuses = list(pool.map(lambda i: login(server.base_url, f"guess {i}"), range(30)))
    assert statuses.count(401) == 10, statuses  # checked: exactly the limit
    assert statuses.count(429) == 20, statuses  # refused without checking
    assert login(server.base_url, PASSWORD) == 429  # the right password waits too


def test_a_right_password_does_not_use_up_the_budget(start_server: ServerFactory) -> None:
    server = start_server(login_max_failures=2)
    for _ in range(5):
        assert login(server.base_url, PASSWORD) == 303
    assert login(server.base_url, "wrong") == 401
    assert login(server.base_url, PASSWORD) == 303


def test_forwarded_for_from_an_untrusted_peer_is_ignored(start_server: ServerFactory) -> None:
    """Without --trusted-proxies, a client on loopback cannot claim a fresh address per try."""
    server = start_server(login_max_failures=3)
    for i in range(3):
        assert login(server.base_url, "wrong", {"X-Forwarded-For": f"198.51.100.{i}"}) == 401
    assert login(server.base_url, "wrong", {"X-Forwarded-For": "198.51.100.99"}) == 429
    assert login(server.base_url, PASSWORD) == 429


def test_forwarded_for_from_a_trusted_proxy_names_the_client(start_server: ServerFactory) -> None:
    server = start_server(login_max_failures=2, trusted_proxies=("127.0.0.0/8",))
    behind = {"X-Forwarded-For": "198.51.100.7"}
    for _ in range(2):
        assert login(server.base_url, "wrong", behind) == 401
    assert login(server.base_url, PASSWORD, behind) == 429  # that client is throttled
    other = {"X-Forwarded-For": "198.51.100.8"}
    assert login(server.base_url, PASSWORD, other) == 303  # another one behind the proxy is not
