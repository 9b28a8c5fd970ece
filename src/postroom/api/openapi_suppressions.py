"""The OpenAPI description of the suppression list's endpoints (api/suppressions.py), merged
into /api/v2/openapi.json by api/openapi_v2.py."""

from __future__ import annotations

from typing import Any

from postroom.core.suppression import MAX_PAGE, REASONS

Json = dict[str, Any]
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: Json = {
    "Suppression": {
        "type": "object",
        "properties": {
            "address": {"type": "string"},
            "reason": {"enum": list(REASONS)},
            "scope": {"enum": ["project", "account"]},
            "created": {"type": "string", "format": "date-time"},
            "expires": _TIME_OR_NULL,
            "event_id": {"type": ["integer", "null"]},
            "detail": {"type": "string"},
        },
        "required": ["address", "reason", "scope", "created", "expires", "event_id", "detail"],
        "additionalProperties": False,
    },
    "SuppressionPage": {
        "type": "object",
        "properties": {
            "project": {"type": "string"},
            "suppressions": {"type": "array", "items": _ref("Suppression")},
            "next": {
                "type": ["string", "null"],
                "description": "pass as `after` for the next page; null: no more",
            },
        },
        "required": ["suppressions", "next"],
        "additionalProperties": False,
    },
    "SuppressionCreate": {
        "type": "object",
        "properties": {
            "address": {"type": "string"},
            "reason": {"enum": list(REASONS), "description": "default manual"},
            "expires": {"type": "string", "format": "date-time"},
            "detail": {"type": "string", "maxLength": 1000},
        },
        "required": ["address"],
        "additionalProperties": False,
    },
    "SuppressionImport": {
        "type": "object",
        "properties": {
            "csv": {
                "type": "string",
                "description": "CSV with a header naming address (or email) and optionally "
                "reason, expires, detail; all rows or none are added",
            },
            "reason": {"enum": list(REASONS), "description": "for rows that give none"},
        },
        "required": ["csv"],
        "additionalProperties": False,
    },
    "SuppressionImported": {
        "type": "object",
        "properties": {"imported": {"type": "integer", "minimum": 0}},
        "required": ["imported"],
        "additionalProperties": False,
    },
}


def paths(op: Any, query: Any, param: Any, project: Json) -> Json:
    """The paths, built with openapi_v2's helpers (`op`, `query`, `param`)."""
    address = param("address", "the suppressed address (any case)")
    filters = (
        query("search", "part of the address, any case"),
        query("reason", "one reason: " + ", ".join(REASONS), {"enum": list(REASONS)}),
        query("after", "cursor: the `next` of the previous page"),
        query(
            "limit",
            "entries per page (default 100)",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
        ),
    )
    out: Json = {}
    for base, scope, what in (
        ("/api/v2/projects/{project}/suppressions", (project,), "the project's"),
        ("/api/v2/suppressions", (), "the account-wide (admins only)"),
    ):
        out[base] = {
            "get": op(
                f"{what} suppression list, by address, searched and paged",
                "SuppressionPage",
                params=(*scope, *filters),
            ),
            "post": op(
                f"add an address to {what} list (or replace its entry)",
                "Suppression",
                status="201",
                body="SuppressionCreate",
                params=scope,
            ),
        }
        out[f"{base}/import"] = {
            "post": op(
                f"add the rows of a CSV text to {what} list, all or none",
                "SuppressionImported",
                body="SuppressionImport",
                params=scope,
            )
        }
        export = op(
            f"{what} list as CSV (address, reason, created, expires, detail)",
            "SuppressionPage",
            params=scope,
        )
        export["responses"]["200"] = {
            "description": "CSV, header first",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
        out[f"{base}/export"] = {"get": export}
        out[f"{base}/{{address}}"] = {
            "get": op("one entry", "Suppression", params=(*scope, address)),
            "delete": op("remove an address from the list", "Deleted", params=(*scope, address)),
        }
    return out
