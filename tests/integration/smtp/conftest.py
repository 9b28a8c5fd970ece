"""A real SmtpServer on 127.0.0.1 (port 0) with an in-memory pipeline, and a raw line client."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from postroom.core.clock import SystemClock
from postroom.core.errors import Refusal
from postroom.core.types import DoorName, IncomingMessage, SessionInfo
from postroom.smtp.protocol import SessionPolicy
from postroom.smtp.server import Listener, SmtpServer
from postroom.smtp.spool import Spool
from postroom.smtp.tls import generate_self_signed, server_context

USERS = {"bob": "s3cret", "jöran": "pässwörd"}


Check = Callable[[str], "Refusal | Awaitable[Refusal | None] | None"]


@dataclass
class Recorder:
    """A door (smtp.server.SmtpDoor) with an in-memory pipeline and credential check,
    recording what it sees. `sender_check` / `recipient_check`, when given, judge MAIL / RCPT
    (and may answer at once or through an awaitable)."""

    messages: list[IncomingMessage] = field(default_factory=list)
    auth_calls: list[tuple[str, str, SessionInfo]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[str, str]] = field(default_factory=list)
    deliver_hook: Callable[[IncomingMessage], Awaitable[None]] | None = None
    sender_check: Check | None = None
    recipient_check: Check | None = None
    checked: list[tuple[str, str, SessionInfo]] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def checks_sender(self) -> bool:
        return self.sender_check is not None

    @property
    def checks_recipient(self) -> bool:
        return self.recipient_check is not None

    def check_sender(
        self, session: SessionInfo, address: str, params: Mapping[str, str]
    ) -> Refusal | Awaitable[Refusal | None] | None:
        assert self.sender_check is not None
        self.checked.append(("sender", address, session))
        return self.sender_check(address)

    def check_recipient(
        self, session: SessionInfo, mail_from: str, address: str, params: Mapping[str, str]
    ) -> Refusal | Awaitable[Refusal | None] | None:
        assert self.recipient_check is not None
        self.checked.append(("recipient", address, session))
        return self.recipient_check(address)

    async def deliver(self, message: IncomingMessage) -> str:
        if self.deliver_hook is not None:
            await self.deliver_hook(message)
        self.messages.append(message)
        return f"MSG{len(self.messages)}"

    async def authenticate(
        self, mechanism: str, username: str, password: str, session: SessionInfo
    ) -> str | None:
        self.auth_calls.append((mechanism, username, session))
        return username if USERS.get(username) == password else None

    def session_ended(self, summary: dict[str, Any]) -> None:
        self.sessions.append(summary)
        self.ended.set()

    def refused(self, door: DoorName, reason: str) -> None:
        self.rejects.append((door, reason))

    async def wait_sessions(self, count: int) -> list[dict[str, Any]]:
        while len(self.sessions) < count:
            self.ended.clear()
            await self.ended.wait()
        return self.sessions


@dataclass
class Running:
    server: SmtpServer
    recorder: Recorder

    @property
    def port(self) -> int:
        return self.server.port


StartServer = Callable[..., Awaitable[Running]]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("smtp-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    generate_self_signed(cert, key, "localhost")
    return cert, key


@pytest.fixture
def client_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))


@pytest.fixture
async def start_server(tls_files: tuple[Path, Path]) -> AsyncIterator[StartServer]:
    started: list[SmtpServer] = []

    async def start(
        *,
        door: DoorName = "capture",
        tls: bool = False,
        implicit_tls: bool = False,
        max_connections: int = 1000,
        max_per_ip: int = 100,
        evict_after: float = 60.0,  # tests that make room say so (the default is EVICT_AFTER)
        recorder: Recorder | None = None,
        spool: Spool | None = None,
        **policy: Any,
    ) -> Running:
        values: dict[str, Any] = {"hostname": "mx.test", "auth_without_tls": True}
        if tls and not implicit_tls:
            values["starttls_available"] = True
        values.update(policy)
        recorder = recorder or Recorder()
        listener = Listener(
            door=door,
            host="127.0.0.1",
            port=0,
            policy=SessionPolicy(**values),
            ssl_context=server_context(*tls_files) if tls or implicit_tls else None,
            implicit_tls=implicit_tls,
            max_connections=max_connections,
            max_per_ip=max_per_ip,
            evict_after=evict_after,
        )
        server = SmtpServer(listener, recorder, clock=SystemClock(), spool=spool)
        await server.start()
        started.append(server)
        return Running(server, recorder)

    yield start
    for server in started:
        await server.stop()


class LineClient:
    """A raw SMTP client over asyncio streams: write bytes, read whole replies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, *, local_host: str | None = None) -> LineClient:
        local = (local_host, 0) if local_host else None
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
        return cls(reader, writer)

    async def reply(self) -> str:
        """One whole reply (multi-line joined with newlines); "" at end of stream."""
        lines: list[str] = []
        while True:
            line = await self.reader.readline()
            if not line:
                return "\n".join(lines)
            text = line.decode("utf-8").rstrip("\r\n")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return "\n".join(lines)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, line: str) -> str:
        await self.send(line.encode() + b"\r\n")
        return await self.reply()

    async def at_eof(self) -> bool:
        return await self.reader.read() == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
