"""The OpenAPI 3.1 document of the management API (/api/v2), written by hand.

Response schemas forbid properties they do not list, so the tests that validate every
response against this document also prove that nothing else (a digest, a private key) leaks.
"""

from __future__ import annotations

from typing import Any

from postroom import __version__

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
        }
    ),
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
    "SmtpCredential": _object(
        {
            "id": {"type": "string"},
            "project": {"type": "string"},
            "username": {"type": "string"},
            "allowed_from": {"type": "array", "items": {"type": "string"}},
            "created": _TIME,
            "last_used": _TIME_OR_NULL,
        }
    ),
    "IssuedSmtpCredential": _object(
        {
            "id": {"type": "string"},
            "project": {"type": "string"},
            "username": {"type": "string"},
            "allowed_from": {"type": "array", "items": {"type": "string"}},
            "created": _TIME,
            "last_used": _TIME_OR_NULL,
            "password": {"type": "string", "description": "shown in this response only"},
        }
    ),
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
    "ApiKey": _object(
        {
            "id": {"type": "string"},
            "project": {"type": "string"},
            "name": {"type": "string"},
            "scopes": {"type": "array", "items": {"enum": ["send", "read", "manage"]}},
            "created": _TIME,
            "last_used": _TIME_OR_NULL,
        }
    ),
    "IssuedApiKey": _object(
        {
            "id": {"type": "string"},
            "project": {"type": "string"},
            "name": {"type": "string"},
            "scopes": {"type": "array", "items": {"enum": ["send", "read", "manage"]}},
            "created": _TIME,
            "last_used": _TIME_OR_NULL,
            "token": {"type": "string", "description": "shown in this response only"},
        }
    ),
    "ApiKeyCreate": _object(
        {
            "name": {"type": "string"},
            "scopes": {
                "type": "array",
                "items": {"enum": ["send", "read", "manage"]},
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
    "Domain": _object(
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
    ),
    "DomainReport": _object(
        {
            "id": {"type": "string"},
            "project": {"type": "string"},
            "name": {"type": "string"},
            "verified": {"type": "boolean"},
            "verified_at": _TIME_OR_NULL,
            "last_checked": _TIME_OR_NULL,
            "created": _TIME,
            "dkim_keys": {"type": "array", "items": _ref("DkimKey")},
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
        {"project": {"type": "string"}, "address": {"type": "string"}, "created": _TIME}
    ),
    "VerifiedAddressCreate": _object({"address": {"type": "string"}}),
    "VerifiedAddressList": _list_of("addresses", "VerifiedAddress"),
}


def _param(name: str, description: str) -> Json:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


_PROJECT = _param("project", "project id")
_DOMAIN = _param("domain", "domain name")
_ERRORS = {
    "400": {
        "description": "invalid input",
        "content": {"application/json": {"schema": _ref("Error")}},
    },
    "404": {
        "description": "no such object",
        "content": {"application/json": {"schema": _ref("Error")}},
    },
}


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
        "responses": {
            status: {
                "description": summary,
                "content": {"application/json": {"schema": _ref(response)}},
            },
            **_ERRORS,
        },
    }
    if params:
        op["parameters"] = list(params)
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return op


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
        "/api/v2/projects": {
            "get": _op("list projects", "ProjectList"),
            "post": _op("create a project", "Project", status="201", body="ProjectCreate"),
        },
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
        f"{project}/usage": {
            "get": _op("recipients accepted in the last 24 h, and the quotas", "Usage", params=pj)
        },
        f"{project}/smtp-credentials": {
            "get": _op("list SMTP credentials", "SmtpCredentialList", params=pj),
            "post": _op(
                "create an SMTP credential (the password is in this response only)",
                "IssuedSmtpCredential",
                status="201",
                body="SmtpCredentialCreate",
                params=pj,
            ),
        },
        f"{project}/smtp-credentials/{{credential}}": {
            "delete": _op("delete an SMTP credential", "Deleted", params=(_PROJECT, credential))
        },
        f"{project}/ip-credentials": {
            "get": _op("list IP credentials", "IpCredentialList", params=pj),
            "post": _op(
                "let a network submit as the project without AUTH",
                "IpCredential",
                status="201",
                body="IpCredentialCreate",
                params=pj,
            ),
        },
        f"{project}/ip-credentials/{{credential}}": {
            "delete": _op("delete an IP credential", "Deleted", params=(_PROJECT, ip))
        },
        f"{project}/api-keys": {
            "get": _op("list API keys", "ApiKeyList", params=pj),
            "post": _op(
                "create an API key (the token is in this response only)",
                "IssuedApiKey",
                status="201",
                body="ApiKeyCreate",
                params=pj,
            ),
        },
        f"{project}/api-keys/{{key_id}}": {
            "delete": _op("revoke an API key", "Deleted", params=(_PROJECT, key))
        },
        f"{project}/domains": {
            "get": _op("list sending domains", "DomainList", params=pj),
            "post": _op(
                "add a sending domain with its first DKIM key; returns the records to publish",
                "DomainReport",
                status="201",
                body="DomainCreate",
                params=pj,
            ),
        },
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
        f"{project}/verified-addresses": {
            "get": _op("list verified sender addresses", "VerifiedAddressList", params=pj),
            "post": _op(
                "let the project send as this address",
                "VerifiedAddress",
                status="201",
                body="VerifiedAddressCreate",
                params=pj,
            ),
        },
        f"{project}/verified-addresses/{{address}}": {
            "delete": _op("remove a verified address", "Deleted", params=(_PROJECT, address))
        },
    }


def document() -> Json:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Postroom management API",
            "version": __version__,
            "description": (
                "Projects, credentials, API keys, sending domains and quotas. Errors are "
                '{"Error": "...", "Field": "..."} with a 4xx status. Secrets are returned '
                "only by the request that creates them; DKIM private keys never."
            ),
        },
        "paths": _paths(),
        "components": {"schemas": SCHEMAS},
    }
