"""`postroom suppression list|add|remove|import|export`: the suppression list from the command
line, on the configured database (works while the server runs).

`--project P` works on project P's list, `--account` on the account-wide list (every project).
`import FILE` reads CSV (`-` for standard input); `export` writes CSV on standard output. With
`--json`, list, add and remove print one JSON object; errors are `{"Error", "Field"}` with exit
status 2, as the other management commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from postroom.config import Config
from postroom.core.errors import InvalidInput, PostroomError
from postroom.core.suppression import ACCOUNT, REASONS, SuppressionQuery, check_reason

AddOptions = Callable[[argparse.ArgumentParser, tuple[str, ...]], None]
ConfigFrom = Callable[[argparse.Namespace], Config]


def entry_view(entry: Any) -> dict[str, Any]:
    def time(value: Any) -> str | None:
        return None if value is None else value.isoformat().replace("+00:00", "Z")

    return {
        "address": entry.address,
        "reason": entry.reason,
        "scope": "account" if entry.scope == ACCOUNT else "project",
        "created": time(entry.created),
        "expires": time(entry.expires),
        "event_id": entry.event_id,
        "detail": entry.detail,
    }


@contextmanager
def _opened(args: argparse.Namespace, config_from: ConfigFrom) -> Iterator[tuple[Any, str]]:
    """The SuppressionList on the configured database and the scope asked for."""
    import asyncio

    from postroom.core.clock import SystemClock
    from postroom.platform.factory import open_platform
    from postroom.storage.engine import open_store
    from postroom.suppression.service import SuppressionList

    config = config_from(args)
    if args.account:
        scope = ACCOUNT
    else:
        service = open_platform(config)
        try:
            service.get_project(args.project)  # NotFound for an unknown project
        finally:
            service.close()
        scope = args.project
    clock = SystemClock()
    store = open_store(config, clock)
    try:
        yield SuppressionList(store.suppressions, clock), scope
    finally:
        asyncio.run(store.close())


def _run(
    work: Callable[[Any, str, argparse.Namespace], tuple[Any, str]], config_from: ConfigFrom
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            with _opened(args, config_from) as (suppressions, scope):
                data, text = work(suppressions, scope, args)
        except PostroomError as exc:
            if getattr(args, "json", False):
                error: dict[str, Any] = {"Error": str(exc)}
                if getattr(exc, "field", None):
                    error["Field"] = exc.field  # type: ignore[attr-defined]
                print(json.dumps(error))
                return 2
            raise
        if data is not None:
            print(json.dumps(data, indent=2) if args.json else text)
        return 0

    return run


def _list(suppressions: Any, scope: str, args: argparse.Namespace) -> tuple[Any, str]:
    reason = check_reason(args.reason) if args.reason else None
    page = suppressions.page(
        scope,
        SuppressionQuery(search=args.search, reason=reason, after=args.after, limit=args.limit),
    )
    entries = [entry_view(e) for e in page.entries]
    lines = [f"{e['address']}  {e['reason']}  {e['created']}" for e in entries]
    if page.next:
        lines.append(f"(more: --after {page.next})")
    return {"suppressions": entries, "next": page.next}, "\n".join(lines) or "(none)"


def _add(suppressions: Any, scope: str, args: argparse.Namespace) -> tuple[Any, str]:
    from postroom.suppression.service import parse_time

    expires = parse_time(args.expires, "expires") if args.expires else None
    entry = suppressions.add(scope, args.address, args.reason, expires=expires, detail=args.detail)
    return entry_view(entry), f"suppressed {entry.address} ({entry.reason})"


def _remove(suppressions: Any, scope: str, args: argparse.Namespace) -> tuple[Any, str]:
    suppressions.remove(scope, args.address)
    return {"deleted": args.address}, f"removed {args.address}"


def _import(suppressions: Any, scope: str, args: argparse.Namespace) -> tuple[Any, str]:
    if args.file == "-":
        count = suppressions.import_csv(scope, sys.stdin, args.reason)
    else:
        try:
            with open(args.file, newline="", encoding="utf-8-sig") as handle:
                count = suppressions.import_csv(scope, handle, args.reason)
        except OSError as exc:
            raise InvalidInput(f"{args.file}: {exc.strerror or exc}", "file") from None
    return {"imported": count}, f"imported {count} address(es)"


def _export(suppressions: Any, scope: str, args: argparse.Namespace) -> tuple[Any, str]:
    for line in suppressions.export_csv(scope):
        sys.stdout.write(line)
    return None, ""


def add_suppression_commands(sub: Any, add_options: AddOptions, config_from: ConfigFrom) -> None:
    group = sub.add_parser("suppression", help="the suppression list (per project or account)")
    actions = group.add_subparsers(dest="suppression_command", required=True)

    def command(name: str, help_text: str, work: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--project", help="the project whose list it is")
        scope.add_argument("--account", action="store_true", help="the account-wide list")
        parser.set_defaults(func=_run(work, config_from), json=False)
        return parser

    listing = command("list", "list and search entries", _list)
    listing.add_argument("--search", help="part of the address (any case)")
    listing.add_argument("--reason", choices=REASONS)
    listing.add_argument("--after", help="the cursor a previous page printed")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="print JSON")
    add_options(listing, ())

    add = command("add", "suppress an address", _add)
    add.add_argument("address")
    add.add_argument("--reason", choices=REASONS, default="manual")
    add.add_argument("--expires", help="RFC 3339 time the entry ends (default: never)")
    add.add_argument("--detail", default="", help="a note")
    add.add_argument("--json", action="store_true", help="print JSON")
    add_options(add, ())

    remove = command("remove", "remove an address from the list", _remove)
    remove.add_argument("address")
    remove.add_argument("--json", action="store_true", help="print JSON")
    add_options(remove, ())

    importing = command("import", "add the addresses of a CSV file (all or nothing)", _import)
    importing.add_argument("file", help="CSV file with an address column ('-': standard input)")
    importing.add_argument(
        "--reason", choices=REASONS, default="manual", help="for rows that name none"
    )
    importing.add_argument("--json", action="store_true", help="print JSON")
    add_options(importing, ())

    exporting = command("export", "write the list as CSV on standard output", _export)
    add_options(exporting, ())
