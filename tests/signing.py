"""Sign a message exactly as the submission pipeline does, for tests of the management side
(domains, keys, rotation): the keys are whatever production picks, not a copy of its rule."""

from __future__ import annotations

import re

from postroom.core.clock import Clock
from postroom.core.platform import PlatformStore
from postroom.core.types import Envelope, IncomingMessage, SessionInfo
from postroom.metrics import Metrics
from postroom.pipeline.projects import ProjectDirectory
from postroom.pipeline.quota import QuotaTracker
from postroom.pipeline.signing import SignerCache
from postroom.pipeline.submission import SubmissionSteps, Submitter

_SELECTOR = re.compile(rb"DKIM-Signature:[^\r]*(?:\r\n[ \t][^\r]*)*", re.IGNORECASE)


async def submit(store: PlatformStore, clock: Clock, project: str, message: bytes) -> bytes:
    """`message` (whose From is the envelope sender) checked, fixed up and, in a live project,
    signed by SubmissionSteps reading `store` afresh. Raises the pipeline's refusal."""
    sender = re.search(rb"^From:.*?<?([^<>\s]+@[^<>\s]+)>?\r$", message, re.MULTILINE)
    assert sender is not None, "the message needs a From address"
    steps = SubmissionSteps(
        ProjectDirectory(store, clock, ttl=0),
        QuotaTracker(store, clock, Metrics()),
        SignerCache(clock),
        "mx.test",
    )
    session = SessionInfo("submission", "S1", "192.0.2.1", 40000, "mx.test", auth_user="test")
    incoming = IncomingMessage(
        Envelope(sender.group(1).decode(), ("r@example.net",)), message, session
    )
    prepared = await steps.prepare(incoming, Submitter(project, "smtp:test"), "01TEST", clock.now())
    steps.quota.release(prepared.reservation)
    return prepared.data


def selectors(signed: bytes) -> list[str]:
    """The s= tag of every DKIM-Signature field, in order."""
    head = signed.split(b"\r\n\r\n", 1)[0]
    found: list[str] = []
    for field in _SELECTOR.findall(head):
        unfolded = re.sub(rb"\s+", b"", field)
        match = re.search(rb";s=([^;]+)", unfolded)
        assert match is not None, field
        found.append(match.group(1).decode())
    return found
