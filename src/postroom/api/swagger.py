"""`GET /api/v1/swagger.json`: the OpenAPI 2.0 document of the Mailpit-compatible API.

Mailpit's own document (api/specs/mailpit-api-v1.swagger.json, MIT licence beside it) with
the operations Postroom does not serve (NOT_SERVED) taken out and the title saying whose it
is, so that generated clients and API explorers see exactly what this server answers.
tests/integration/test_mailpit_spec.py calls every remaining operation and checks its answer
against the documented shape, and checks that each NOT_SERVED one is really absent.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SPEC_NAME = "mailpit-api-v1.swagger.json"
# (method, path) of Mailpit's document that Postroom does not serve (none now; the mechanism
# stays for operations a later Mailpit document adds).
NOT_SERVED: frozenset[tuple[str, str]] = frozenset()


def mailpit_document() -> dict[str, Any]:
    """Mailpit's document as shipped (a fresh copy)."""
    text = resources.files("postroom.api").joinpath("specs", SPEC_NAME).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _served_document() -> dict[str, Any]:
    document = mailpit_document()
    paths: dict[str, Any] = {}
    for path, operations in document["paths"].items():
        kept = {
            method: operation
            for method, operation in operations.items()
            if (method, path) not in NOT_SERVED
        }
        if kept:
            paths[path] = kept
    document["paths"] = paths
    info = document["info"]
    info["title"] = "Postroom: Mailpit-compatible API"
    info["description"] = (
        "The Mailpit API (v1) as Postroom serves it: Mailpit's OpenAPI 2.0 document "
        "(https://github.com/axllent/mailpit, MIT licence) without the operations Postroom "
        "does not have."
    )
    document["x-postroom-not-served"] = sorted(f"{m.upper()} {p}" for m, p in NOT_SERVED)
    return document


def served_document() -> dict[str, Any]:
    return copy.deepcopy(_served_document())


async def swagger(request: Request) -> Response:
    return JSONResponse(_served_document())


ROUTES = [Route("/api/v1/swagger.json", swagger, methods=["GET"])]
