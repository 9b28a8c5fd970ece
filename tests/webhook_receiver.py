"""A real HTTP receiver for webhook tests, on a loopback port: each request is recorded (method,
path, headers, body as received on the socket) and answered as the script says: a status code,
or "hang" (no answer until the client gives up).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

Answer = int | str  # a status code, or "hang"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answer: Answer


@dataclass
class Receiver:
    """`script(n)` answers the n-th request (0-based); default: 200 to everything."""

    script: Callable[[int], Answer] = lambda n: 200
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    reply_body: bytes = b""  # the body of 2xx answers (default b"received")
    _server: asyncio.Server | None = None
    _hung: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for writer in list(self._hung):
            writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                answer = self.script(len(self.requests))
                self.requests.append(Received(method, path, headers, body, answer))
                if answer == "hang":
                    self._hung.add(writer)
                    await reader.read()  # until the client closes
                    return
                text = (self.reply_body or b"received") if answer == 200 else b"not today"
                writer.write(
                    f"HTTP/1.1 {answer} X\r\nContent-Length: {len(text)}\r\n\r\n".encode() + text
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
