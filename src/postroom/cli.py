"""Command line: `postroom serve|send|ingest|version`, the platform commands
(`project|credential|ipcredential|apikey|domain|address|admin`, see platform/commands.py) and
`postroom queue` (queue_commands.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import mailbox
import signal
import ssl
import sys
from collections.abc import Iterator, Sequence
from dataclasses import fields
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from postroom import __version__
from postroom.bounces.output import report_json
from postroom.bounces.parse import parse_report
from postroom.config import HELP, Config, load_config
from postroom.core.errors import PostroomError
from postroom.fulltext_commands import add_fulltext_commands
from postroom.platform.commands import add_commands
from postroom.queue_commands import add_queue_commands
from postroom.suppression.commands import add_suppression_commands
from postroom.webhook_commands import add_webhook_commands

LOG_FIELDS = ("session", "smtp", "http", "path", "client", "user", "request")
# seconds a thread waiting for the GIL lets the holder run on (`serve`: see cmd_serve)
SWITCH_INTERVAL = 0.001


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in LOG_FIELDS:
            if key in record.__dict__:
                out[key] = record.__dict__[key]
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        for key in LOG_FIELDS:
            value = record.__dict__.get(key)
            if isinstance(value, dict):
                line += " " + " ".join(f"{k}={v}" for k, v in value.items())
            elif value is not None:
                line += f" {key}={value}"
        return line


def setup_logging(config: Config) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("postroom")
    root.handlers[:] = [handler]
    root.setLevel(config.log_level.upper())
    root.propagate = False


# Options given once per value (`--capture-route A --capture-route B`).
REPEATABLE = frozenset({"capture_route"})

# What the commands other than `serve` read of the configuration: where the data is.
STORAGE_OPTIONS = ("data_dir", "database_url")


def _shown(default: object) -> str:
    """An option's default as its help shows it (a list comma-separated; none when empty)."""
    if isinstance(default, tuple):
        return ",".join(str(item) for item in default) or "none"
    return str(default or "none")


def _add_config_options(
    parser: argparse.ArgumentParser, names: Sequence[str] | None = None
) -> None:
    """`--config` and the options `names` (default: every option, as `serve` takes them).

    For any other command they go in their own group, listed after the command's own options
    (add them last): such a command uses only these few of the server's options."""
    target: argparse.ArgumentParser | argparse._ArgumentGroup = parser
    config_help = "TOML file with options (keys as below, e.g. smtp = ...)"
    if names is not None:
        target = parser.add_argument_group(
            "configuration",
            "Read as `postroom serve` reads them: these flags, POSTROOM_* environment "
            "variables, the --config file.",
        )
        config_help = "TOML file with options (serve's keys, e.g. data_dir = ...)"
    target.add_argument("--config", help=config_help)
    for f in fields(Config):
        if names is not None and f.name not in names:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        if f.name in REPEATABLE:
            target.add_argument(
                flag,
                dest=f.name,
                action="append",
                default=None,
                metavar=f.name.upper(),
                help=f"{HELP[f.name]} (default: {_shown(default)})".replace("%", "%%"),
            )
        elif isinstance(default, bool):
            target.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{HELP[f.name]} (default: {default})".replace("%", "%%"),
            )
        else:
            target.add_argument(
                flag,
                dest=f.name,
                default=None,
                metavar=f.name.upper(),
                # argparse formats help with %: a rate such as 5% must be written 5%%.
                help=f"{HELP[f.name]} (default: {_shown(default)})".replace("%", "%%"),
            )


def _config_from(args: argparse.Namespace) -> Config:
    cli = {f.name: getattr(args, f.name, None) for f in fields(Config)}
    return load_config(cli, config_file=args.config or "")


def cmd_serve(args: argparse.Namespace) -> int:
    from postroom.app import Application, loop_factory

    config = _config_from(args)
    setup_logging(config)
    app = Application(config)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await app.run(stop)

    # The event loop thread gives up the GIL at every call that blocks (a socket send to the
    # writer process, a SQLite statement) and then waits for it while a worker thread (a
    # delivery transaction, a DKIM signature's Python half) runs on: up to the switch
    # interval, 5 ms by default, with every session's next step waiting behind it. 1 ms
    # bounds that wait; measured end to end (bench/delivery_e2e.py, CHANGELOG) it raised the
    # rate and lowered the CPU per message.
    sys.setswitchinterval(SWITCH_INTERVAL)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main())
    return 0


