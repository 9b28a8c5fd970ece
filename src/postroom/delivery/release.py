"""Release: send a captured message, byte for byte, to given recipients through the relay
(`--relay`), at once, as Mailpit's `POST /api/v1/message/{ID}/release` does.

The relay's answer comes back per recipient; nothing is queued or retried (the caller sees the
result and may try again). The connection follows the relay URL: STARTTLS required for
`smtp://`, implicit TLS for `smtps://`, none for `smtp+plain://`; AUTH when it names a user;
the certificate checked unless `?verify=no`.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

from postroom.delivery.worker import Relay, opportunistic_context
from postroom.smtp.client import SmtpClientError, connect
from postroom.smtp.client_protocol import (
    ClientPolicy,
    OutboundMessage,
    OutboundRecipient,
    RecipientResult,
    TlsMode,
)


async def release(
    relay: Relay,
    helo: str,
    sender: str,
    recipients: Sequence[str],
    data: bytes,
    *,
    connect_timeout: float = 30.0,
) -> list[RecipientResult]:
    """Send `data` from `sender` to `recipients` through `relay`; each recipient's reply.
    Raises SmtpClientError (with the reply) when no session could be established."""
    tls: TlsMode = "required" if relay.tls == "starttls" else "none"
    policy = ClientPolicy(helo, tls=tls, username=relay.username, password=relay.password)
    context: ssl.SSLContext = (
        ssl.create_default_context() if relay.verify else opportunistic_context()
    )
    client = await connect(
        relay.host,
        relay.port,
        policy,
        ssl_context=context,
        implicit_tls=relay.tls == "implicit",
        server_hostname=relay.host,
        connect_timeout=connect_timeout,
    )
    addresses = [sender, *recipients]
    message = OutboundMessage(
        sender,
        tuple(OutboundRecipient(r) for r in recipients),
        data,
        smtputf8=not all(a.isascii() for a in addresses),
    )
    try:
        result = await client.send(message)
    finally:
        await client.quit()
    return list(result.recipients)


__all__ = ["SmtpClientError", "release"]
