"""Admission at the asyncio edge, with fake transports: the per-client limit counts an IPv4
address or an IPv6 /64 as one client (one host usually holds a whole /64)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from postroom.core.clock import FakeClock, SystemClock
from postroom.core.types import DoorName, IncomingMessage, SessionInfo
from postroom.smtp.protocol import SessionPolicy
from postroom.smtp.server import Listener, SmtpServer, _Connection


class FakeTransport(asyncio.Transport):
    def __init__(self, peer: tuple[str, int]) -> None:
        super().__init__()
        self.peer = peer
        self.written = bytearray()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Door:
    """A door that accepts everything (smtp.server.SmtpDoor)."""

    checks_sender = False
    checks_recipient = False

    async def authenticate(
        self, mechanism: str, username: str, password: str, session: SessionInfo
    ) -> str | None:
        return None

    def check_sender(self, session: SessionInfo, address: str, params: Mapping[str, str]) -> None:
        return None

    def check_recipient(
        self, session: SessionInfo, mail_from: str, address: str, params: Mapping[str, str]
    ) -> None:
        return None

    async def deliver(self, incoming: IncomingMessage) -> str:
        return "MSG"

    def session_ended(self, summary: dict[str, Any]) -> None:
        pass

    def refused(self, door: DoorName, reason: str) -> None:
        pass


async def test_the_per_client_limit_counts_an_ipv6_64_as_one_client() -> None:
    loop = asyncio.get_running_loop()
    listener = Listener("capture", "127.0.0.1", 0, SessionPolicy(hostname="mx.test"), max_per_ip=2)
    server = SmtpServer(listener, Door(), clock=SystemClock())
    server._loop = loop
    opened: list[tuple[_Connection, FakeTransport]] = []

    def connect(peer: str) -> bytes:
        connection = _Connection(server, loop)
        transport = FakeTransport((peer, 40000))
        connection.connection_made(transport)
        opened.append((connection, transport))
        return bytes(transport.written[:4])

    try:
        assert connect("2001:db8:1:2::1") == b"220 "
        assert connect("2001:db8:1:2:ffff:ffff:ffff:9") == b"220 "
        assert connect("2001:db8:1:2::abcd") == b"421 "  # same /64: a third connection
        assert connect("2001:db8:1:3::1") == b"220 "  # the next /64 is another client
        assert connect("192.0.2.1") == b"220 "
        assert connect("::ffff:192.0.2.1") == b"220 "  # IPv4-mapped: the same IPv4 client
        assert connect("192.0.2.1") == b"421 "
        assert connect("192.0.2.2") == b"220 "
        assert server.connections == 6
        # a slot freed in the /64 is usable by any address in it
        opened[0][0].connection_lost(None)
        assert connect("2001:db8:1:2::77") == b"220 "
    finally:
        for connection, _ in opened:
            connection.connection_lost(None)
    assert server.connections == 0


async def test_a_full_server_makes_room_only_from_connections_idle_long_enough() -> None:
    loop = asyncio.get_running_loop()
    clock = FakeClock()
    listener = Listener(
        "capture",
        "127.0.0.1",
        0,
        SessionPolicy(hostname="mx.test"),
        max_connections=3,
        evict_after=1.0,
    )
    server = SmtpServer(listener, Door(), clock=clock)
    server._loop = loop
    opened: list[tuple[_Connection, FakeTransport]] = []

    def connect(peer: str) -> FakeTransport:
        connection = _Connection(server, loop)
        transport = FakeTransport((peer, 40000))
        connection.connection_made(transport)
        opened.append((connection, transport))
        return transport

    try:
        a, b, c = connect("192.0.2.1"), connect("192.0.2.2"), connect("192.0.2.3")
        clock.advance(0.5)
        assert connect("192.0.2.4").written.startswith(b"421 4.7.0")  # nobody idle for 1 s
        clock.advance(0.5)
        d = connect("192.0.2.5")
        assert d.written.startswith(b"220 ")
        evicted = [t for t in (a, b, c) if b"421 4.7.0" in t.written]
        assert len(evicted) == 1 and evicted[0].closed is False  # lingering: FIN, then close
        remaining = [t for t in (a, b, c) if t is not evicted[0]]
        # one of the two left takes a step towards mail: the other is the one to go next
        clock.advance(0.5)
        stepping = next(conn for conn, t in opened if t is remaining[0])
        stepping.data_received(b"EHLO c.test\r\n")
        clock.advance(0.5)
        assert connect("192.0.2.6").written.startswith(b"220 ")
        assert b"421 4.7.0" not in remaining[0].written
        assert b"421 4.7.0" in remaining[1].written
        assert server.connections == 3
    finally:
        for connection, _ in opened:
            connection.connection_lost(None)
    assert server.connections == 0
