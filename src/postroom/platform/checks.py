"""One round of the periodic domain re-check (the application runs it under its supervisor)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from postroom.core.clock import Clock
from postroom.platform.service import PlatformService

log = logging.getLogger("postroom.platform")

# Verified domains are re-checked this many times less often than unverified ones.
VERIFIED_FACTOR = 24


async def check_once(service: PlatformService, interval: float, clock: Clock) -> int:
    """One round: retire DKIM keys past their grace period, then verify the domains due.
    Returns how many domains were checked."""
    try:
        await asyncio.to_thread(service.retire_expired, clock.now())
    except Exception:
        log.exception("retiring DKIM keys failed")
    every = timedelta(seconds=interval)
    try:
        checked = await service.check_due_domains(every, every * VERIFIED_FACTOR)
    except Exception:
        log.exception("domain checks failed")
        return 0
    return len(checked)
