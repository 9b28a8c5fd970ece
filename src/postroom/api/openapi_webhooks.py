"""The OpenAPI description of a project's webhooks (api/webhooks.py), merged into
/api/v2/openapi.json by api/openapi_v2.py."""

from __future__ import annotations

from typing import Any

from postroom.core.webhooks import WEBHOOK_EVENT_TYPES

Json = dict[str, Any]
_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_TYPES = {"type": "array", "items": {"enum": list(WEBHOOK_EVENT_TYPES)}, "minItems": 1}


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _webhook(extra: Json, required: list[str]) -> Json:
    properties: Json = {
        "id": {"type": "string"},
        "project": {"type": "string"},
        "url": {"type": "string", "format": "uri"},
        "types": _TYPES,
        "enabled": {"type": "boolean"},
        "include_headers": {"type": "boolean"},
        "description": {"type": "string"},
        "created": _TIME,
        "failing_since": _TIME_OR_NULL,
        "disabled_reason": {
            "type": ["string", "null"],
            "description": "why Postroom disabled the webhook (it failed for a day)",
        },
        **extra,
    }
    return {
        "type": "object",
        "properties": properties,
        "required": [*properties.keys() - extra.keys(), *required],
        "additionalProperties": False,
    }


_FIELDS: Json = {
    "url": {"type": "string", "description": "http:// or https://"},
    "types": _TYPES,
    "enabled": {"type": "boolean", "description": "default true"},
    "include_headers": {
        "type": "boolean",
        "description": "payloads carry the message's header fields (default false)",
    },
    "description": {"type": "string", "maxLength": 500},
}
_COUNTS = {
    "type": "object",
    "properties": {s: {"type": "integer"} for s in ("pending", "delivered", "failed")},
    "required": ["pending", "delivered", "failed"],
    "additionalProperties": False,
}

SCHEMAS: Json = {
    "Webhook": _webhook({"outbox": _COUNTS}, ["outbox"]),
    "WebhookWithSecret": _webhook(
        {"secret": {"type": "string", "description": "shown only in this answer"}}, ["secret"]
    ),
    "WebhookList": {
        "type": "object",
        "properties": {
            "project": {"type": "string"},
            "webhooks": {"type": "array", "items": _webhook({}, [])},
        },
        "required": ["project", "webhooks"],
        "additionalProperties": False,
    },
    "WebhookCreate": {
        "type": "object",
        "properties": _FIELDS,
        "required": ["url", "types"],
        "additionalProperties": False,
    },
    "WebhookChange": {"type": "object", "properties": _FIELDS, "additionalProperties": False},
    "WebhookRequests": {
        "type": "object",
        "properties": {
            "project": {"type": "string"},
            "webhook": {"type": "string"},
            "requests": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "event_id": {"type": "integer"},
                        "outbox_id": {"type": "integer"},
                        "time": _TIME,
                        "status_code": {"type": ["integer", "null"]},
                        "latency_ms": {"type": "number"},
                        "succeeded": {"type": "boolean"},
                        "error": {"type": ["string", "null"]},
                        "request_body": {"type": "string"},
                        "response_body": {"type": "string"},
                    },
                    "required": [
                        "id",
                        "event_id",
                        "outbox_id",
                        "time",
                        "status_code",
                        "latency_ms",
                        "succeeded",
                        "error",
                        "request_body",
                        "response_body",
                    ],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["project", "webhook", "requests"],
        "additionalProperties": False,
    },
    "WebhookResent": {
        "type": "object",
        "properties": {
            "queued": {"type": "integer"},
            "resend_of": {"type": "integer"},
            "event_id": {"type": "integer"},
        },
        "required": ["queued", "resend_of", "event_id"],
        "additionalProperties": False,
    },
}


def paths(op: Any, query: Any, param: Any, project: Json) -> Json:
    """The paths, built with openapi_v2's helpers (`op`, `query`, `param`)."""
    base = "/api/v2/projects/{project}/webhooks"
    hook = param("webhook", "the webhook's id")
    request = param("request", "a logged request's id")
    one = (project, hook)
    return {
        base: {
            "get": op("the project's webhooks", "WebhookList", params=(project,)),
            "post": op(
                "add a webhook; the answer holds its secret, shown only here",
                "WebhookWithSecret",
                status="201",
                body="WebhookCreate",
                params=(project,),
            ),
        },
        f"{base}/{{webhook}}": {
            "get": op("one webhook with its outbox counts", "Webhook", params=one),
            "patch": op("change a webhook", "Webhook", body="WebhookChange", params=one),
            "delete": op("delete a webhook, its outbox and request log", "Deleted", params=one),
        },
        f"{base}/{{webhook}}/secret": {
            "post": op(
                "a new secret (the old one stops signing); shown only here",
                "WebhookWithSecret",
                params=one,
            )
        },
        f"{base}/{{webhook}}/requests": {
            "get": op(
                "the webhook's latest requests, newest first",
                "WebhookRequests",
                params=(
                    *one,
                    query(
                        "limit",
                        "requests per page (default 50)",
                        {"type": "integer", "minimum": 1, "maximum": 200},
                    ),
                    query("before", "requests with a smaller id", {"type": "integer"}),
                ),
            )
        },
        f"{base}/{{webhook}}/requests/{{request}}/resend": {
            "post": op(
                "send that request's body again now",
                "WebhookResent",
                status="202",
                params=(*one, request),
            )
        },
    }
