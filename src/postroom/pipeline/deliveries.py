"""The deliveries of a live project's message: one per recipient, built from the envelope.

The store writes them as queue entries in the message's own transaction (NewMessage.deliveries).
Each carries what a delivery worker needs without reading the message again: the recipient's
domain for MX routing (lower-case A-labels), and the DSN parameters of RFC 3461 to pass on to
the next hop and to decide the notices: NOTIFY and ORCPT of the recipient, RET and ENVID of the
message.
"""

from __future__ import annotations

from postroom.core.types import Delivery, Envelope
from postroom.pipeline.projects import ascii_domain


def recipient_domain(recipient: str) -> str:
    """The domain to route to: A-labels, lower case; a domain literal (`[192.0.2.1]`) or a
    domain that is not a valid host name stays as written, lower-cased (routing refuses it)."""
    domain = recipient.rpartition("@")[2]
    return ascii_domain(domain) or domain.lower()


def deliveries_for(envelope: Envelope) -> tuple[Delivery, ...]:
    """One delivery per distinct recipient, in envelope order.

    Recipients that differ only in the case or the encoding (U-labels or A-labels) of their
    domain are one mailbox and get one delivery, with the parameters of the first RCPT."""
    ret = envelope.mail_params.get("RET")
    envid = envelope.mail_params.get("ENVID")
    params = envelope.rcpt_params
    seen: set[tuple[str, str]] = set()
    deliveries: list[Delivery] = []
    for index, recipient in enumerate(envelope.recipients):
        domain = recipient_domain(recipient)
        key = (recipient.rpartition("@")[0], domain)
        if key in seen:
            continue
        seen.add(key)
        rcpt = params[index] if index < len(params) else {}
        deliveries.append(
            Delivery(
                recipient=recipient,
                domain=domain,
                notify=rcpt.get("NOTIFY"),
                orcpt=rcpt.get("ORCPT"),
                ret=ret,
                envid=envid,
            )
        )
    return tuple(deliveries)
