"""`postroom queue show|list|retry|hold|release|cancel`: a project's outbound queue from the
command line, on the configured database (works while the server runs, from any node); and
`postroom events list`: its event log.

    postroom events list [--project P] [--type T]... [--recipient R] [--message ID]
                         [--since TIME] [--until TIME] [--after ID] [--limit N]

    postroom queue show [--project P]
    postroom queue list [--project P] [--state S] [--domain D] [--recipient R] [--message ID]
    postroom queue retry|hold|release|cancel [--project P] [--id N]... [--message ID]...
                        [--domain D] [--recipient R] [--state S] [--all]

`--json` prints one JSON object (the API's shapes); an error prints `{"Error", "Field"}` and
exits with 2. Sites and their suspensions live in the delivering process: see `GET
/api/v2/projects/{project}/queue`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

from postroom.config import Config
from postroom.core.errors import InvalidInput, PostroomError
from postroom.core.types import QUEUE_ACTIONS, QUEUE_STATES, QueueFilter

AddOptions = Callable[[argparse.ArgumentParser, tuple[str, ...]], None]
ConfigFrom = Callable[[argparse.Namespace], Config]


def _filter(args: argparse.Namespace, everything: bool) -> QueueFilter:
    return QueueFilter(
        entry_ids=tuple(getattr(args, "id", None) or ()),
        message_ids=tuple(args.message or ()),
        domain=args.domain,
        recipient=args.recipient,
        state=args.state,
        everything=everything,
    )


def _run(args: argparse.Namespace, config_from: ConfigFrom) -> int:
    from postroom.api.queue import entry_view
    from postroom.core.clock import SystemClock
    from postroom.storage.engine import open_store

    clock = SystemClock()
    try:
        store = open_store(config_from(args), clock, writer_process=False)
        try:
            admin = store.queue_admin
            project = args.project
            if args.queue_command == "show":
                summary = admin.summary(project)
                data: dict[str, Any] = {
                    "project": project,
                    "states": dict(summary.states),
                    "domains": [
                        {
                            "domain": d.domain,
                            "queued": d.queued,
                            "held": d.held,
                            "oldest": d.oldest.isoformat(),
                            "last_error": d.last_error,
                        }
                        for d in summary.domains
                    ],
                }
                text = "\n".join(
                    [", ".join(f"{k}: {v}" for k, v in summary.states.items())]
                    + [
                        f"{d.domain}: {d.queued} queued, {d.held} held"
                        + (f" ({d.last_error})" if d.last_error else "")
                        for d in summary.domains
                    ]
                )
            elif args.queue_command == "list":
                found = admin.find(project, _filter(args, True), 0, args.limit)
                data = {"project": project, "entries": [entry_view(e) for e in found]}
                text = "\n".join(
                    f"{e['id']} {e['state']} {e['recipient']} {e['message']}"
                    + (f" ({e['last_error']})" if e["last_error"] else "")
                    for e in data["entries"]
                )
            else:
                wanted = _filter(args, args.all)
                if wanted.empty and not args.all:
                    raise InvalidInput(
                        "say which entries: --id, --message, --domain, --recipient, --state "
                        "or --all",
                        "filter",
                    )
                changed = admin.act(project, args.queue_command, wanted, clock.now())
                data = {
                    "project": project,
                    "action": args.queue_command,
                    "count": len(changed),
                    "changed": changed,
                }
                text = f"{args.queue_command}: {len(changed)} entry(ies)"
        finally:
            asyncio.run(store.close())
    except PostroomError as exc:
        if args.json:
            error: dict[str, Any] = {"Error": str(exc)}
            if getattr(exc, "field", None):
                error["Field"] = exc.field  # type: ignore[attr-defined]
            print(json.dumps(error))
            return 2
        raise
    print(json.dumps(data, indent=2) if args.json else text)
    return 0


def _events(args: argparse.Namespace, config_from: ConfigFrom) -> int:
    from datetime import datetime

    from postroom.api.events import event_view
    from postroom.core.clock import SystemClock
    from postroom.core.events import EventQuery, check_types
    from postroom.storage.engine import open_store

    def moment(value: str | None, name: str) -> datetime | None:
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"--{name}: expected an RFC 3339 time", name) from None
        if parsed.tzinfo is None:
            raise InvalidInput(f"--{name}: give a time zone (Z or an offset)", name)
        return parsed

    try:
        names = [n.strip() for v in args.type or () for n in v.split(",") if n.strip()]
        query = EventQuery(
            types=check_types(names),
            recipient=args.recipient,
            message_id=args.message,
            since=moment(args.since, "since"),
            until=moment(args.until, "until"),
            after=args.after,
            limit=args.limit,
        )
        store = open_store(config_from(args), SystemClock(), writer_process=False)
        try:
            page = store.events.query(args.project, query)
        finally:
            asyncio.run(store.close())
    except PostroomError as exc:
        if args.json:
            error: dict[str, Any] = {"Error": str(exc)}
            if getattr(exc, "field", None):
                error["Field"] = exc.field  # type: ignore[attr-defined]
            print(json.dumps(error))
            return 2
        raise
    views = [event_view(e) for e in page.events]
    if args.json:
        print(json.dumps({"project": args.project, "events": views, "next": page.next}, indent=2))
    else:
        for v in views:
            detail = v["detail"]
            reply = f" {detail['code']} {detail.get('enhanced', '')}" if "code" in detail else ""
            print(f"{v['id']} {v['time']} {v['type']} {v['recipient'] or ''} {v['message']}{reply}")
        if page.next is not None:
            print(f"(more: --after {page.next})")
    return 0


def add_queue_commands(sub: Any, add_options: AddOptions, config_from: ConfigFrom) -> None:
    queue = sub.add_parser("queue", help="look at and act on a project's outbound queue")
    queue_sub = queue.add_subparsers(dest="queue_command", required=True)
    helps = {
        "show": "entries per state and pending entries per domain",
        "list": "the matching entries",
        "retry": "make matching queued or deferred entries due now",
        "hold": "stop matching queued or deferred entries until released",
        "release": "make matching held entries due now",
        "cancel": "give up matching pending entries (event: cancelled)",
    }
    for name in ("show", "list", *QUEUE_ACTIONS):
        command = queue_sub.add_parser(name, help=helps[name])
        command.add_argument("--project", default="default")
        command.add_argument("--json", action="store_true", help="print one JSON object")
        if name != "show":
            command.add_argument("--state", choices=QUEUE_STATES)
            command.add_argument("--domain", help="recipient domain")
            command.add_argument("--recipient", help="the whole address")
            command.add_argument("--message", action="append", help="message id (repeatable)")
        if name == "list":
            command.add_argument("--limit", type=int, default=100)
        if name in QUEUE_ACTIONS:
            command.add_argument("--id", type=int, action="append", help="entry id (repeatable)")
            command.add_argument("--all", action="store_true", help="every entry it applies to")
        add_options(command, ())
        command.set_defaults(func=lambda args: _run(args, config_from))

    events = sub.add_parser("events", help="read a project's event log")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    listing = events_sub.add_parser("list", help="events, oldest first, filtered")
    listing.add_argument("--project", default="default")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.add_argument("--type", action="append", help="event type (repeatable, or a,b)")
    listing.add_argument("--recipient", help="the whole address, any case")
    listing.add_argument("--message", help="a message id")
    listing.add_argument("--since", help="RFC 3339 time, inclusive")
    listing.add_argument("--until", help="RFC 3339 time, exclusive")
    listing.add_argument("--after", type=int, help="the cursor a previous page printed")
    listing.add_argument("--limit", type=int, default=100)
    add_options(listing, ())
    listing.set_defaults(func=lambda args: _events(args, config_from))
