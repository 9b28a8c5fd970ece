"""Submission (RFC 6409): the checks and fix-ups of a submitted message.

`SubmissionSteps` runs inside the acceptance pipeline for every submitted message (the SMTP
submission doors, the sending API later): the From header, the verified identities, line
lengths, quotas, header fix-ups and the DKIM signature. Nothing is stored before every check
has passed. Who may submit (AUTH, IP credentials) is the door's business:
doors/submission.py.

Refusals (core.errors.Refusal), as the SMTP doors render them (smtp/refusals.py):

    550 5.6.0 <sentence>                                  no/several/unparseable From, bad
                                                          Sender, unfoldable long header
                                                          line, body line over 998 octets
    554 5.7.1 Message rejected: Email address is not verified. The following identities
              failed the check: <identities>              unverified or not allowed sender
    553 5.1.2 Recipient <...> ...                          a live project's recipient that is
                                                          an IP literal, has no domain or is
                                                          on a private name
    454 4.7.0 Throttling failure: Daily message quota exceeded
    454 4.7.0 Throttling failure: Maximum sending rate exceeded
    550 5.7.1 Account suspended: ...                      an admin suspended the project's
                                                          sending (pipeline/suspension.py)
    554 5.7.1 Sending paused for this project             the reputation guard paused it
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from postroom.core.errors import Refusal, RefusalKind
from postroom.core.spooled import SpooledData, read_head, read_spooled, spooled_chunks
from postroom.core.types import IncomingMessage
from postroom.dns.dkim import DkimSigner
from postroom.pipeline.destinations import first_refusal
from postroom.pipeline.headers import (
    address_domain,
    check_body_line_chunks,
    fix_up,
    read_authors,
    split_message,
)
from postroom.pipeline.identity import unverified_identities
from postroom.pipeline.projects import ProjectDirectory, ascii_domain
from postroom.pipeline.quota import QuotaTracker, Reservation, sends_of
from postroom.pipeline.shared_reads import SharedReads
from postroom.pipeline.signing import SignerCache, body_hash, sign, sign_head
from postroom.pipeline.suspension import suspension_refusal

log = logging.getLogger("postroom.pipeline")

SENDING_PAUSED = Refusal(RefusalKind.SENDING_PAUSED, "Sending paused for this project")
UNVERIFIED = "Message rejected: Email address is not verified. "
UNVERIFIED += "The following identities failed the check: "


@dataclass(frozen=True, slots=True)
class Submitter:
    """Who submits a message: the project it goes to and the credential that vouched for it.

    `principal` names the credential for logs and records ("smtp:<user>", "ip:<network>",
    "api:<key id>"); `allowed_from` restricts the sender identities (domains or addresses;
    empty = any verified identity of the project)."""

    project: str
    principal: str
    allowed_from: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A submitted message that passed every check: the bytes to store and how. A big
    message's body stays in its spool file (`body`): the message is `data` followed by it."""

    data: bytes
    status: str  # "queued" (live project) or "captured"
    reservation: Reservation
    body: SpooledData | None = None


