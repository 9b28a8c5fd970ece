"""What the doors share: the pipeline as they see it, and the SMTP session log and metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from postroom.core.platform import DEFAULT_PROJECT
from postroom.core.types import DoorName, IncomingMessage
from postroom.metrics import Metrics
from postroom.pipeline.submission import Submitter

log = logging.getLogger("postroom")


class Acceptor(Protocol):
    """The acceptance pipeline, as a door sees it (pipeline.acceptance.AcceptancePipeline)."""

    async def accept(
        self,
        incoming: IncomingMessage,
        project: str = DEFAULT_PROJECT,
        *,
        submitter: Submitter | None = None,
        suppressed_out: dict[str, tuple[str, str]] | None = None,
    ) -> str: ...


@dataclass
class SessionLog:
    """The one log line per SMTP session and the session and refusal counters."""

    metrics: Metrics

    def session_ended(self, summary: dict[str, Any]) -> None:
        door = str(summary.get("door", "capture"))
        self.metrics.sessions.labels(door).inc()
        log.info("smtp session", extra={"session": summary})

    def refused(self, door: DoorName, reason: str) -> None:
        self.metrics.rejects.labels(door, reason).inc()
