"""The asyncio edge of the SMTP client: a connection carrying out a `ClientSession`'s outputs.

`connect()` opens a TCP connection (optionally from a given local address, optionally with
implicit TLS, RFC 8314), runs the session up to `Ready` and returns an `SmtpClient` that sends
messages one transaction at a time and remembers what a delivery record needs: the peer and
local addresses, the TLS version and cipher, the greeting and the extensions.

Every wait is bounded by the session's own timeout (RFC 5321 §4.5.3.2) and writes by
`write_timeout`. Failures of the session come back as replies, not exceptions: `connect()`
raises `SmtpClientError` (carrying the reply) only when no session was established.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

from postroom.core.errors import PostroomError
from postroom.core.types import TlsInfo
from postroom.smtp.client_protocol import (
    ClientPolicy,
    ClientSession,
    Close,
    Failed,
    Finished,
    OutboundMessage,
    Output,
    Ready,
    Send,
    ServerReply,
    StartTls,
    TransactionResult,
    local_reply,
)

READ_SIZE = 65536


class SmtpClientError(PostroomError):
    """No session could be established; `reply` says why (a real or a local reply)."""

    def __init__(
        self, reply: ServerReply, stage: str, tls_error: BaseException | None = None
    ) -> None:
        super().__init__(f"{stage}: {reply}")
        self.reply = reply
        self.stage = stage
        self.tls_error = tls_error  # the handshake's exception, when TLS failed


@dataclass(frozen=True, slots=True)
class ConnectionFacts:
    peer_host: str
    peer_port: int
    local_host: str
    local_port: int
    tls: TlsInfo | None


def _tls_info(writer: asyncio.StreamWriter) -> TlsInfo | None:
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    cipher = ssl_object.cipher()
    return TlsInfo(version=ssl_object.version() or "", cipher=cipher[0] if cipher else "")


class SmtpClient:
    """One established SMTP client connection (use `connect()`)."""

    def __init__(
        self,
        session: ClientSession,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        write_timeout: float,
    ) -> None:
        self.session = session
        self._reader = reader
        self._writer = writer
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname
        self._write_timeout = write_timeout
        self.tls_error: BaseException | None = None  # why the STARTTLS handshake failed
        self.facts = self._facts()

    def _facts(self) -> ConnectionFacts:
        peer = self._writer.get_extra_info("peername") or ("", 0)
        local = self._writer.get_extra_info("sockname") or ("", 0)
        return ConnectionFacts(
            str(peer[0]), int(peer[1]), str(local[0]), int(local[1]), _tls_info(self._writer)
        )

    @property
    def closed(self) -> bool:
        return self.session.closed

    async def _run(self, outputs: list[Output]) -> Ready | Finished | Failed | None:
        """Carry out outputs and read replies until the session reaches an answer (Ready,
        Finished or Failed) or closes (None)."""
        answer: Ready | Finished | Failed | None = None
        while True:
            for output in outputs:
                if isinstance(output, Send):
                    if not await self._write(output.data):
                        outputs = self.session.connection_lost()
                        break
                elif isinstance(output, StartTls):
                    outputs = await self._start_tls()
                    break
                elif isinstance(output, Close):
                    self._abort()
                elif answer is None:
                    answer = output
            else:
                if answer is not None or self.session.closed:
                    return answer
                outputs = await self._read()
                continue
            # a Send failed or TLS started: the loop continues with the new outputs

    async def _write(self, data: bytes) -> bool:
        # asyncio.timeout, not wait_for: no task per write and read (one per command adds up).
        try:
            self._writer.write(data)
            async with asyncio.timeout(self._write_timeout):
                await self._writer.drain()
        except (TimeoutError, OSError):
            return False
        return True

    async def _read(self) -> list[Output]:
        try:
            async with asyncio.timeout(self.session.timeout()):
                data = await self._reader.read(READ_SIZE)
        except TimeoutError:
            return self.session.timed_out()
        except OSError:
            return self.session.connection_lost()
        if not data:
            return self.session.connection_lost()
        return self.session.feed(data)

    async def _start_tls(self) -> list[Output]:
        context = self._ssl_context or ssl.create_default_context()
        try:
            await asyncio.wait_for(
                self._writer.start_tls(context, server_hostname=self._server_hostname),
                self.session.policy.command_timeout,
            )
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            self._abort()
            self.tls_error = exc
            reply = local_reply(451, "4.7.5", f"TLS handshake failed: {exc}")
            return [Failed("starttls", reply), Close()]
        self.facts = self._facts()
        return self.session.tls_started()

    def _abort(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()

    async def send(self, message: OutboundMessage) -> TransactionResult:
        """One mail transaction. A failure of the connection ends it with temporary replies
        for the recipients not yet answered (and closes the client)."""
        answer = await self._run(self.session.send(message))
        if not isinstance(answer, Finished):  # pragma: no cover - the session always finishes
            raise RuntimeError(f"SMTP transaction ended without a result: {answer!r}")
        return answer.result

    async def reset(self) -> bool:
        """RSET an idle connection before reusing it: whether it is alive and ready."""
        if self.session.closed:
            return False
        answer = await self._run(self.session.reset())
        if isinstance(answer, Ready):
            return True
        self._abort()
        return False

    def reuse(self) -> bool:
        """Take an idle connection for the next transaction without a round trip (its RSET
        goes out with the transaction's MAIL): False when the session is closed, the server
        already hung up, or it does not offer PIPELINING (then `reset()`)."""
        if self.session.closed or self._reader.at_eof() or self._writer.is_closing():
            return False
        return self.session.reuse()

    async def quit(self) -> None:
        """QUIT politely (bounded by the command timeout), then close."""
        if not self.session.closed:
            with contextlib.suppress(Exception):
                await self._run(self.session.quit())
        self._abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)


async def connect(
    host: str,
    port: int,
    policy: ClientPolicy,
    *,
    ssl_context: ssl.SSLContext | None = None,
    implicit_tls: bool = False,
    server_hostname: str | None = None,
    local_address: str | None = None,
    connect_timeout: float = 30.0,
    write_timeout: float = 180.0,
) -> SmtpClient:
    """Connect to `host:port` and establish the session (greeting, EHLO, TLS, AUTH).

    `server_hostname` is the name the certificate is checked against (default `host`).
    Raises SmtpClientError with a reply when the session could not be established."""
    name = server_hostname or host
    context = ssl_context or ssl.create_default_context()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host,
                port,
                ssl=context if implicit_tls else None,
                server_hostname=name if implicit_tls else None,
                local_addr=(local_address, 0) if local_address else None,
                limit=READ_SIZE,
            ),
            connect_timeout,
        )
    except TimeoutError:
        raise SmtpClientError(
            local_reply(451, "4.4.1", "Connection timed out"), "connect"
        ) from None
    except (OSError, ssl.SSLError) as exc:
        reply = local_reply(451, "4.4.1", f"Connection failed: {exc}")
        tls_error = exc if implicit_tls and isinstance(exc, ssl.SSLError) else None
        raise SmtpClientError(reply, "connect", tls_error) from None
    session = ClientSession(policy, tls_active=implicit_tls)
    client = SmtpClient(
        session,
        reader,
        writer,
        ssl_context=context,
        server_hostname=name,
        write_timeout=write_timeout,
    )
    answer = await client._run([])
    if isinstance(answer, Ready):
        return client
    client._abort()
    if isinstance(answer, Failed):
        raise SmtpClientError(answer.reply, answer.stage, client.tls_error)
    raise SmtpClientError(local_reply(451, "4.4.2", "Connection closed"), "greeting")
