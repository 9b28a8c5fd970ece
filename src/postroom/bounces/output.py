"""A report as the JSON object `postroom bounce parse` prints for each file."""

from __future__ import annotations

from typing import Any

from postroom.bounces.model import Report

_KINDS = {
    "bounce": "bounce",
    "delay": "bounce",  # a delay notice is a (soft) bounce report
    "delivery": "delivered",
    "complaint": "complaint",
    "autoreply": "autoreply",
}


def report_json(file: str, report: Report | None) -> dict[str, Any]:
    """`{"file", "kind", "recipients": [{"address", "status", "reply_code", "reason",
    "hard_bounce", "feedback_type"}]}`, recipients in the order the report lists them; kind
    `none` (and no recipients) for a message that is no report."""
    if report is None:
        return {"file": file, "kind": "none", "recipients": []}
    return {
        "file": file,
        "kind": _KINDS[report.kind],
        "recipients": [
            {
                "address": r.address,
                "status": r.status,
                "reply_code": r.reply_code,
                "reason": r.reason,
                "hard_bounce": r.hard,
                "feedback_type": r.feedback_type or None,
            }
            for r in report.recipients
        ],
    }
