"""A raw SMTP client for reply-exact tests: write lines, read whole replies, STARTTLS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls,
        port: int,
        *,
        local_host: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> Client:
        local = (local_host, 0) if local_host else None
        reader, writer = await asyncio.open_connection(
            "127.0.0.1",
            port,
            local_addr=local,
            ssl=tls,
            server_hostname="localhost" if tls else None,
        )
        client = cls(reader, writer)
        greeting = await client.reply()
        assert greeting.startswith("220 "), greeting
        return client

    async def reply(self) -> str:
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
        await self.send(line.encode("utf-8") + b"\r\n")
        return await self.reply()

    async def starttls(self, context: ssl.SSLContext) -> None:
        assert (await self.command("STARTTLS")).startswith("220 ")
        await self.writer.start_tls(context, server_hostname="localhost")

    async def ehlo(self) -> str:
        reply = await self.command("EHLO client.test")
        assert reply.startswith("250"), reply
        return reply

    async def login(self, user: str, password: str) -> str:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return await self.command(f"AUTH PLAIN {token}")

    async def message(self, mail_from: str, rcpts: list[str], data: bytes) -> str:
        """MAIL, RCPT..., DATA and the data; the reply to the data (or the first refusal)."""
        reply = await self.command(f"MAIL FROM:<{mail_from}>")
        if not reply.startswith("250"):
            return reply
        for rcpt in rcpts:
            reply = await self.command(f"RCPT TO:<{rcpt}>")
            if not reply.startswith("250"):
                return reply
        reply = await self.command("DATA")
        if not reply.startswith("354"):
            return reply
        await self.send(data + b".\r\n")
        return await self.reply()

    async def at_eof(self) -> bool:
        return await self.reader.read() == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
