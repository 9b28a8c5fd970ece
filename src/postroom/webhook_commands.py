"""`postroom webhook list|create|update|delete|rotate-secret|requests|resend`: a project's
webhooks from the command line, on the configured database (works while the server runs).

    postroom webhook list --project P
    postroom webhook create --project P --url URL --type T [--type T]... [--include-headers]
                            [--disabled] [--description TEXT]
    postroom webhook update --project P ID [--url URL] [--type T]... [--enable | --disable]
                            [--include-headers | --no-include-headers] [--description TEXT]
    postroom webhook delete --project P ID
    postroom webhook rotate-secret --project P ID
    postroom webhook requests --project P ID [--limit N]
    postroom webhook resend --project P ID REQUEST

`create` and `rotate-secret` print the secret (the only time it is shown). `--json` prints one
JSON object (the API's shapes); an error prints `{"Error", "Field"}` and exits with 2. The
secret is sealed with the data directory's sealing.key: run these with the server's
`--data-dir` (also with PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from postroom.config import Config
from postroom.core.errors import PostroomError
from postroom.core.webhooks import WEBHOOK_EVENT_TYPES

AddOptions = Callable[[argparse.ArgumentParser, tuple[str, ...]], None]
ConfigFrom = Callable[[argparse.Namespace], Config]


def _types(values: list[str] | None) -> list[str]:
    return [n.strip() for v in values or () for n in v.split(",") if n.strip()]


def _work(service: Any, args: argparse.Namespace) -> tuple[Any, str]:
    from postroom.events.webhook_service import request_view, webhook_view

    project, command = args.project, args.webhook_command
    if command == "list":
        hooks = [webhook_view(h) for h in service.list(project)]
        lines = [
            f"{h['id']} {'on ' if h['enabled'] else 'off'} {h['url']} {','.join(h['types'])}"
            + (f"  (disabled: {h['disabled_reason']})" if h["disabled_reason"] else "")
            for h in hooks
        ]
        return {"project": project, "webhooks": hooks}, "\n".join(lines) or "(none)"
    if command == "create":
        body: dict[str, Any] = {
            "url": args.url,
            "types": _types(args.type),
            "enabled": not args.disabled,
            "include_headers": args.include_headers,
        }
        if args.description is not None:
            body["description"] = args.description
        hook, secret = service.create(project, body)
        return webhook_view(hook, secret), f"created webhook {hook.id}\nsecret: {secret}"
    if command == "update":
        changes: dict[str, Any] = {}
        if args.url is not None:
            changes["url"] = args.url
        if args.type:
            changes["types"] = _types(args.type)
        if args.enabled is not None:
            changes["enabled"] = args.enabled
        if args.include_headers is not None:
            changes["include_headers"] = args.include_headers
        if args.description is not None:
            changes["description"] = args.description
        hook = service.update(project, args.id, changes)
        return webhook_view(hook), f"updated webhook {hook.id}"
    if command == "delete":
        service.delete(project, args.id)
        return {"deleted": args.id}, f"deleted webhook {args.id}"
    if command == "rotate-secret":
        hook, secret = service.rotate_secret(project, args.id)
        return webhook_view(hook, secret), f"secret: {secret}"
    if command == "requests":
        found = [request_view(r) for r in service.requests(project, args.id, args.limit)]
        lines = [
            f"{r['id']} {r['time']} {r['status_code'] or '-'} {r['latency_ms']:.0f} ms "
            f"event {r['event_id']}" + (f" ({r['error']})" if r["error"] else "")
            for r in found
        ]
        return {"project": project, "webhook": args.id, "requests": found}, "\n".join(
            lines
        ) or "(none)"
    item = service.resend(project, args.id, args.request)
    return (
        {"queued": item.id, "resend_of": item.resend_of, "event_id": item.event_id},
        f"queued again as {item.id}",
    )


def _run(args: argparse.Namespace, config_from: ConfigFrom) -> int:
    from postroom.core.clock import SystemClock
    from postroom.events.webhook_service import WebhookService
    from postroom.platform.factory import open_platform
    from postroom.storage.engine import open_store
    from postroom.storage.sealing import SecretBox

    try:
        config = config_from(args)
        platform = open_platform(config)
        try:
            store = open_store(config, SystemClock(), writer_process=False)
            try:
                service = WebhookService(
                    store.webhooks,
                    SecretBox.load_or_create(Path(config.data_dir)),
                    SystemClock(),
                    config.webhook_allow_private,
                    platform.get_project,
                )
                data, text = _work(service, args)
            finally:
                asyncio.run(store.close())
        finally:
            platform.close()
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


def add_webhook_commands(sub: Any, add_options: AddOptions, config_from: ConfigFrom) -> None:
    webhook = sub.add_parser("webhook", help="manage a project's webhooks")
    webhook_sub = webhook.add_subparsers(dest="webhook_command", required=True)
    helps = {
        "list": "the project's webhooks",
        "create": "add a webhook (prints its secret, shown only now)",
        "update": "change a webhook",
        "delete": "delete a webhook with its outbox and request log",
        "rotate-secret": "a new secret (prints it, shown only now)",
        "requests": "the webhook's latest requests, newest first",
        "resend": "send a logged request's body again",
    }
    types = ", ".join(WEBHOOK_EVENT_TYPES)
    for name, text in helps.items():
        command = webhook_sub.add_parser(name, help=text)
        command.add_argument("--project", default="default")
        command.add_argument("--json", action="store_true", help="print one JSON object")
        more: tuple[str, ...] = ()
        if name != "list" and name != "create":
            command.add_argument("id", metavar="ID", help="the webhook's id")
        if name in ("create", "update"):
            command.add_argument("--url", required=name == "create")
            command.add_argument(
                "--type", action="append", required=name == "create", help=f"one of: {types}"
            )
            command.add_argument("--description")
            more = ("webhook_allow_private",)
        if name == "create":
            command.add_argument("--include-headers", action="store_true")
            command.add_argument("--disabled", action="store_true", help="create it disabled")
        if name == "update":
            command.add_argument(
                "--include-headers", action=argparse.BooleanOptionalAction, default=None
            )
            switch = command.add_mutually_exclusive_group()
            switch.add_argument("--enable", dest="enabled", action="store_const", const=True)
            switch.add_argument("--disable", dest="enabled", action="store_const", const=False)
        if name == "requests":
            command.add_argument("--limit", type=int, default=50)
        if name == "resend":
            command.add_argument("request", type=int, metavar="REQUEST", help="a request's id")
        add_options(command, more)
        command.set_defaults(func=lambda args: _run(args, config_from))