def _read_messages(paths: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    for name in paths:
        path = Path(name)
        if path.is_dir() and (path / "cur").is_dir():
            box = mailbox.Maildir(str(path), create=False)
            for key in box.iterkeys():
                yield f"{path}:{key}", box.get_bytes(key)
        elif path.is_dir():
            for child in sorted(path.rglob("*.eml")):
                yield str(child), child.read_bytes()
        elif path.is_file() and path.read_bytes()[:5] == b"From ":
            mbox = mailbox.mbox(str(path), create=False)
            for key in mbox.iterkeys():
                yield f"{path}:{key}", mbox.get_bytes(key)
        elif path.is_file():
            yield str(path), path.read_bytes()
        else:
            raise PostroomError(f"{name}: no such file or directory")


def cmd_ingest(args: argparse.Namespace) -> int:
    from postroom.app import loop_factory
    from postroom.core.clock import SystemClock
    from postroom.doors.ingest import IngestDoor
    from postroom.events.bus import EventBus
    from postroom.metrics import Metrics
    from postroom.pipeline.acceptance import AcceptancePipeline
    from postroom.pipeline.complete import complete_message
    from postroom.storage.engine import open_store

    config = _config_from(args)
    setup_logging(config)
    clock = SystemClock()

    async def main() -> int:
        store = await asyncio.to_thread(
            open_store,
            config,
            clock,
            writer_process=config.writer_process,
            complete=complete_message,
        )
        door = IngestDoor(AcceptancePipeline(store, clock, EventBus(), Metrics()), config.hostname)
        count = 0
        try:
            for source, raw in _read_messages(args.paths):
                await door.ingest(raw)
                count += 1
                if args.verbose:
                    print(f"imported {source}")
        finally:
            await store.close()
        print(f"imported {count} message(s)")
        return 0

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main())


