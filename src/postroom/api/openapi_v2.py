"""The OpenAPI 3.1 document of the management API (/api/v2), written by hand.

Response schemas forbid properties they do not list, so the tests that validate every
response against this document also prove that nothing else (a digest, a private key) leaks.
"""

from __future__ import annotations

from typing import Any

from postroom import __version__
from postroom.api import capture_routes as capture_route_doc
from postroom.api import openapi_reputation as reputation_doc
from postroom.api import openapi_sending as sending
from postroom.api import openapi_suppressions as suppression_doc
from postroom.api import openapi_tls_reports as tls_report_doc
from postroom.api import openapi_webhooks as webhook_doc
from postroom.core.events import EVENT_TYPES, MAX_EVENT_PAGE
from postroom.core.types import QUEUE_ACTIONS, QUEUE_STATES

Json = dict[str, Any]


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(type_: str, **extra: Any) -> Json:
    return {"type": [type_, "null"], **extra}


_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_QUOTA = _nullable("integer", minimum=1)
_QUOTA_IN = {
    "type": ["integer", "null"],
    "minimum": 0,
    "description": "0 or null: no limit",
}


def _object(properties: Json, required: list[str] | None = None, closed: bool = True) -> Json:
    schema: Json = {"type": "object", "properties": properties}
    schema["required"] = list(properties) if required is None else required
    if closed:
        schema["additionalProperties"] = False
    return schema


def _list_of(key: str, item: str, project: bool = True) -> Json:
    properties: Json = {key: {"type": "array", "items": _ref(item)}}
    if project:
        properties = {"project": {"type": "string"}, **properties}
    return _object(properties)


def _issued(base: Json, secret: str) -> Json:
    """The schema of a listed object, plus the secret only its creating response shows."""
    return _object(
        {
            **base["properties"],
            secret: {"type": "string", "description": "shown in this response only"},
        }
    )


_STRINGS = {"type": "array", "items": {"type": "string"}}
_SCOPES = {"enum": ["send", "read", "manage"]}

_SMTP_CREDENTIAL = _object(
    {
        "id": {"type": "string"},
        "project": {"type": "string"},
        "username": {"type": "string"},
        "allowed_from": _STRINGS,
        "created": _TIME,
        "last_used": _TIME_OR_NULL,
    }
)
_API_KEY = _object(
    {
        "id": {"type": "string"},
        "project": {"type": "string"},
        "name": {"type": "string"},
        "scopes": {"type": "array", "items": _SCOPES},
        "created": _TIME,
        "last_used": _TIME_OR_NULL,
    }
)
_DOMAIN_SCHEMA = _object(
    {
        "id": {"type": "string"},
        "project": {"type": "string"},
        "name": {"type": "string"},
        "verified": {"type": "boolean"},
        "verified_at": _TIME_OR_NULL,
        "last_checked": _TIME_OR_NULL,
        "created": _TIME,
        "dkim_keys": {"type": "array", "items": _ref("DkimKey")},
    }
)


