"""The native send API's part of the OpenAPI document (api/openapi_v2.py merges it)."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


_ADDRESS = {
    "oneOf": [
        {"type": "string", "description": '"user@example.com" or "Name <user@example.com>"'},
        {
            "type": "object",
            "properties": {"email": {"type": "string"}, "name": {"type": "string"}},
            "required": ["email"],
            "additionalProperties": False,
        },
    ]
}
_ADDRESSES = {"oneOf": [_ref("Address"), {"type": "array", "items": _ref("Address")}]}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

SCHEMAS: Json = {
    "Address": _ADDRESS,
    "Attachment": {
        "type": "object",
        "properties": {
            "filename": {"type": "string"},
            "content": {"type": "string", "contentEncoding": "base64"},
            "content_type": {"type": "string", "description": "default: from the file name"},
            "content_id": {
                "type": "string",
                "description": 'makes the part inline, for <img src="cid:..."> in html',
            },
        },
        "required": ["filename", "content"],
        "additionalProperties": False,
    },
    "SendRequest": {
        "type": "object",
        "description": (
            "A message from fields, or raw MIME (raw, with from/to/cc/bcc as the envelope "
            "when given, else the message's headers), or a template (template.id and "
            "template.data give subject, text and html)."
        ),
        "properties": {
            "project": {"type": "string", "description": "admin sessions only; a key's own"},
            "from": _ref("Address"),
            "to": _ADDRESSES,
            "cc": _ADDRESSES,
            "bcc": _ADDRESSES,
            "reply_to": _ADDRESSES,
            "subject": {"type": "string"},
            "text": {"type": "string"},
            "html": {"type": "string"},
            "attachments": {"type": "array", "items": _ref("Attachment")},
            "headers": _STRING_MAP,
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
            "metadata": _STRING_MAP,
            "template": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "version": {"type": "integer"},
                    "data": {"type": "object"},
                },
                "required": ["id"],
            },
            "raw": {"type": "string", "contentEncoding": "base64"},
            "send_at": {
                "type": "string",
                "format": "date-time",
                "description": (
                    "scheduled send (RFC 3339 with an offset, at most 30 days ahead): a live "
                    "message is checked, signed and stored now, its deliveries wait until then "
                    "and can be cancelled until then (POST /api/v2/projects/{project}/queue/"
                    "cancel with its id in messages); a past time sends at once"
                ),
            },
        },
        "additionalProperties": False,
    },
    "RecipientResult": {
        "type": "object",
        "properties": {
            "email": {"type": "string"},
            "status": {"enum": ["accepted", "suppressed", "refused"]},
            "reason": {"type": "string"},
            "code": {"type": "string"},
        },
        "required": ["email", "status"],
        "additionalProperties": False,
    },
    "SendResult": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "project": {"type": "string"},
            "recipients": {"type": "array", "items": _ref("RecipientResult")},
            "tags": {"type": "array", "items": {"type": "string"}},
            "metadata": _STRING_MAP,
            "send_at": {"type": "string", "format": "date-time"},
        },
        "required": ["id", "project", "recipients"],
        "additionalProperties": False,
    },
    "BatchRequest": {
        "type": "object",
        "properties": {
            "project": {"type": "string"},
            "messages": {
                "type": "array",
                "items": _ref("SendRequest"),
                "minItems": 1,
                "maxItems": 500,
            },
        },
        "required": ["messages"],
        "additionalProperties": False,
    },
    "BatchResult": {
        "type": "object",
        "properties": {
            "project": {"type": "string"},
            "accepted": {"type": "integer"},
            "refused": {"type": "integer"},
            "messages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "index and status, then a SendResult (200) or an Error",
                    "properties": {
                        "index": {"type": "integer"},
                        "status": {"type": "integer"},
                        "id": {"type": "string"},
                        "project": {"type": "string"},
                        "recipients": {"type": "array", "items": _ref("RecipientResult")},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "metadata": _STRING_MAP,
                        "Error": {"type": "string"},
                        "Field": {"type": "string"},
                    },
                    "required": ["index", "status"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["project", "accepted", "refused", "messages"],
        "additionalProperties": False,
    },
}

_TEMPLATE_FIELDS = {
    "subject": {"type": "string"},
    "text": {"type": "string"},
    "html": {"type": "string"},
}
SCHEMAS["Template"] = {
    "type": "object",
    "properties": {
        "project": {"type": "string"},
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
        "version": {"type": "integer", "minimum": 1},
        **_TEMPLATE_FIELDS,
        "created": {"type": "string", "format": "date-time"},
    },
    "required": ["project", "name", "version", "subject", "text", "html", "created"],
    "additionalProperties": False,
}
SCHEMAS["TemplateList"] = {
    "type": "object",
    "properties": {
        "project": {"type": "string"},
        "templates": {"type": "array", "items": _ref("Template")},
    },
    "required": ["project", "templates"],
    "additionalProperties": False,
}
SCHEMAS["TemplateCreate"] = {
    "type": "object",
    "description": "Handlebars in subject, text and html (HTML escaped in html only)",
    "properties": {"name": {"type": "string"}, **_TEMPLATE_FIELDS},
    "required": ["name"],
    "additionalProperties": False,
}
SCHEMAS["TemplateUpdate"] = {
    "type": "object",
    "properties": _TEMPLATE_FIELDS,
    "additionalProperties": False,
}
SCHEMAS["PreviewRequest"] = {
    "type": "object",
    "properties": {"data": {"type": "object"}, "version": {"type": "integer"}},
    "additionalProperties": False,
}
SCHEMAS["Preview"] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "version": {"type": "integer"}, **_TEMPLATE_FIELDS},
    "required": ["name", "version", "subject", "text", "html"],
    "additionalProperties": False,
}
SCHEMAS["TemplateDeleted"] = {
    "type": "object",
    "properties": {"deleted": {"type": "string"}},
    "required": ["deleted"],
    "additionalProperties": False,
}

_SES_KEY = {
    "access_key_id": {"type": "string", "pattern": "^AKPR[A-Z0-9]{16}$"},
    "project": {"type": "string"},
    "created": {"type": "string", "format": "date-time"},
    "last_used": {"type": ["string", "null"], "format": "date-time"},
}
SCHEMAS["SesKey"] = {
    "type": "object",
    "properties": _SES_KEY,
    "required": list(_SES_KEY),
    "additionalProperties": False,
}
SCHEMAS["IssuedSesKey"] = {
    "type": "object",
    "properties": {
        **_SES_KEY,
        "secret_access_key": {"type": "string", "description": "shown in this response only"},
    },
    "required": [*_SES_KEY, "secret_access_key"],
    "additionalProperties": False,
}
SCHEMAS["SesKeyList"] = {
    "type": "object",
    "properties": {
        "project": {"type": "string"},
        "ses_keys": {"type": "array", "items": _ref("SesKey")},
    },
    "required": ["project", "ses_keys"],
    "additionalProperties": False,
}

_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": (
        "the same key within 24 h returns the first answer (Idempotent-Replayed: true) and "
        "sends nothing again; another body with the key: 422; still running elsewhere: 409"
    ),
}


def _answer(description: str, schema: str = "Error") -> Json:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _send_errors() -> Json:
    return {
        "400": _answer("invalid input (Field names it), or no recipient may be sent to"),
        "401": _answer("authentication required, or the API key is not valid"),
        "403": _answer(
            "the key lacks the send scope, the sender is not a verified identity, or the "
            "project's sending is paused (Field sending_paused) or suspended by an admin "
            "(Field account_suspended)"
        ),
        "409": _answer("a request with this Idempotency-Key is still running"),
        "413": _answer("the message is larger than --max-message-size"),
        "415": _answer("Content-Type is not application/json"),
        "421": _answer("the Host header names another server (DNS rebinding)"),
        "422": _answer("this Idempotency-Key was used for another request"),
        "429": _answer("daily quota or sending rate used up; see Retry-After"),
        "503": _answer("storage unavailable; see Retry-After"),
    }


def _param(name: str, where: str = "path") -> Json:
    return {"name": name, "in": where, "required": where == "path", "schema": {"type": "string"}}


def _errors() -> Json:
    return {
        "400": _answer("invalid input, or a variable missing from the data (Field names it)"),
        "401": _answer("authentication required, or the API key is not valid"),
        "403": _answer("the key lacks the manage scope or belongs to another project"),
        "404": _answer("no such project or template"),
        "415": _answer("Content-Type is not application/json"),
        "421": _answer("the Host header names another server (DNS rebinding)"),
    }


def _op(summary: str, schema: str, status: str = "200", body: str | None = None, **kw: Any) -> Json:
    op: Json = {"summary": summary, "responses": {status: _answer(summary, schema), **_errors()}}
    op["parameters"] = [_param("project"), *([_param("name")] if kw.get("named") else [])]
    if kw.get("version"):
        op["parameters"].append(_param("version", "query"))
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return op


def _template_paths() -> Json:
    base = "/api/v2/projects/{project}/templates"
    return {
        base: {
            "get": _op("list templates (newest version of each)", "TemplateList"),
            "post": _op("create a template (version 1)", "Template", "201", "TemplateCreate"),
        },
        f"{base}/{{name}}": {
            "get": _op(
                "a template's newest version (or ?version=N)", "Template", named=True, version=True
            ),
            "put": _op("add a version", "Template", body="TemplateUpdate", named=True),
            "delete": _op("delete every version", "TemplateDeleted", named=True),
        },
        f"{base}/{{name}}/preview": {
            "post": _op(
                "render with sample data, send nothing",
                "Preview",
                body="PreviewRequest",
                named=True,
            )
        },
    }


def _ses_key_paths() -> Json:
    base = "/api/v2/projects/{project}/ses-keys"
    return {
        base: {
            "get": _op("list the project's SES access keys (no secrets)", "SesKeyList"),
            "post": _op(
                "create an SES access key pair (the secret is in this response only)",
                "IssuedSesKey",
                "201",
            ),
        },
        f"{base}/{{key_id}}": {
            "delete": {
                **_op("delete an SES access key", "TemplateDeleted"),
                "parameters": [_param("project"), _param("key_id")],
            }
        },
    }


# Examples in the document (Redoc's x-codeSamples): each sends the same message with the
# API key in POSTROOM_API_KEY; tests/integration/submission/test_native_send.py runs them.
EXAMPLE_BASE = "http://127.0.0.1:8025"
EXAMPLE_SEND: Json = {
    "from": "App <app@example.com>",
    "to": ["ann@example.net"],
    "subject": "Welcome",
    "text": "Hello Ann",
    "html": "<p>Hello <b>Ann</b></p>",
    "tags": ["welcome"],
    "metadata": {"user_id": "42"},
}
_CURL = f"""curl -sS {EXAMPLE_BASE}/api/v2/messages \\
  -H "Authorization: Bearer $POSTROOM_API_KEY" \\
  -H "Content-Type: application/json" \\
  -H "Idempotency-Key: welcome-42" \\
  -d '{{"from": "App <app@example.com>", "to": ["ann@example.net"],
       "subject": "Welcome", "text": "Hello Ann", "html": "<p>Hello <b>Ann</b></p>",
       "tags": ["welcome"], "metadata": {{"user_id": "42"}}}}'