def _crlf(data: bytes) -> bytes:
    """Line endings as SMTP carries them (a file may use bare LF)."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def cmd_send(args: argparse.Namespace) -> int:
    host, _, port_text = args.server.rpartition(":")
    if not host or not port_text.isdigit():
        raise PostroomError(f"--server: expected HOST:PORT, got {args.server!r}")
    port = int(port_text)
    if args.file:
        data = Path(args.file).read_bytes()
        if not args.to:
            raise PostroomError("--to is required when sending a file")
        sender = args.sender or ""
    else:
        if not args.to:
            raise PostroomError("--to is required")
        msg = EmailMessage()
        msg["From"] = args.sender or "postroom@localhost"
        msg["To"] = ", ".join(args.to)
        msg["Subject"] = args.subject
        msg["Date"] = format_datetime(datetime.now().astimezone())
        msg["Message-ID"] = make_msgid(domain="postroom.localhost")
        msg.set_content(args.body)
        data = msg.as_bytes()
        sender = args.sender or "postroom@localhost"
    return asyncio.run(_send(args, host, port, sender, data))


async def _send(args: argparse.Namespace, host: str, port: int, sender: str, data: bytes) -> int:
    from postroom.smtp.client import SmtpClientError, connect
    from postroom.smtp.client_protocol import ClientPolicy, OutboundMessage, OutboundRecipient

    context = ssl.create_default_context()
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    timeout = float(args.timeout)
    policy = ClientPolicy(
        "postroom.localhost",
        tls="required" if args.tls == "starttls" else "none",
        username=args.user,
        password=(args.password or "") if args.user else None,
        auth_without_tls=True,  # --tls none with --user is the user's explicit choice
        greeting_timeout=timeout,
        command_timeout=timeout,
        data_start_timeout=timeout,
        data_end_timeout=timeout,
    )
    message = OutboundMessage(
        sender,
        tuple(OutboundRecipient(address) for address in args.to),
        _crlf(data),
        smtputf8=not (sender + "".join(args.to)).isascii(),
    )
    try:
        client = await connect(
            host,
            port,
            policy,
            ssl_context=context,
            implicit_tls=args.tls == "implicit",
            connect_timeout=timeout,
        )
    except SmtpClientError as exc:
        print(f"postroom: {host}:{port}: {exc}", file=sys.stderr)
        return 1
    try:
        result = await client.send(message)
    finally:
        await client.quit()
    refused = [f"{r.address}: {r.reply}" for r in result.recipients if not r.delivered]
    if refused:
        print("refused recipients:\n  " + "\n  ".join(refused), file=sys.stderr)
        return 1
    print(f"sent to {', '.join(args.to)} via {host}:{port}")
    return 0


def cmd_bounce_parse(args: argparse.Namespace) -> int:
    """One JSON object per file, one per line; a file that cannot be read is reported on
    stderr and makes the exit status 1, the others are still printed."""
    failed = 0
    for name in args.files:
        try:
            raw = Path(name).read_bytes()
        except OSError as exc:
            print(f"postroom: {name}: {exc.strerror or exc}", file=sys.stderr)
            failed = 1
            continue
        print(json.dumps(report_json(name, parse_report(raw)), ensure_ascii=False))
    return failed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="postroom", description="Capture mail for testing; send it for real."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the SMTP and HTTP listeners")
    _add_config_options(serve)
    serve.set_defaults(func=cmd_serve)

    ingest = sub.add_parser("ingest", help="import .eml files, Maildir folders or mbox files")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("-v", "--verbose", action="store_true", help="print each file imported")
    _add_config_options(
        ingest, (*STORAGE_OPTIONS, "writer_process", "hostname", "log_level", "log_format")
    )
    ingest.set_defaults(func=cmd_ingest)

    send = sub.add_parser("send", help="send an .eml file or a quick message to an SMTP server")
    send.add_argument("file", nargs="?", help=".eml file to send (else a quick text message)")
    send.add_argument(
        "--server", default="127.0.0.1:1025", help="HOST:PORT (default 127.0.0.1:1025)"
    )
    send.add_argument(
        "--from", dest="sender", help="envelope sender (and From: of a quick message)"
    )
    send.add_argument("--to", action="append", default=[], help="recipient (repeatable)")
    send.add_argument("--subject", default="Test from postroom send")
    send.add_argument("--body", default="This is a test message sent by postroom send.\n")
    send.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    send.add_argument(
        "--insecure", action="store_true", help="do not verify the server certificate"
    )
    send.add_argument("--user", help="AUTH username")
    send.add_argument("--password", help="AUTH password")
    send.add_argument("--timeout", type=float, default=30.0)
    send.set_defaults(func=cmd_send)

    add_commands(
        sub,
        lambda parser, more: _add_config_options(parser, (*STORAGE_OPTIONS, *more)),
        _config_from,
    )

    add_queue_commands(
        sub,
        lambda parser, more: _add_config_options(parser, (*STORAGE_OPTIONS, *more)),
        _config_from,
    )

    add_suppression_commands(
        sub,
        lambda parser, more: _add_config_options(parser, (*STORAGE_OPTIONS, *more)),
        _config_from,
    )

    add_webhook_commands(
        sub,
        lambda parser, more: _add_config_options(parser, (*STORAGE_OPTIONS, *more)),
        _config_from,
    )

    add_fulltext_commands(
        sub,
        lambda parser, more: _add_config_options(parser, (*STORAGE_OPTIONS, *more)),
        _config_from,
    )

    bounce = sub.add_parser("bounce", help="read bounces and complaints")
    bounce_sub = bounce.add_subparsers(dest="bounce_command", required=True)
    bounce_parse = bounce_sub.add_parser(
        "parse",
        help="print one JSON line per file: its kind and each recipient's status, reply code, "
        "reason, hard or soft, feedback type",
    )
    bounce_parse.add_argument("files", nargs="+", metavar="FILE", help=".eml files")
    bounce_parse.set_defaults(func=cmd_bounce_parse)

    version = sub.add_parser("version", help="print the version")
    version.set_defaults(func=lambda args: print(f"postroom {__version__}") or 0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except PostroomError as exc:
        print(f"postroom: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"postroom: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
