"""`GET /api/v1/swagger.json`: the OpenAPI 2.0 document of the Mailpit-compatible API.

Mailpit's own document (api/specs/mailpit-api-v1.swagger.json, MIT licence beside it) with
the operations Postroom does not serve (NOT_SERVED) taken out and the title saying whose it
is, so that generated clients and API explorers see exactly what this server answers.
tests/integration/test_mailpit_spec.py calls every remaining operation and checks its answer
against the documented shape, and checks that each NOT_SERVED one is really absent.

Postroom's own additions to /api/v1 (EXTENSIONS: the headers check; the body downloads and
the screenshot, api/openapi_viewtools.py) are added to the document
with their definitions, each operation marked `x-postroom-extension: true`.
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

from postroom.api.openapi_viewtools import VIEWTOOLS_PATHS

SPEC_NAME = "mailpit-api-v1.swagger.json"
# (method, path) of Mailpit's document that Postroom does not serve (none now; the mechanism
# stays for operations a later Mailpit document adds).
NOT_SERVED: frozenset[tuple[str, str]] = frozenset()


_STRING = {"type": "string"}
_EXTENSION_DEFINITIONS: dict[str, Any] = {
    "HeadersCheckFinding": {
        "description": "One finding of the headers check.",
        "type": "object",
        "properties": {
            "Level": {"type": "string", "enum": ["fail", "warn", "pass", "info"]},
            "Check": {
                "description": "dkim, spf, dmarc, list-unsubscribe, from, date, message-id, "
                "addresses or structure",
                "type": "string",
            },
            "Header": {"description": "The header field it is about (may be empty)", **_STRING},
            "Text": {"description": "What was found and why it matters", **_STRING},
        },
    },
    "HeadersCheckDKIM": {
        "description": "One DKIM-Signature and its verification against DNS.",
        "type": "object",
        "properties": {
            "Domain": {"description": "d=", **_STRING},
            "Selector": {"description": "s=", **_STRING},
            "Algorithm": {"description": "a=", **_STRING},
            "SignedHeaders": {"type": "array", "items": _STRING},
            "BodyLengthLimit": {"description": "The signature has l=", "type": "boolean"},
            "Result": {"type": "string", "enum": ["pass", "fail", "temperror", "permerror"]},
            "Reason": _STRING,
        },
    },
    "HeaderWarning": {
        "description": "A shown header field that cannot be read: From/To/Cc/Bcc/Reply-To/"
        "Sender are shown as written, a Date is replaced by the receive time.",
        "type": "object",
        "properties": {
            "Header": _STRING,
            "Value": {"description": "The field as written", **_STRING},
            "Warning": _STRING,
        },
    },
    "HeadersCheckResponse": {
        "description": "How a receiver would judge the message's authentication and headers.",
        "type": "object",
        "properties": {
            "Summary": {
                "description": "Findings per level",
                "type": "object",
                "properties": {
                    name: {"type": "integer"} for name in ("Fail", "Warn", "Pass", "Info")
                },
            },
            "Findings": {
                "description": "Failures first, then warnings, passes and information",
                "type": "array",
                "items": {"$ref": "#/definitions/HeadersCheckFinding"},
            },
            "DKIM": {"type": "array", "items": {"$ref": "#/definitions/HeadersCheckDKIM"}},
            "SPF": {
                "description": "SPF for the client Postroom's Received header names and the "
                "MAIL FROM domain (HELO for the null sender); null when the client is unknown",
                "type": "object",
                "x-nullable": True,
                "properties": {
                    "Result": {
                        "type": "string",
                        "enum": [
                            "pass",
                            "fail",
                            "softfail",
                            "neutral",
                            "none",
                            "permerror",
                            "temperror",
                        ],
                    },
                    "Domain": _STRING,
                    "Identity": {"type": "string", "enum": ["MAIL FROM", "HELO"]},
                    "ClientIP": _STRING,
                    "Helo": _STRING,
                    "Explanation": _STRING,
                },
            },
            "DMARC": {
                "description": "DMARC for the From domain; null when there is no single one",
                "type": "object",
                "x-nullable": True,
                "properties": {
                    "Result": {
                        "type": "string",
                        "enum": ["pass", "fail", "none", "temperror", "permerror"],
                    },
                    "Domain": _STRING,
                    "PolicyDomain": _STRING,
                    "Policy": {"description": "none, quarantine, reject or empty", **_STRING},
                    "AlignmentDKIM": {"type": "string", "enum": ["relaxed", "strict"]},
                    "AlignmentSPF": {"type": "string", "enum": ["relaxed", "strict"]},
                    "DKIMAligned": {"type": "boolean"},
                    "SPFAligned": {"type": "boolean"},
                    "Explanation": _STRING,
                },
            },
            "HeaderWarnings": {
                "type": "array",
                "items": {"$ref": "#/definitions/HeaderWarning"},
            },
        },
    },
}
_EXTENSION_PATHS: dict[str, Any] = {
    "/api/v1/message/{ID}/headers-check": {
        "get": {
            "description": "Postroom extension. Verifies the message's DKIM signatures against "
            "DNS (through --resolver), judges SPF for the client that delivered it and DMARC "
            "alignment with From as a receiver would, checks List-Unsubscribe and one-click "
            "unsubscribe (RFC 8058), From, Date and Message-ID, and lists the header fields "
            "that cannot be read.\n\nThe ID can be set to `latest` to check the latest "
            "message.",
            "produces": ["application/json"],
            "schemes": ["http", "https"],
            "tags": ["other"],
            "summary": "Headers check",
            "operationId": "HeadersCheckParams",
            "x-postroom-extension": True,
            "parameters": [
                {
                    "type": "string",
                    "description": 'Message database ID or "latest"',
                    "name": "ID",
                    "in": "path",
                    "required": True,
                }
            ],
            "responses": {
                "200": {
                    "description": "HeadersCheckResponse",
                    "schema": {"$ref": "#/definitions/HeadersCheckResponse"},
                },
                "404": {"$ref": "#/responses/NotFoundResponse"},
            },
        }
    }
}
_EXTENSION_PATHS.update(VIEWTOOLS_PATHS)
EXTENSIONS: frozenset[tuple[str, str]] = frozenset(
    (method, path) for path, ops in _EXTENSION_PATHS.items() for method in ops
)


def extension_document() -> dict[str, Any]:
    """Postroom's additions: {"paths": ..., "definitions": ...} (a fresh copy)."""
    return copy.deepcopy({"paths": _EXTENSION_PATHS, "definitions": _EXTENSION_DEFINITIONS})