"""
_PYTHON = f"""import os

import httpx

answer = httpx.post(
    "{EXAMPLE_BASE}/api/v2/messages",
    headers={{
        "Authorization": f"Bearer {{os.environ['POSTROOM_API_KEY']}}",
        "Idempotency-Key": "welcome-42",  # a retry with this key sends nothing again
    }},
    json={{
        "from": "App <app@example.com>",
        "to": ["ann@example.net"],
        "subject": "Welcome",
        "text": "Hello Ann",
        "html": "<p>Hello <b>Ann</b></p>",
        "tags": ["welcome"],
        "metadata": {{"user_id": "42"}},
    }},
)
answer.raise_for_status()  # 4xx: answer.json()["Error"] says why, ["Field"] names the field
print(answer.json()["id"], answer.json()["recipients"])
"""
_JAVASCRIPT = f"""const answer = await fetch("{EXAMPLE_BASE}/api/v2/messages", {{
  method: "POST",
  headers: {{
    "Authorization": `Bearer ${{process.env.POSTROOM_API_KEY}}`,
    "Content-Type": "application/json",
    "Idempotency-Key": "welcome-42", // a retry with this key sends nothing again
  }},
  body: JSON.stringify({{
    from: "App <app@example.com>",
    to: ["ann@example.net"],
    subject: "Welcome",
    text: "Hello Ann",
    html: "<p>Hello <b>Ann</b></p>",
    tags: ["welcome"],
    metadata: {{ user_id: "42" }},
  }}),
}});
const sent = await answer.json(); // 4xx: sent.Error says why, sent.Field names the field
if (!answer.ok) throw new Error(sent.Error);
console.log(sent.id, sent.recipients);
"""
CODE_SAMPLES = [
    {"lang": "Shell", "label": "curl", "source": _CURL},
    {"lang": "Python", "label": "Python (httpx)", "source": _PYTHON},
    {"lang": "JavaScript", "label": "JavaScript (fetch)", "source": _JAVASCRIPT},
]


def paths() -> Json:
    return {
        **_template_paths(),
        **_ses_key_paths(),
        "/api/v2/messages": {
            "post": {
                "summary": "send one message (API key with the send scope)",
                "parameters": [_IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("SendRequest"),
                            "example": EXAMPLE_SEND,
                        }
                    },
                },
                "x-codeSamples": CODE_SAMPLES,
                "responses": {
                    "200": _answer("stored durably: its id and each recipient", "SendResult"),
                    **_send_errors(),
                },
            }
        },
        "/api/v2/messages/batch": {
            "post": {
                "summary": "send up to 500 messages, each accepted or refused on its own",
                "parameters": [_IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("BatchRequest")}},
                },
                "responses": {
                    "200": _answer("one answer per message", "BatchResult"),
                    **_send_errors(),
                },
            }
        },
    }
