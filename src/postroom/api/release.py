"""Mailpit's `POST /api/v1/message/{ID}/release` (`{"To": [...]}`): send a captured message to
real recipients through the configured relay (`--relay`), as Mailpit does with its SMTP relay.

Answers `ok` (text/plain, as Mailpit) once the relay accepted every recipient. Otherwise JSON:
400 when no relay is configured (`Field: relay`), for a bad `To` (`Field: To`), or when the
relay refused a recipient (its reply, per recipient); 404 for an unknown message; 502 when the
relay could not be reached. The envelope sender is the message's own (its From address when
it came with the null sender). Only captured messages are released: a live project's mail
goes through the queue (quotas, suppression), never around it. With
`--release-allowed-recipients` every recipient must match
that regular expression. An API key needs the `send` scope (auth.py): a release sends mail.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from postroom.api.mailpit import blocking, ctx, json_body, string_list
from postroom.core.errors import ConfigError, InvalidInput
from postroom.delivery.release import SmtpClientError, release
from postroom.delivery.worker import Relay
from postroom.smtp.address import AddressError, check_mailbox

MAX_RECIPIENTS = 100


def _recipients(to: list[str] | None, allowed: str) -> list[str]:
    if not to:
        raise InvalidInput("To must name at least one recipient", "To")
    if len(to) > MAX_RECIPIENTS:
        raise InvalidInput(f"To may name at most {MAX_RECIPIENTS} recipients", "To")
    pattern = re.compile(allowed) if allowed else None
    found: list[str] = []
    for item in to:
        address = item.strip().strip("<>")
        try:
            check_mailbox(address, utf8=True)
        except AddressError as exc:
            raise InvalidInput(f"To: {item!r} is not an address: {exc}", "To") from None
        if pattern is not None and pattern.search(address) is None:
            raise InvalidInput(f"To: {address} is not allowed (--release-allowed-recipients)", "To")
        if address not in found:
            found.append(address)
    return found


async def release_message(request: Request) -> Response:
    c = ctx(request)
    body = await json_body(request)
    config = c.config
    unknown = sorted(set(body) - {"To"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", unknown[0])
    recipients = _recipients(string_list(body, "To"), config.release_allowed_recipients)
    if not config.relay:
        raise InvalidInput(
            "releasing needs a relay: start the server with --relay smtp://host:port", "relay"
        )
    try:
        relay = Relay.parse(config.relay)
    except ConfigError as exc:
        raise InvalidInput(str(exc), "relay") from None
    record = await blocking(c.store.get, c.project, request.path_params["id"])  # 404
    if record.status != "captured":
        # A live project's mail is delivered by the queue, after its quota and suppression
        # checks; a release must not be a way around them.
        raise InvalidInput(
            f"only captured messages can be released; this one is {record.status} (a live "
            "project's message is delivered by the queue)",
            "ID",
        )
    raw = await blocking(c.store.raw, c.project, record.id)
    sender = record.envelope.mail_from
    if not sender and record.summary.from_ is not None:
        sender = record.summary.from_.address
    try:
        results = await release(relay, config.hostname, sender, recipients, raw)
    except SmtpClientError as exc:
        return JSONResponse(
            {"Error": f"the relay {relay.host}:{relay.port} refused the session: {exc.reply}"},
            status_code=502,
        )
    refused = [r for r in results if not r.delivered]
    if refused:
        return JSONResponse(
            {
                "Error": "the relay refused "
                + "; ".join(f"{r.address}: {r.reply}" for r in refused),
                "Field": "To",
                "Refused": {r.address: str(r.reply) for r in refused},
            },
            status_code=400,
        )
    return PlainTextResponse("ok")
