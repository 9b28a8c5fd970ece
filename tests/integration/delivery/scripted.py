"""A scripted receiving SMTP server on loopback that records everything it sees: each
connection (the client's address and EHLO name, every command) and each mail transaction.

Plain asyncio, no Postroom code: it answers EHLO with `extensions`, 250 to MAIL, RCPT, RSET
and NOOP, 354 to DATA then 250 after the dot, 221 to QUIT. `drop_after` closes a connection
without a word after that many transactions (a server dropping an idle kept connection);
`close_on_rset` answers RSET with 421 and closes (one that timed the connection out).
`rcpt_replies` are given, one each, to the first RCPT commands instead of 250 (a 421 one
closes the connection after it, as RFC 5321 §3.8 has it): a server pushing back. A
`greeting` other than 220 is sent and the connection closed (a server refusing sessions).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Seen:
    """One connection as the server saw it."""

    peer: str
    local: str
    ehlo: str = ""
    commands: list[str] = field(default_factory=list)

    def count(self, verb: str) -> int:
        return sum(1 for c in self.commands if c.upper().split(" ", 1)[0].startswith(verb))


@dataclass
class Transaction:
    mail_from: str
    recipients: list[str]
    data: bytes
    connection: int  # index into `ScriptedServer.connections`


class ScriptedServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        extensions: tuple[str, ...] = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"),
        drop_after: int | None = None,
        close_on_rset: bool = False,
        rcpt_replies: tuple[str, ...] = (),
        greeting: str = "220 mx.scripted.test ESMTP",
    ) -> None:
        self.host = host
        self.extensions = extensions
        self.drop_after = drop_after
        self.close_on_rset = close_on_rset
        self.rcpt_replies = list(rcpt_replies)
        self.greeting = greeting
        self.connections: list[Seen] = []
        self.transactions: list[Transaction] = []
        self.port = port
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._session, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        local = writer.get_extra_info("sockname")
        seen = Seen(peer[0], local[0])
        self.connections.append(seen)
        index = len(self.connections) - 1
        done = 0
        mail_from, recipients = "", []

        def reply(text: str) -> None:
            writer.write(text.encode() + b"\r\n")

        try:
            reply(self.greeting)
            if not self.greeting.startswith("220"):
                await writer.drain()
                return
            while True:
                await writer.drain()
                line = await reader.readline()
                if not line:
                    return
                command = line.decode().rstrip("\r\n")
                seen.commands.append(command)
                verb = command.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    seen.ehlo = command.split(" ", 1)[1] if " " in command else ""
                    lines = ["mx.scripted.test", *self.extensions]
                    for item in lines[:-1]:
                        reply(f"250-{item}")
                    reply(f"250 {lines[-1]}")
                elif verb == "MAIL":
                    mail_from, recipients = command.split(":", 1)[1].split(">")[0][1:], []
                    reply("250 2.1.0 Ok")
                elif verb == "RCPT" and self.rcpt_replies:
                    answer = self.rcpt_replies.pop(0)
                    reply(answer)
                    if answer.startswith("421"):
                        await writer.drain()
                        return
                elif verb == "RCPT":
                    recipients.append(command.split(":", 1)[1].split(">")[0][1:])
                    reply("250 2.1.5 Ok")
                elif verb == "DATA":
                    reply("354 End data with <CR><LF>.<CR><LF>")
                    await writer.drain()
                    data = b""
                    while not (data == b".\r\n" or data.endswith(b"\r\n.\r\n")):
                        chunk = await reader.readline()
                        if not chunk:
                            return
                        data += chunk
                    body = data[: -len(b".\r\n")].replace(b"\r\n..", b"\r\n.")
                    self.transactions.append(Transaction(mail_from, recipients, body, index))
                    done += 1
                    reply(f"250 2.0.0 Ok: queued as T{len(self.transactions)}")
                    if self.drop_after is not None and done >= self.drop_after:
                        await writer.drain()
                        return
                elif verb == "RSET" and self.close_on_rset:
                    reply("421 4.4.2 mx.scripted.test Error: timeout exceeded")
                    await writer.drain()
                    return
                elif verb in ("RSET", "NOOP"):
                    reply("250 2.0.0 Ok")
                elif verb == "QUIT":
                    reply("221 2.0.0 Bye")
                    await writer.drain()
                    return
                else:
                    reply("502 5.5.2 Command not recognized")
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