class SubmissionSteps:
    """Checks, quota, fix-ups and DKIM for submitted messages (used by AcceptancePipeline)."""

    def __init__(
        self,
        directory: ProjectDirectory,
        quota: QuotaTracker,
        signers: SignerCache,
        hostname: str,
        routed: frozenset[str] = frozenset(),
    ) -> None:
        """`routed`: the domains with an explicit route (--routes), which a live project may
        send to even when their names look private (pipeline/destinations.py)."""
        self.routed = routed
        self.directory = directory
        self.quota = quota
        self.signers = signers
        self._hostname = hostname
        # The RSA signatures of messages submitted at once (several sessions) are made in
        # batches on worker threads (as many at once as cores: RSA releases the GIL), one
        # thread hop for the messages waiting meanwhile instead of one each.
        self._signing: SharedReads[_Checked, bytes | Refusal] = SharedReads(
            _sign_each, parallel=os.cpu_count() or 1
        )

    async def prepare(
        self, incoming: IncomingMessage, submitter: Submitter, message_id: str, now: datetime
    ) -> Prepared:
        """Check the message and return it fixed up (and signed for a live project), with its
        quota reservation. Raises a Refusal (content invalid, identity not verified, quota,
        not signable, project gone)."""
        checked = await self._check(incoming, submitter, message_id, now)
        if checked.signers:
            try:
                if checked.body is not None:
                    digest = await asyncio.to_thread(body_hash, spooled_chunks(checked.body))
                    signatures = await asyncio.to_thread(
                        sign_head, checked.data, digest, checked.signers
                    )
                elif any(signer.algorithm == "rsa-sha256" for signer in checked.signers):
                    # An RSA signature takes about half a millisecond with the GIL released:
                    # on a worker thread the event loop serves other sessions meanwhile.
                    made = await self._signing.ask(checked)
                    if isinstance(made, Refusal):
                        raise made
                    signatures = made
                else:
                    signatures = sign(checked.data, checked.signers)
            except BaseException:
                self.quota.release(checked.reservation)
                raise
            return checked.signed(signatures)
        return checked.prepared()

    async def prepare_many(
        self,
        incomings: Sequence[IncomingMessage],
        submitter: Submitter,
        message_ids: Sequence[str],
        now: datetime,
    ) -> list[Prepared | Refusal]:
        """`prepare` for the messages of one request (SendBulkEmail, a native batch), each
        checked on its own (its own Prepared or Refusal, in order), with the signatures of
        all of them made in one worker thread instead of one thread hop per message. The
        messages are small (built by the send APIs: none is spooled)."""
        outcomes: list[_Checked | Refusal] = []
        try:
            for incoming, message_id in zip(incomings, message_ids, strict=True):
                try:
                    outcomes.append(await self._check(incoming, submitter, message_id, now))
                except Refusal as refusal:
                    outcomes.append(refusal)
        except BaseException:  # no answer for any of them: none of their sends counts
            for outcome in outcomes:
                if isinstance(outcome, _Checked):
                    self.quota.release(outcome.reservation)
            raise
        to_sign = [o for o in outcomes if isinstance(o, _Checked) and o.signers]
        signed: list[bytes | Refusal] = []
        if to_sign:
            try:
                signed = await asyncio.to_thread(_sign_each, to_sign)
            except BaseException:
                for checked in to_sign:
                    self.quota.release(checked.reservation)
                raise
        signatures = dict(zip(map(id, to_sign), signed, strict=True))
        prepared: list[Prepared | Refusal] = []
        for outcome in outcomes:
            if isinstance(outcome, Refusal):
                prepared.append(outcome)
            elif not outcome.signers:
                prepared.append(outcome.prepared())
            else:
                made = signatures[id(outcome)]
                if isinstance(made, Refusal):
                    self.quota.release(outcome.reservation)
                    prepared.append(made)
                else:
                    prepared.append(outcome.signed(made))
        return prepared

    async def _check(
        self, incoming: IncomingMessage, submitter: Submitter, message_id: str, now: datetime
    ) -> _Checked:
        """Every check and fix-up of `prepare` but the signature: the message to sign, its
        signers (none: not signed) and its quota reservation."""
        view = await self.directory.get(submitter.project)
        suspended = suspension_refusal(view.project)
        if suspended is not None:
            raise suspended  # by an admin, until an admin resumes it
        if view.project.mode == "live" and view.project.paused is not None:
            raise SENDING_PAUSED  # by the reputation guard, until an admin resumes it
        if view.project.mode == "live":
            refused = first_refusal(incoming.envelope.recipients, self.routed)
            if refused is not None:
                raise refused
        data = incoming.data
        body: SpooledData | None = None  # a big message's body, left in its file
        if incoming.spooled is not None:
            data, body = await asyncio.to_thread(_split_spooled, incoming.spooled)
        parsed = split_message(data)
        authors = read_authors(parsed)
        identities = list(authors.from_)
        if authors.sender is not None:
            identities.append(authors.sender)
        identities.extend(authors.resent)
        if incoming.envelope.mail_from:
            identities.append(incoming.envelope.mail_from)
        failed = unverified_identities(view, identities, submitter.allowed_from)
        if failed:
            # Only the envelope sender (the return path) unverified: SES's MAIL FROM case.
            mail_from = incoming.envelope.mail_from
            envelope_only = failed == [mail_from] and identities.count(mail_from) == 1
            raise Refusal(
                RefusalKind.IDENTITY_NOT_VERIFIED,
                UNVERIFIED + ", ".join(failed),
                field="MAIL FROM" if envelope_only else "From",
            )
        from_domain = ascii_domain(address_domain(authors.from_[0])) or self._hostname
        binary = incoming.envelope.mail_params.get("BODY") == "BINARYMIME"
        data = fix_up(parsed, message_id=message_id, id_domain=from_domain, now=now, binary=binary)
        if body is not None and not binary:
            await asyncio.to_thread(check_body_line_chunks, spooled_chunks(body))
        project = view.project
        reservation = await self.quota.reserve(project, sends_of(incoming.envelope.recipients))
        live = project.mode == "live"
        domain = view.domains.get(from_domain) if live else None
        signers = self.signers.signers_for(domain) if domain is not None else []
        return _Checked(data, "queued" if live else "captured", reservation, body, signers)


@dataclass(frozen=True, slots=True)
class _Checked:
    """A message that passed `SubmissionSteps._check`, before its signature."""

    data: bytes
    status: str
    reservation: Reservation
    body: SpooledData | None
    signers: list[DkimSigner]

    def prepared(self) -> Prepared:
        return Prepared(self.data, self.status, self.reservation, self.body)

    def signed(self, signatures: bytes) -> Prepared:
        return Prepared(signatures + self.data, self.status, self.reservation, self.body)


def _sign_each(messages: Sequence[_Checked]) -> list[bytes | Refusal]:
    """The signatures of small messages (worker thread), or the Refusal of each that cannot
    be signed."""
    out: list[bytes | Refusal] = []
    for checked in messages:
        try:
            out.append(sign(checked.data, checked.signers))
        except Refusal as refusal:
            out.append(refusal)
    return out


HEAD_LIMIT = 1024 * 1024  # a spooled message's header section is read up to this size


def _split_spooled(spooled: SpooledData) -> tuple[bytes, SpooledData | None]:
    """A spooled message as its header section (up to and including the empty line) and its
    body left in the file; or, when its header section does not end with an empty line within
    HEAD_LIMIT (or holds a line that is not a field), the whole message and None."""
    head = read_head(spooled, HEAD_LIMIT)
    if head and split_message(head).rest == b"\r\n":
        return head, spooled.after(len(head))
    return read_spooled(spooled), None
