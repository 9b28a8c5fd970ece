"""Which envelope sender (MAIL FROM) each recipient's delivery uses.

With VERP on, every recipient gets its own return path `bounces+<token>@<bounce domain>`
(bounces/verp.py), so that an asynchronous bounce maps back to its message and recipient.
The bounce domain is `--bounce-domain` when set (one domain for every project, its MX pointing
here); otherwise the return-path domain of the sender's domain, `rp.<domain>`, when that domain
is one of the project's verified sending domains (its MX and SPF records are among those the
domain's page asks to publish; SPF then aligns with the From domain for DMARC). Otherwise, and
always for the null sender (a bounce is never bounced), the message's own envelope sender.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence

from postroom.bounces.verp import Verp
from postroom.core.errors import InvalidInput, PostroomError
from postroom.core.types import QueueEntry
from postroom.dns.dkim import normalize_domain

log = logging.getLogger("postroom.delivery")

# A project's verified sending domains (A-labels, lower case).
DomainsOf = Callable[[str], Awaitable[Collection[str]]]


class ReturnPaths:
    def __init__(
        self,
        verp: Verp,
        bounce_domain: str = "",
        domains_of: DomainsOf | None = None,
        label: str = "rp",
    ) -> None:
        self._verp = verp
        self._bounce_domain = bounce_domain.strip().lower().rstrip(".")
        self._domains_of = domains_of
        self._label = label

    async def bounce_domain(self, project: str, sender: str) -> str | None:
        """The bounce domain for a message of `project` from `sender`, or None (no VERP)."""
        if not sender:
            return None
        if self._bounce_domain:
            return self._bounce_domain
        try:
            domain = normalize_domain(sender.rpartition("@")[2])
        except (ValueError, InvalidInput):
            return None
        if self._domains_of is None:
            return None
        try:
            verified = await self._domains_of(project)
        except PostroomError as exc:  # the project is gone, or the store failed
            log.warning("no return path domain for project %s: %s", project, exc)
            return None
        return f"{self._label}.{domain}" if domain in verified else None

    async def senders(self, sender: str, entries: Sequence[QueueEntry]) -> list[str]:
        """The MAIL FROM of each entry (all of one message)."""
        domain = await self.bounce_domain(entries[0].project, sender) if entries else None
        if domain is None:
            return [sender for _ in entries]
        return [self._verp.address(e.id, domain) for e in entries]
