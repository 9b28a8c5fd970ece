"""The inbox's first rows, rendered on the server into the shell so they are painted with the
page itself, before any script has run (issue 12: first rows in < 300 ms at a million).

This is static/list.js's `rowContent` and `ListView.render` written again in Python, element for
element and attribute for attribute, and static/format.js's formatting with them: app.js adopts
these rows (it keeps the same `<li>` and fills each again), so what is on screen does not jump
when the scripts take over. tests/e2e/test_web_ui_first_rows.py holds the two equal.

Times read "5 min ago" against the server's clock in UTC; the browser fills them again in its
own time zone a moment later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from html import escape
from typing import Any
from urllib.parse import quote

from markupsafe import Markup


class Html(str):
    """Markup made here (a plain str subclass: Markup's checks on every piece cost more than
    the rows themselves); any other str is text and is escaped."""

    __slots__ = ()


Node = Html | str | None
MAX_ROW_TAGS = 3  # list.js MAX_ROW_TAGS
ROW_RECIPIENTS = 3  # recipients.js rowRecipients(list, max = 3)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_URI_SAFE = "!'()*-._~"  # what encodeURIComponent leaves as it is, besides letters and digits
_VOID = frozenset({"input"})


def h(tag: str, attrs: Mapping[str, str | None], *children: Node | Iterable[Node]) -> Html:
    """An element, as dom.js `h` builds it: attributes that are None are left out; Html
    children are markup, other strings text."""
    parts = [f"<{tag}"]
    for name, value in attrs.items():
        if value is not None:
            parts.append(f' {name}="{escape(value)}"')
    parts.append(">")
    for child in children:
        if child is None:
            continue
        if isinstance(child, str):
            parts.append(child if type(child) is Html else escape(child))
        else:
            parts.extend(
                node if type(node) is Html else escape(node) for node in child if node is not None
            )
    if tag not in _VOID:
        parts.append(f"</{tag}>")
    return Html("".join(parts))


def join_nodes(nodes: Iterable[Node]) -> Html:
    return Html("".join(node if type(node) is Html else escape(node) for node in nodes if node))


def icon(name: str) -> Html:
    """dom.js `icon`: a decorative icon from the shell's sprite."""
    return Html(
        f'<svg class="icon" aria-hidden="true" focusable="false"><use href="#i-{escape(name)}">'
        "</use></svg>"
    )


def sr_only(text: str) -> Html:
    return h("span", {"class": "sr-only"}, text)


# -- format.js -------------------------------------------------------------------------------


def js_round(value: float) -> int:
    """Math.round: halves go up."""
    return math.floor(value + 0.5)