SCHEMAS: Json = {
    "Error": _object(
        {"Error": {"type": "string"}, "Field": {"type": "string"}}, required=["Error"]
    ),
    "Deleted": _object({"deleted": {"type": "string"}}),
    "Project": _object(
        {
            "id": {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"},
            "name": {"type": "string"},
            "mode": {"enum": ["capture", "live"]},
            "daily_quota": _QUOTA,
            "rate_limit": _QUOTA,
            "created": _TIME,
            "suspended": {
                **_TIME_OR_NULL,
                "description": "when an admin suspended its sending; null: it may send",
            },
            "suspend_reason": {"type": ["string", "null"]},
        }
    ),
    "SuspendRequest": _object(
        {
            "reason": {
                "type": ["string", "null"],
                "maxLength": 500,
                "description": "why; shown to its senders in the refusal",
            }
        },
        required=[],
    ),
    "ResumeSuspensionRequest": _object({}, required=[]),
    "ProjectCreate": _object(
        {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "mode": {"enum": ["capture", "live"], "default": "capture"},
            "daily_quota": _QUOTA_IN,
            "rate_limit": _QUOTA_IN,
        },
        required=["id"],
    ),
    "ProjectUpdate": _object(
        {
            "name": {"type": "string"},
            "mode": {"enum": ["capture", "live"]},
            "daily_quota": _QUOTA_IN,
            "rate_limit": _QUOTA_IN,
        },
        required=[],
    ),
    "ProjectList": _object({"projects": {"type": "array", "items": _ref("Project")}}),
    "Usage": _object(
        {
            "project": {"type": "string"},
            "sent_24h": {"type": "integer", "minimum": 0},
            "daily_quota": _QUOTA,
            "rate_limit": _QUOTA,
            "remaining_24h": _nullable("integer", minimum=0),
        }
    ),
    "SmtpCredential": _SMTP_CREDENTIAL,
    "IssuedSmtpCredential": _issued(_SMTP_CREDENTIAL, "password"),
    "SmtpCredentialCreate": _object(
        {
            "username": {"type": "string", "description": "default: prj-<random>"},
            "allowed_from": {
                "type": "array",
                "items": {"type": "string"},
                "description": "addresses or domains this credential may send as",
            },
        },
        required=[],
    ),
    "SmtpCredentialList": _list_of("credentials", "SmtpCredential"),
    "IpCredential": _object(
        {
            "id": {"type": "string"},
            "project": {"type": "string"},
            "network": {"type": "string", "description": "CIDR"},
            "created": _TIME,
        }
    ),
    "IpCredentialCreate": _object({"network": {"type": "string"}}),
    "IpCredentialList": _list_of("credentials", "IpCredential"),
    "ApiKey": _API_KEY,
    "IssuedApiKey": _issued(_API_KEY, "token"),
    "ApiKeyCreate": _object(
        {
            "name": {"type": "string"},
            "scopes": {
                "type": "array",
                "items": _SCOPES,
                "default": ["send"],
            },
        },
        required=["name"],
    ),
    "ApiKeyList": _list_of("api_keys", "ApiKey"),
    "DkimKey": _object(
        {
            "selector": {"type": "string"},
            "algorithm": {"enum": ["rsa", "ed25519"]},
            "status": {"enum": ["pending", "active", "retiring", "retired"]},
            "name": {"type": "string", "description": "where its TXT record goes"},
            "type": {"const": "TXT"},
            "value": {"type": "string", "description": "the TXT record text"},
            "created": _TIME,
            "activated": _TIME_OR_NULL,
            "retire_after": _TIME_OR_NULL,
        }
    ),
    "Record": _object(
        {
            "kind": {
                "enum": [
                    "verification",
                    "dkim",
                    "spf",
                    "dmarc",
                    "return_path_mx",
                    "return_path_spf",
                    "inbound_mx",
                ]
            },
            "name": {"type": "string"},
            "type": {"enum": ["TXT", "MX"]},
            "value": {"type": "string", "description": "for MX: '<preference> <host>'"},
            "required": {"type": "boolean", "description": "needed for verification"},
            "status": {"enum": ["ok", "missing", "mismatch", "error", "unchecked"]},
            "detail": {"type": "string"},
            "found": {"type": "array", "items": {"type": "string"}},
            "suggestion": _nullable("string"),
            "selector": _nullable("string"),
            "key_status": {"enum": ["pending", "active", "retiring", None]},
        }
    ),
    "Domain": _DOMAIN_SCHEMA,
    "DomainReport": _object(
        {
            **_DOMAIN_SCHEMA["properties"],
            "records": {"type": "array", "items": _ref("Record")},
        }
    ),
    "DomainList": _list_of("domains", "Domain"),
    "DomainCreate": _object(
        {
            "domain": {"type": "string"},
            "algorithm": {"enum": ["rsa", "ed25519"], "default": "rsa"},
            "private_key": {
                "type": "string",
                "description": "your own private key (PEM); stored for signing, never returned",
            },
            "selector": {"type": "string", "description": "default: pr<YYYYMMDD>"},
        },
        required=["domain"],
    ),
    "Rotate": _object(
        {
            "algorithm": {"enum": ["rsa", "ed25519"]},
            "private_key": {"type": "string"},
            "selector": {"type": "string"},
        },
        required=[],
    ),
    "Rotation": _object(
        {"project": {"type": "string"}, "domain": {"type": "string"}, "key": _ref("DkimKey")}
    ),
    "Activate": _object({"selector": {"type": "string"}}),
    "VerifiedAddress": _object(
        {
            "project": {"type": "string"},
            "address": {"type": "string"},
            "status": {
                "enum": ["pending", "verified"],
                "description": "pending until the link or code mailed to the address is used; "
                "a pending address may not be sent as",
            },
            "created": _TIME,
            "verified_at": _TIME_OR_NULL,
            "last_mail": _TIME_OR_NULL,
            "expires": {
                **_TIME_OR_NULL,
                "description": "until when the last verification mail's link and code work",
            },
        }
    ),
    "VerifiedAddressCreate": _object({"address": {"type": "string"}}),
    "AddressConfirm": _object(
        {"code": {"type": "string", "description": "the code of the verification mail"}}
    ),
    "VerifiedAddressList": _list_of("addresses", "VerifiedAddress"),
    "Event": _object(
        {
            "id": {"type": "integer", "description": "grows with every event; the cursor"},
            "type": {"enum": list(EVENT_TYPES)},
            "time": _TIME,
            "message": _nullable("string"),
            "recipient": _nullable("string"),
            "detail": {
                "type": "object",
                "description": (
                    "send: sender. delivery, deferred, bounce, expired: code, enhanced, text "
                    "(the full reply), remote_mta, remote_ip, local (Postroom decided the reply: "
                    "routing, connection or TLS failure); for failures hard and reason (the "
                    "bounce classifier's vocabulary); deferred: next_attempt; expired: "
                    "last_code, last_enhanced"
                ),
            },
            "metadata": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "the message's metadata given to the send API; absent if none",
            },
        },
        required=["id", "type", "time", "message", "recipient", "detail"],
    ),
    "Attempt": _object(
        {
            "time": _TIME,
            "duration_ms": {"type": "number", "minimum": 0},
            "outcome": {"enum": ["delivery", "deferred", "bounce", "expired"]},
            "mx_host": {"type": "string", "description": "empty: no host was reached"},
            "ip": {"type": "string"},
            "port": {"type": "integer"},
            "local_address": {"type": "string", "description": "IP:port; empty: no connection"},
            "tls_version": {"type": "string", "description": "empty: no TLS"},
            "tls_cipher": {"type": "string"},
            "code": {"type": "integer"},
            "enhanced": {"type": "string"},
            "reply": {"type": "string", "description": "the full reply, one line per line"},
            "earlier": {
                "type": "array",
                "items": {"type": "string"},
                "description": "hosts tried before in this attempt and why they failed",
            },
            "tls_policy": {
                "type": "string",
                "description": "the TLS policy the attempt was held to (MTA-STS enforce or "
                "testing, a configured verify or required) and its failures; empty: none",
            },
        }
    ),
    "RecipientDelivery": _object(
        {
            "recipient": {"type": "string"},
            "state": {
                "type": "string",
                "description": "queued, deferred, delivered, failed (or held, cancelled)",
            },
            "attempts": {"type": "integer", "minimum": 0},
            "next_attempt": _TIME_OR_NULL,
            "last_error": _nullable("string"),
            "history": {"type": "array", "items": _ref("Attempt")},
        }
    ),
    "Deliveries": _object(
        {
            "project": {"type": "string"},
            "message": {"type": "string"},
            "status": {
                "type": "string",
                "description": (
                    "queued, delivering, delivered, bounced, partially_bounced (captured for "
                    "a capture project's message)"
                ),
            },
            "recipients": {"type": "array", "items": _ref("RecipientDelivery")},
        }
    ),
    "QueueEntry": _object(
        {
            "id": {"type": "integer"},
            "message": {"type": "string"},
            "recipient": {"type": "string"},
            "domain": {"type": "string"},
            "state": {"enum": list(QUEUE_STATES)},
            "attempts": {"type": "integer", "minimum": 0},
            "next_attempt": _TIME_OR_NULL,
            "created": _TIME,
            "last_error": _nullable("string"),
            "delivering": {"type": "boolean", "description": "a worker holds it now"},
        }
    ),
    "QueueEntryPage": _object(
        {
            "project": {"type": "string"},
            "entries": {"type": "array", "items": _ref("QueueEntry")},
            "next": _nullable("integer", description="pass as `after` for the next page"),
        }
    ),
    "QueueSummary": _object(
        {
            "project": {"type": "string"},
            "states": _object({s: {"type": "integer", "minimum": 0} for s in QUEUE_STATES}),
            "domains": {
                "type": "array",
                "items": _object(
                    {
                        "domain": {"type": "string"},
                        "queued": {"type": "integer"},
                        "held": {"type": "integer"},
                        "oldest": _TIME,
                        "next_attempt": _TIME_OR_NULL,
                        "last_error": _nullable("string"),
                        "site": _nullable(
                            "string", description="its delivery site (MX set), once routed here"
                        ),
                    }
                ),
            },
            "sites": {
                "type": "array",
                "description": "this process's shaping state of those domains' sites",
                "items": _object(
                    {
                        "site": {"type": "string"},
                        "source": {"type": "string"},
                        "active": {"type": "integer"},
                        "concurrency": {"type": "integer"},
                        "suspended": {"type": "boolean"},
                        "suspended_for": {"type": "number", "description": "seconds"},
                        "reason": {"type": "string", "description": "the reply that caused it"},
                    }
                ),
            },
        }
    ),
    "QueueFilter": _object(
        {
            "ids": {"type": "array", "items": {"type": "integer", "minimum": 1}},
            "messages": _STRINGS,
            "domain": {"type": "string"},
            "recipient": {"type": "string"},
            "state": {"enum": list(QUEUE_STATES)},
            "all": {"type": "boolean", "description": "select without other conditions"},
        },
        required=[],
    ),
    "QueueActionResult": _object(
        {
            "project": {"type": "string"},
            "action": {"enum": list(QUEUE_ACTIONS)},
            "count": {"type": "integer", "minimum": 0},
            "changed": {"type": "array", "items": {"type": "integer"}},
            "entry": _ref("QueueEntry"),
        },
        required=["project", "action", "count", "changed"],
    ),
    "DeliverySettings": _object(
        {
            "project": {"type": "string"},
            "bounce_notices": {
                "type": "boolean",
                "description": "senders get an RFC 3464 notice when a recipient fails for good",
            },
            "ip_pool": {
                "type": ["string", "null"],
                "description": "the IP pool (--ip-pools) deliveries go out from; null: the default",
            },
        }
    ),
    "DeliverySettingsUpdate": _object(
        {"bounce_notices": {"type": "boolean"}, "ip_pool": {"type": ["string", "null"]}}
    ),
    "EventPage": _object(
        {
            "project": {"type": "string"},
            "events": {"type": "array", "items": _ref("Event")},
            "next": _nullable(
                "integer", description="pass as `after` for the next page; null: no more now"
            ),
        }
    ),
}


