"""`Idempotency-Key` for the native send API: the same key within 24 hours gets the first
answer again, and nothing is sent twice.

The first request with a key claims it in the store (a row, committed before anything is
sent), runs, and records its answer. A later request with the same key and the same body gets
that answer again (header `Idempotent-Replayed: true`); with another body, 422. Requests with
one key that arrive together in this process wait for the first one and get its answer; one
that arrives at another process while the first still runs gets 409 (try again shortly).
Answers that say "try again" (429, 5xx) are not kept: the key is released, so that the retry
can send. A claim left unanswered for STALE (its process died) is taken over by the next
request with the key. Keys are per project.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from starlette.responses import JSONResponse, Response

from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput
from postroom.core.sending import SendingStore

HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)
# A claim still unanswered after this died with its process (a send takes seconds at most):
# a retry takes it over. If that process had committed the message, it is sent twice.
STALE = timedelta(minutes=5)
MAX_KEY = 255
Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, headers


def check_key(value: str) -> str:
    if not value or len(value) > MAX_KEY or not all(33 <= ord(c) <= 126 for c in value):
        raise InvalidInput(
            f"{HEADER} must be 1 to {MAX_KEY} visible ASCII characters (no spaces)", HEADER
        )
    return value


def answer_response(answer: Answer) -> Response:
    status, body, headers = answer
    return JSONResponse(body, status_code=status, headers=headers)


class Idempotency:
    def __init__(self, store: SendingStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    async def run(
        self, project: str, key: str, request_bytes: bytes, handler: Callable[[], Awaitable[Answer]]
    ) -> Response:
        key = check_key(key)
        fingerprint = hashlib.sha256(request_bytes).hexdigest()
        slot = (project, key)
        lock, users = self._locks.get(slot, (asyncio.Lock(), 0))
        self._locks[slot] = (lock, users + 1)
        try:
            async with lock:
                return await self._run(project, key, fingerprint, handler)
        finally:
            lock, users = self._locks[slot]
            if users <= 1:
                del self._locks[slot]
            else:
                self._locks[slot] = (lock, users - 1)

    async def _run(
        self, project: str, key: str, fingerprint: str, handler: Callable[[], Awaitable[Answer]]
    ) -> Response:
        now = self._clock.now()
        earlier = await asyncio.to_thread(
            self._store.claim_idempotency, project, key, fingerprint, now, now - TTL, now - STALE
        )
        if earlier is not None:
            if earlier.fingerprint != fingerprint:
                return JSONResponse(
                    {
                        "Error": f"this {HEADER} was used within 24 hours for a different "
                        "request; use a new key for a new message",
                        "Field": HEADER,
                    },
                    status_code=422,
                )
            if earlier.status is None or earlier.response is None:
                return JSONResponse(
                    {
                        "Error": f"a request with this {HEADER} is still being processed; "
                        "try again in a moment",
                        "Field": HEADER,
                    },
                    status_code=409,
                    headers={"Retry-After": "1"},
                )
            return JSONResponse(
                json.loads(earlier.response),
                status_code=earlier.status,
                headers={"Idempotent-Replayed": "true"},
            )
        try:
            status, body, headers = await handler()
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self._store.release_idempotency, project, key))
            raise
        if status == 429 or status >= 500:
            await asyncio.to_thread(self._store.release_idempotency, project, key)
        else:
            await asyncio.to_thread(
                self._store.finish_idempotency, project, key, status, json.dumps(body)
            )
        return JSONResponse(body, status_code=status, headers=headers)