def to_fixed(value: float, digits: int) -> str:
    """Number.prototype.toFixed: the exact value of the double, halves away from zero."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def parse_date(value: Any) -> datetime | None:
    """An RFC 3339 time; one without an offset is taken as UTC."""
    try:
        date = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return date if date.tzinfo is not None else date.replace(tzinfo=UTC)


def relative_time(date: datetime | None, now: datetime) -> str:
    """format.js relativeTime, with UTC as the local time zone."""
    if date is None:
        return ""
    seconds = js_round((now - date).total_seconds())
    if seconds < 45:
        return "just now"
    minutes = js_round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min ago"
    hours = js_round(minutes / 60)
    start_of_today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if date >= start_of_today:
        return f"{hours} h ago"
    days = math.ceil((start_of_today - date) / timedelta(days=1))
    if days <= 1:
        return "yesterday"
    if days < 7:
        return f"{days} days ago"
    local = date.astimezone(now.tzinfo)
    short = f"{local.day} {MONTHS[local.month - 1]}"
    return short if local.year == now.year else f"{short} {local.year}"


def format_size(size: Any) -> str:
    n = size if isinstance(size, int) else 0
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{to_fixed(n / 1024, 1 if n < 10 * 1024 else 0)} KB"
    return f"{to_fixed(n / (1024 * 1024), 1)} MB"


def format_count(n: int) -> str:
    return f"{n:,}"


def plural(n: int, one: str, many: str) -> str:
    return f"{format_count(n)} {one if n == 1 else many}"


def full_address(a: Mapping[str, Any] | None) -> str:
    if not a:
        return ""
    name, address = a.get("Name") or "", a.get("Address") or ""
    if name and address:
        return f"{name} <{address}>"
    return str(name or address)


def short_address(a: Mapping[str, Any] | None) -> str:
    if not a:
        return ""
    return str(a.get("Name") or a.get("Address") or "")


# -- recipients.js and list.js ---------------------------------------------------------------


def _joined(addresses: Sequence[Mapping[str, Any]], first: bool) -> list[Node]:
    out: list[Node] = []
    for i, a in enumerate(addresses):
        if i > 0 or not first:
            out.append(", ")
        name = h("span", {"class": "addr-name", "dir": "auto"}, short_address(a))
        out.append(h("span", {"class": "addr"}, name))
    return out


def row_recipients(listed: Sequence[Mapping[str, Any]]) -> list[Node]:
    """recipients.js rowRecipients: the first three, the rest behind "+N more"."""
    addresses = [a for a in listed if a and (a.get("Address") or a.get("Name"))]
    if not addresses:
        return ["(no recipients)"]
    if len(addresses) <= ROW_RECIPIENTS + 1:
        return _joined(addresses, True)
    rest = len(addresses) - ROW_RECIPIENTS
    return [
        h(
            "span",
            {"class": "row-to-list"},
            *_joined(addresses[:ROW_RECIPIENTS], True),
            h("span", {"class": "row-to-rest"}, _joined(addresses[ROW_RECIPIENTS:], False)),
        ),
        " ",
        h(
            "span",
            {"class": "row-more"},
            h("span", {"class": "row-more-closed"}, f"+{rest} more"),
            h("span", {"class": "row-more-open"}, "fewer"),
        ),
    ]


def row_content(m: Mapping[str, Any], now: datetime) -> list[Node]:
    """list.js rowContent."""
    recipients = [*(m.get("To") or []), *(m.get("Cc") or [])]
    tags: list[str] = list(m.get("Tags") or [])
    meta: list[Node] = [
        h(
            "span",
            {"class": "tag", "title": f"Show the messages tagged {tag}", "data-tag": tag},
            tag,
        )
        for tag in tags[:MAX_ROW_TAGS]
    ]
    if len(tags) > MAX_ROW_TAGS:
        rest = tags[MAX_ROW_TAGS:]
        meta.append(h("span", {"class": "tag tag-more", "title": ", ".join(rest)}, f"+{len(rest)}"))
    warnings = m.get("Warnings") or []
    if warnings:
        meta.append(
            h(
                "span",
                {"class": "row-warn", "title": "\n".join(warnings)},
                icon("warn"),
                sr_only("Has warnings"),
            )
        )
    attachments = m.get("Attachments") or 0
    if attachments > 0:
        what = plural(attachments, "attachment", "attachments")
        meta.append(
            h("span", {"class": "row-attach", "title": what}, icon("clip"), sr_only(f"{what},"))
        )
    meta.append(h("span", {"class": "row-size"}, format_size(m.get("Size"))))
    subject = m.get("Subject") or "(no subject)"
    snippet = m.get("Snippet") or ""
    created = str(m.get("Created") or "")
    return [
        h("span", {"class": "row-dot", "aria-hidden": "true"}),
        h(
            "span",
            {"class": "row-from", "title": full_address(m.get("From"))},
            None if m.get("Read") else sr_only("Unread, "),
            h(
                "span",
                {"class": "addr", "dir": "auto"},
                short_address(m.get("From")) or "(no sender)",
            ),
        ),
        h(
            "time",
            {"class": "row-time", "datetime": created, "data-ts": created},
            relative_time(parse_date(created), now),
        ),
        h(
            "span",
            {"class": "row-line", "elementtiming": "row"},
            h("span", {"class": "row-subject", "dir": "auto"}, subject),
            h("span", {"class": "row-sep"}, " — ") if snippet else None,
            h("span", {"class": "row-snippet", "dir": "auto"}, snippet) if snippet else None,
        ),
        h(
            "span",
            {"class": "row-to", "title": ", ".join(full_address(a) for a in recipients)},
            h("span", {"class": "row-to-label"}, "To: "),
            row_recipients(recipients),
        ),
        h("span", {"class": "row-meta"}, meta),
    ]


def message_href(base: str, message_id: str) -> str:
    """api.js urls.message."""
    return f"{base}/message/{quote(message_id, safe=_URI_SAFE)}"


def row_item(m: Mapping[str, Any], base: str, now: datetime) -> Html:
    """One `<li>` of the list as ListView.render makes it."""
    message_id = str(m.get("ID") or "")
    link = h(
        "a",
        {
            "class": "row" if m.get("Read") else "row unread",
            "href": message_href(base, message_id),
            "data-id": message_id,
        },
        row_content(m, now),
    )
    box = h(
        "input",
        {
            "type": "checkbox",
            "class": "row-check",
            "data-id": message_id,
            "aria-label": f"Select: {m.get('Subject') or '(no subject)'}",
        },
    )
    return h("li", {"class": "row-item"}, link, box)


def list_count(page: Mapping[str, Any]) -> str:
    """app.js renderCounts for the inbox (not a search): "1–50 of 1,000 messages, 3 unread"."""
    start = int(page.get("start") or 0)
    shown = len(page.get("messages") or [])
    total = int(page.get("total") or 0)
    unread = int(page.get("unread") or 0)
    span = f"{format_count(start + 1)}–{format_count(start + shown)} of " if shown else ""
    return f"{span}{plural(total, 'message', 'messages')}" + (
        f", {format_count(unread)} unread" if unread else ""
    )


def first_rows(page: Mapping[str, Any], base: str, now: datetime, limit: int) -> Markup:
    """The `<li>` of the page's first `limit` messages, for the shell's list (app.js draws the
    others, from the same page)."""
    messages = page.get("messages") or []
    return Markup("".join(row_item(m, base, now) for m in messages[:limit]))
