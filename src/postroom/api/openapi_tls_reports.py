"""The OpenAPI description of the TLS reports (api/tls_reports.py), merged into
/api/v2/openapi.json by api/openapi_v2.py."""

from __future__ import annotations

from typing import Any

from postroom.core.tls_reports import RESULT_TYPES

Json = dict[str, Any]

SCHEMAS: Json = {
    "TlsReportSummary": {
        "type": "object",
        "properties": {
            "from": {"type": "string", "format": "date"},
            "to": {"type": "string", "format": "date"},
            "domains": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "domain": {"type": "string", "description": "the policy domain"},
                        "rua": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "where its reports go (its TLS-RPT record)",
                        },
                        "days": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "date": {"type": "string", "format": "date"},
                                    "successful": {"type": "integer"},
                                    "failed": {"type": "integer"},
                                    "failures": {
                                        "type": "object",
                                        "description": "failed sessions per RFC 8460 result "
                                        "type: " + ", ".join(RESULT_TYPES),
                                        "additionalProperties": {"type": "integer"},
                                    },
                                },
                                "required": ["date", "successful", "failed", "failures"],
                            },
                        },
                    },
                    "required": ["domain", "rua", "days"],
                },
            },
        },
        "required": ["from", "to", "domains"],
    },
    "TlsReport": {
        "type": "object",
        "description": "an SMTP TLS report as RFC 8460 §4.4 defines it (organization-name, "
        "date-range, contact-info, report-id, policies with summary and failure-details)",
        "properties": {
            "organization-name": {"type": "string"},
            "date-range": {"type": "object"},
            "contact-info": {"type": "string"},
            "report-id": {"type": "string"},
            "policies": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["organization-name", "date-range", "contact-info", "report-id", "policies"],
    },
}


def paths(op: Any, query: Any, param: Any) -> Json:
    """The paths, built with openapi_v2's helpers."""
    return {
        "/api/v2/tls-reports": {
            "get": op(
                "TLS sessions per policy domain and day, successful and failed by result type "
                "(admin login only)",
                "TlsReportSummary",
                params=(
                    query("from", "first day, YYYY-MM-DD (default: 6 days before to)"),
                    query("to", "last day, YYYY-MM-DD (default: today, UTC)"),
                    query("domain", "one policy domain"),
                ),
            )
        },
        "/api/v2/tls-reports/{domain}/{date}": {
            "get": op(
                "the RFC 8460 report of one policy domain's sessions on one UTC day (admin "
                "login only)",
                "TlsReport",
                params=(
                    param("domain", "the policy domain"),
                    param("date", "the day, YYYY-MM-DD"),
                ),
            )
        },
    }