def _param(name: str, description: str) -> Json:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


def _json(schema: str) -> Json:
    return {"application/json": {"schema": _ref(schema)}}


def _response(description: str, schema: str) -> Json:
    return {"description": description, "content": _json(schema)}


_PROJECT = _param("project", "project id")
_DOMAIN = _param("domain", "domain name")
_ERRORS = {
    "400": _response("invalid input", "Error"),
    "401": _response("authentication required, or the API key is not valid", "Error"),
    "403": _response(
        "not allowed: the API key lacks the scope or belongs to another project, or open mode "
        "(no admin user) may not do this",
        "Error",
    ),
    "404": _response("no such object", "Error"),
    "421": _response("the Host header names another server (DNS rebinding)", "Error"),
}
_NOT_JSON = {"415": _response("Content-Type is not application/json", "Error")}


def _op(
    summary: str,
    response: str,
    *,
    status: str = "200",
    body: str | None = None,
    params: tuple[Json, ...] = (),
) -> Json:
    op: Json = {
        "summary": summary,
        "responses": {status: _response(summary, response), **_ERRORS},
    }
    if params:
        op["parameters"] = list(params)
    if body:
        op["requestBody"] = {"required": True, "content": _json(body)}
    return op


def _collection(
    list_summary: str,
    list_schema: str,
    create_summary: str,
    created: str,
    body: str,
    params: tuple[Json, ...] = (_PROJECT,),
) -> Json:
    """GET lists the collection, POST creates one member (201)."""
    return {
        "get": _op(list_summary, list_schema, params=params),
        "post": _op(create_summary, created, status="201", body=body, params=params),
    }


