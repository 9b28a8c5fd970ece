"""The OpenAPI description of a project's reputation (api/reputation.py), merged into
/api/v2/openapi.json by api/openapi_v2.py."""

from __future__ import annotations

from typing import Any

from postroom.core.reputation import LEVELS

Json = dict[str, Any]
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_RATES: Json = {
    "type": "object",
    "properties": {
        "sends": {"type": "integer", "description": "recipients sent"},
        "bounces": {"type": "integer", "description": "hard bounces"},
        "complaints": {"type": "integer"},
        "bounce_rate": {"type": "number"},
        "complaint_rate": {"type": "number"},
    },
    "required": ["sends", "bounces", "complaints", "bounce_rate", "complaint_rate"],
}
_LIMIT = {
    "type": "object",
    "properties": {"warn": {"type": "number"}, "pause": {"type": "number"}},
    "required": ["warn", "pause"],
}

SCHEMAS: Json = {
    "Reputation": {
        "type": "object",
        "properties": {
            "project": {"type": "string"},
            "level": {"enum": list(LEVELS)},
            "changed": _TIME_OR_NULL,
            "reason": {"type": ["string", "null"], "description": "why, unless the level is ok"},
            "paused": {**_TIME_OR_NULL, "description": "when sending was paused; null: it sends"},
            "pause_reason": {"type": ["string", "null"]},
            "counted_since": {"type": "string", "format": "date-time"},
            "judged": {**_RATES, "description": "the window the guard judges"},
            "domains": {
                "type": "object",
                "description": "the judged window per sending domain (the envelope sender's "
                "domain) of the messages still stored",
                "additionalProperties": _RATES,
            },
            "windows": {
                "type": "object",
                "properties": {name: _RATES for name in ("24h", "7d", "30d")},
                "required": ["24h", "7d", "30d"],
            },
            "thresholds": {
                "type": "object",
                "properties": {
                    "bounce_rate": _LIMIT,
                    "complaint_rate": _LIMIT,
                    "min_volume": {"type": "integer"},
                    "window_seconds": {"type": "number"},
                },
            },
            "daily": {
                "type": "array",
                "description": "the last 30 days that had any sends, bounces or complaints",
                "items": {
                    **_RATES,
                    "properties": {**_RATES["properties"], "day": {"type": "string"}},
                },
            },
        },
        "required": [
            "project",
            "level",
            "changed",
            "reason",
            "paused",
            "pause_reason",
            "counted_since",
            "judged",
            "domains",
            "windows",
            "thresholds",
            "daily",
        ],
    },
    "ResumeRequest": {"type": "object", "additionalProperties": False},
}


def paths(op: Any, project: Json) -> Json:
    """The paths, built with openapi_v2's helper `op`."""
    return {
        "/api/v2/projects/{project}/reputation": {
            "get": op(
                "the project's bounce and complaint rates per window, level, pause and chart",
                "Reputation",
                params=(project,),
            )
        },
        "/api/v2/projects/{project}/reputation/resume": {
            "post": op(
                "resume a paused project's sending (admin login only); rates count from now",
                "Reputation",
                body="ResumeRequest",
                params=(project,),
            )
        },
    }
