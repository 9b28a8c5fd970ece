"""The first page of the message list, rendered into the shell.

The page shows its first rows as soon as the HTML arrives, without waiting for the scripts to
load and call the API: the shell carries the rows (rendered here the way `static/list.js`
renders them) and the same page as JSON in a data block, which the scripts adopt instead of
fetching it again. The scripts then redraw each row themselves (local time zone, exact times on
hover), so these formatters only need to look the same, not to be the source of truth.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup

from postroom.api.context import ApiContext
from postroom.api.serialize import message_summary
from postroom.core.errors import PostroomError
from postroom.core.search import parse_query

Json = dict[str, Any]
MAX_ROW_TAGS = 3  # as list.js
MAX_ROW_RECIPIENTS = 3
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def parse_created(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def relative_time(when: datetime | None, now: datetime) -> str:
    """Like format.js relativeTime (but in UTC: the script redraws it in local time)."""
    if when is None:
        return ""
    seconds = round((now - when).total_seconds())
    if seconds < 45:
        return "just now"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min ago"
    start_of_today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if when >= start_of_today:
        return f"{round(minutes / 60)} h ago"
    days = -(-(start_of_today - when) // timedelta(days=1))  # ceiling
    if days <= 1:
        return "yesterday"
    if days < 7:
        return f"{days} days ago"
    short = f"{when.day} {_MONTHS[when.month - 1]}"
    return short if when.year == now.year else f"{short} {when.year}"


def format_size(size: int) -> str:
    """Like format.js formatSize."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        kb = size / 1024
        return f"{kb:.1f} KB" if size < 10 * 1024 else f"{kb:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def short_address(address: Json | None) -> str:
    if not address:
        return ""
    return str(address.get("Name") or address.get("Address") or "")


def full_address(address: Json | None) -> str:
    if not address:
        return ""
    name, addr = address.get("Name") or "", address.get("Address") or ""
    return f"{name} <{addr}>" if name and addr else str(name or addr)


def address_list(addresses: list[Json], limit: int = MAX_ROW_RECIPIENTS) -> str:
    names = [n for n in (short_address(a) for a in addresses) if n]
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} +{len(names) - limit}"


def plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def data_block(value: Any) -> Markup:
    """JSON safe inside <script type="application/json">: no `</script>` or `<!--` can form."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


async def first_page(context: ApiContext, q: str, start: int, limit: int) -> Json | None:
    """The list response the scripts would fetch first, or None if it cannot be had here (a bad
    search, the store failing): then the scripts ask the API and show its answer."""
    try:
        query = parse_query(q, context.clock.now()) if q else None
        page = await asyncio.to_thread(context.store.list, context.project, query, start, limit)
        tags = await asyncio.to_thread(context.store.tags, context.project)
    except PostroomError:
        return None
    return {
        "total": page.total,
        "unread": page.unread,
        "messages_count": page.matched,
        "messages_unread": page.matched_unread,
        "start": page.start,
        "tags": tags,
        "messages": [message_summary(m) for m in page.messages],
    }


def row_view(summary: Json, now: datetime) -> Json:
    """What the row template needs from one MessageSummary."""
    recipients = [*summary.get("To", []), *summary.get("Cc", [])]
    tags = list(summary.get("Tags", []))
    attachments = int(summary.get("Attachments", 0))
    return {
        "id": summary["ID"],
        "unread": not summary.get("Read", False),
        "from": short_address(summary.get("From")) or "(no sender)",
        "from_full": full_address(summary.get("From")),
        "created": summary.get("Created", ""),
        "when": relative_time(parse_created(summary.get("Created", "")), now),
        "subject": summary.get("Subject") or "(no subject)",
        "snippet": summary.get("Snippet", ""),
        "to": address_list(recipients) or "(no recipients)",
        "to_full": ", ".join(full_address(a) for a in recipients),
        "tags": tags[:MAX_ROW_TAGS],
        "more_tags": ", ".join(tags[MAX_ROW_TAGS:]),
        "more_count": max(0, len(tags) - MAX_ROW_TAGS),
        "warnings": "\n".join(summary.get("Warnings", [])),
        "attachments": plural(attachments, "attachment", "attachments") if attachments else "",
        "size": format_size(int(summary.get("Size", 0))),
    }