def _deletable(summary: str, member: Json) -> Json:
    """A project's member that only DELETE reaches."""
    return {"delete": _op(summary, "Deleted", params=(_PROJECT, member))}


def _query(name: str, description: str, schema: Json | None = None) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema or {"type": "string"},
        "description": description,
    }


_ACTION = {
    "name": "action",
    "in": "path",
    "required": True,
    "schema": {"enum": list(QUEUE_ACTIONS)},
    "description": "retry, hold, release or cancel",
}

_EVENT_FILTERS = (
    _query(
        "type",
        "event types, comma-separated or repeated: " + ", ".join(EVENT_TYPES),
    ),
    _query("recipient", "the whole recipient address, case-insensitive"),
    _query("message", "a message id"),
    _query("since", "RFC 3339 time, inclusive", _TIME),
    _query("until", "RFC 3339 time, exclusive", _TIME),
    _query("after", "cursor: events with a larger id", {"type": "integer", "minimum": 0}),
    _query(
        "limit",
        "events per page (default 100)",
        {"type": "integer", "minimum": 1, "maximum": MAX_EVENT_PAGE},
    ),
)


def _paths() -> Json:
    pj, dm = (_PROJECT,), (_PROJECT, _DOMAIN)
    project = "/api/v2/projects/{project}"
    domain = f"{project}/domains/{{domain}}"
    credential = _param("credential", "credential id or username")
    ip = _param("credential", "IP credential id or its CIDR network")
    key = _param("key_id", "the API key's public id")
    address = _param("address", "the verified address")
    return {
        "/api/v2/openapi.json": {
            "get": {
                "summary": "this document",
                "responses": {"200": {"description": "the OpenAPI 3.1 document"}},
            }
        },
        "/api/v2/projects": _collection(
            "list projects", "ProjectList", "create a project", "Project", "ProjectCreate", ()
        ),
        project: {
            "get": _op("a project", "Project", params=pj),
            "patch": _op(
                "change name, mode or quotas (the default project stays in capture mode)",
                "Project",
                body="ProjectUpdate",
                params=pj,
            ),
            "delete": _op(
                "delete a project with its credentials, keys, domains and messages",
                "Deleted",
                params=pj,
            ),
        },
        f"{project}/suspension": {
            "post": _op(
                "suspend the project's sending (admin login only): every door refuses its "
                "mail (SMTP 550 5.7.1, HTTP 403, SES AccountSuspendedException) until resumed",
                "Project",
                body="SuspendRequest",
                params=pj,
            )
        },
        f"{project}/suspension/resume": {
            "post": _op(
                "lift an admin's suspension of the project's sending (admin login only)",
                "Project",
                body="ResumeSuspensionRequest",
                params=pj,
            )
        },
        f"{project}/usage": {
            "get": _op("recipients accepted in the last 24 h, and the quotas", "Usage", params=pj)
        },
        f"{project}/smtp-credentials": _collection(
            "list SMTP credentials",
            "SmtpCredentialList",
            "create an SMTP credential (the password is in this response only)",
            "IssuedSmtpCredential",
            "SmtpCredentialCreate",
        ),
        f"{project}/smtp-credentials/{{credential}}": _deletable(
            "delete an SMTP credential", credential
        ),
        f"{project}/ip-credentials": _collection(
            "list IP credentials",
            "IpCredentialList",
            "let a network submit as the project without AUTH",
            "IpCredential",
            "IpCredentialCreate",
        ),
        f"{project}/ip-credentials/{{credential}}": _deletable("delete an IP credential", ip),
        f"{project}/api-keys": _collection(
            "list API keys",
            "ApiKeyList",
            "create an API key (the token is in this response only)",
            "IssuedApiKey",
            "ApiKeyCreate",
        ),
        f"{project}/api-keys/{{key_id}}": _deletable("revoke an API key", key),
        f"{project}/domains": _collection(
            "list sending domains",
            "DomainList",
            "add a sending domain with its first DKIM key; returns the records to publish",
            "DomainReport",
            "DomainCreate",
        ),
        domain: {
            "get": _op("a domain, its records and their last status", "DomainReport", params=dm),
            "delete": _op("delete a domain and its keys", "Deleted", params=dm),
        },
        f"{domain}/records": {
            "get": _op(
                "the DNS records to publish and their last status", "DomainReport", params=dm
            )
        },
        f"{domain}/verify": {
            "post": _op("look the records up now and store the result", "DomainReport", params=dm)
        },
        f"{domain}/rotate": {
            "post": _op(
                "make a new pending DKIM key; publish its record, then activate it",
                "Rotation",
                status="201",
                body="Rotate",
                params=dm,
            )
        },
        f"{domain}/activate": {
            "post": _op(
                "sign with a pending key once its record resolves; the old key retires after "
                "a grace period",
                "Domain",
                body="Activate",
                params=dm,
            )
        },
        f"{project}/verified-addresses": _collection(
            "list sender addresses, pending and verified",
            "VerifiedAddressList",
            "add an address, pending: a verification mail with a link and a code goes to it, "
            "and the project may send as it once one of them is used",
            "VerifiedAddress",
            "VerifiedAddressCreate",
        ),
        f"{project}/verified-addresses/{{address}}": _deletable(
            "remove an address (pending or verified)", address
        ),
        f"{project}/verified-addresses/{{address}}/confirm": {
            "post": _op(
                "confirm a pending address with the code of its verification mail",
                "VerifiedAddress",
                body="AddressConfirm",
                params=(_PROJECT, address),
            )
        },
        f"{project}/verified-addresses/{{address}}/resend": {
            "post": {
                **_op(
                    "mail a new link and code to a pending address (the previous ones stop "
                    "working); at most one a minute and five a day",
                    "VerifiedAddress",
                    params=(_PROJECT, address),
                ),
            }
        },
        f"{project}/messages/{{message}}/deliveries": {
            "get": _op(
                "a message's status, each recipient's state and its attempts",
                "Deliveries",
                params=(_PROJECT, _param("message", "message id")),
            )
        },
        f"{project}/delivery-settings": {
            "get": _op("the project's delivery settings", "DeliverySettings", params=pj),
            "put": _op(
                "change the delivery settings (bounce notices on or off, the IP pool)",
                "DeliverySettings",
                body="DeliverySettingsUpdate",
                params=pj,
            ),
        },
        f"{project}/queue": {
            "get": _op(
                "the queue: entries per state, pending entries per domain, their sites",
                "QueueSummary",
                params=pj,
            )
        },
        f"{project}/queue/entries": {
            "get": _op(
                "queue entries, filtered and paged",
                "QueueEntryPage",
                params=(
                    _PROJECT,
                    _query("state", ", ".join(QUEUE_STATES)),
                    _query("domain", "recipient domain"),
                    _query("recipient", "the whole address, any case"),
                    _query("message", "a message id"),
                    _query("after", "cursor: entries with a larger id", {"type": "integer"}),
                    _query("limit", "1 to 1000, default 100", {"type": "integer"}),
                ),
            )
        },
        f"{project}/queue/{{action}}": {
            "post": _op(
                "retry (due now), hold, release (held: due now) or cancel every matching entry "
                "the action applies to and no worker is delivering",
                "QueueActionResult",
                body="QueueFilter",
                params=(_PROJECT, _ACTION),
            )
        },
        f"{project}/queue/entries/{{entry}}/{{action}}": {
            "post": {
                **_op(
                    "retry, hold, release or cancel one entry",
                    "QueueActionResult",
                    params=(_PROJECT, _param("entry", "queue entry id"), _ACTION),
                ),
            }
        },
        f"{project}/events": {
            "get": _op(
                "the project's event log, oldest first, filtered and paged",
                "EventPage",
                params=(_PROJECT, *_EVENT_FILTERS),
            )
        },
    }