def mailpit_document() -> dict[str, Any]:
    """Mailpit's document as shipped (a fresh copy)."""
    text = resources.files("postroom.api").joinpath("specs", SPEC_NAME).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


COUNTS_PARAMETER: dict[str, Any] = {
    "name": "counts",
    "in": "query",
    "type": "string",
    "enum": ["exact", "skip"],
    "default": "exact",
    "description": (
        "Postroom: `skip` leaves a search's matches uncounted (counting reads every match: "
        "seconds at a million messages). messages_count and messages_unread are then null for "
        "a search (the inbox's stay exact) and the answer gains `more` (boolean): whether "
        "matches follow the page."
    ),
    "x-postroom-extension": True,
}


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
    extensions = extension_document()
    for path in ("/api/v1/messages", "/api/v1/search"):
        paths[path]["get"].setdefault("parameters", []).append(COUNTS_PARAMETER)
    paths.update(extensions["paths"])
    document["paths"] = paths
    document["definitions"].update(extensions["definitions"])
    info = document["info"]
    info["title"] = "Postroom: Mailpit-compatible API"
    info["description"] = (
        "The Mailpit API (v1) as Postroom serves it: Mailpit's OpenAPI 2.0 document "
        "(https://github.com/axllent/mailpit, MIT licence) without the operations Postroom "
        "does not have, and with Postroom's extensions (marked x-postroom-extension)."
    )
    document["x-postroom-not-served"] = sorted(f"{m.upper()} {p}" for m, p in NOT_SERVED)
    return document


def served_document() -> dict[str, Any]:
    return copy.deepcopy(_served_document())


async def swagger(request: Request) -> Response:
    return JSONResponse(_served_document())


ROUTES = [Route("/api/v1/swagger.json", swagger, methods=["GET"])]