def _with_throttle(paths: Json) -> Json:
    resend = paths["/api/v2/projects/{project}/verified-addresses/{address}/resend"]["post"]
    resend["responses"]["429"] = _response(
        "a verification mail went to the address too recently (see Retry-After)", "Error"
    )
    return paths


def _with_conflicts(paths: Json) -> Json:
    """One queue entry's action answers 409 when it does not apply to the entry now."""
    single = paths["/api/v2/projects/{project}/queue/entries/{entry}/{action}"]["post"]
    single["responses"]["409"] = _response(
        "the action does not apply to the entry now (its state, or a worker delivers it)", "Error"
    )
    return paths


def _with_content_type_errors(paths: Json) -> Json:
    """Every state-changing operation answers 415 to a body that is not JSON (api/guard.py)."""
    for operations in paths.values():
        for method in ("post", "put", "patch", "delete"):
            if method in operations:
                operations[method]["responses"].update(_NOT_JSON)
    return paths


def document() -> Json:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Postroom management API",
            "version": __version__,
            "description": (
                "Projects, credentials, API keys, sending domains and quotas; sending "
                "(/api/v2/messages) and templates. Errors are "
                '{"Error": "...", "Field": "..."} with a 4xx status. Secrets are returned '
                "only by the request that creates them; DKIM private keys never."
            ),
        },
        "paths": _with_content_type_errors(
            _with_conflicts(
                _with_throttle(
                    {
                        **_paths(),
                        **sending.paths(),
                        **suppression_doc.paths(_op, _query, _param, _PROJECT),
                        **webhook_doc.paths(_op, _query, _param, _PROJECT),
                        **reputation_doc.paths(_op, _PROJECT),
                        **capture_route_doc.paths(_op, _param),
                        **tls_report_doc.paths(_op, _query, _param),
                    }
                )
            )
        ),
        "components": {
            "schemas": {
                **SCHEMAS,
                **sending.SCHEMAS,
                **suppression_doc.SCHEMAS,
                **webhook_doc.SCHEMAS,
                **reputation_doc.SCHEMAS,
                **capture_route_doc.SCHEMAS,
                **tls_report_doc.SCHEMAS,
            }
        },
    }
