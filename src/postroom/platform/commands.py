"""The platform commands of the command line:

    postroom project|credential|ipcredential|apikey|seskey|domain|address|admin ACTION ...

They open the configured database (`--data-dir`, `--database-url`, `POSTROOM_*`, `--config`)
exactly as `serve` does, so they work while the server runs. With `--json` each prints ONE
JSON object on stdout (an error too: `{"Error": ..., "Field": ...}`, exit status 2);
otherwise a few lines for people. Secrets (SMTP passwords, API key tokens) are printed only
by the command that creates them.

`postroom.cli` calls `add_commands` with its own config option helpers. This module stays
light (the `send` command should not pay for it); what the commands do is in actions.py.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from postroom.config import Config
from postroom.core.errors import PostroomError

Json = dict[str, Any]
# Adds `--config`, the storage options and the further config options named.
AddOptions = Callable[[argparse.ArgumentParser, tuple[str, ...]], None]
ConfigFrom = Callable[[argparse.Namespace], Config]


def _error_json(exc: PostroomError) -> Json:
    out: Json = {"Error": str(exc)}
    field = getattr(exc, "field", None)
    if field:
        out["Field"] = field
    return out


def _runner(action: str, config_from: ConfigFrom) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from postroom.platform import actions
        from postroom.platform.factory import open_platform

        try:
            config = config_from(args)
            args.loaded_config = config  # for commands that need more than the service
            service = open_platform(config)
            try:
                data, text = getattr(actions, action)(service, args)
            finally:
                service.close()
        except PostroomError as exc:
            if args.json:
                print(json.dumps(_error_json(exc)))
                return 2
            raise
        print(json.dumps(data, indent=2) if args.json else text)
        return 0

    return run


def _quota(text: str) -> int | None:
    """CLI quota: a whole number, `0` or `none` for no limit."""
    if text.strip().lower() in ("none", "off", "unlimited", ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number or 'none', got {text!r}"
        ) from None


class _Keep:
    """Default of options that, when absent, leave the value as it is."""

    def __repr__(self) -> str:
        return "unchanged"


KEEP: Any = _Keep()


# -- the parsers ------------------------------------------------------------------------------


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_options: AddOptions,
    config_from: ConfigFrom,
) -> None:
    """Add the platform commands to `postroom`'s subcommands."""
    # Each command's config options are added last: its own options come first in its help.
    configured: list[tuple[argparse.ArgumentParser, tuple[str, ...]]] = []

    def group(name: str, help_text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        parser = sub.add_parser(name, help=help_text)
        return parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def command(
        actions: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        help_text: str,
        action: str,
        project: bool = False,
        config: tuple[str, ...] = (),
    ) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help_text)
        configured.append((parser, config))
        parser.add_argument(
            "--json", action="store_true", help="print one JSON object instead of text"
        )
        if project:
            parser.add_argument(
                "--project", default="default", help="project id (default: default)"
            )
        parser.set_defaults(func=_runner(action, config_from))
        return parser

    def quotas(parser: argparse.ArgumentParser, default: object) -> None:
        parser.add_argument(
            "--daily-quota",
            type=_quota,
            default=default,
            metavar="N",
            help="recipients per rolling 24 h (0 or none: no limit)",
        )
        parser.add_argument(
            "--rate-limit",
            type=_quota,
            default=default,
            metavar="N",
            help="recipients per second (0 or none: no limit)",
        )

    projects = group("project", "create, list, change and delete projects")
    p = command(projects, "create", "create a project", "project_create")
    p.add_argument("id", metavar="ID", help="slug: lower-case letters, digits and '-'")
    p.add_argument("--name", help="display name (default: the id)")
    p.add_argument("--mode", choices=["capture", "live"], default="capture")
    quotas(p, None)
    command(projects, "list", "list projects", "project_list")
    p = command(projects, "show", "a project and its usage", "project_show")
    p.add_argument("id", metavar="ID")
    p = command(projects, "update", "change a project's name, mode or quotas", "project_update")
    p.add_argument("id", metavar="ID")
    p.add_argument("--name")
    p.add_argument("--mode", choices=["capture", "live"])
    quotas(p, KEEP)
    p = command(
        projects,
        "suspend",
        "suspend a project's sending: every door refuses its mail until resumed",
        "project_suspend",
    )
    p.add_argument("id", metavar="ID")
    p.add_argument("--reason", help="why (shown to its senders in the refusal)")
    p = command(projects, "resume", "lift a project's suspension", "project_resume")
    p.add_argument("id", metavar="ID")
    p = command(projects, "delete", "delete a project and all it owns", "project_delete")
    p.add_argument("id", metavar="ID")
    p.add_argument("--yes", action="store_true", help="confirm: its messages go too")
    p = command(projects, "usage", "messages sent in the last 24 h and the quotas", "project_usage")
    p.add_argument("id", metavar="ID")

    creds = group("credential", "SMTP credentials (username and generated password)")
    p = command(
        creds, "create", "create a credential; prints the password once", "credential_create", True
    )
    p.add_argument("--username", help="default: prj-<random>")
    p.add_argument(
        "--allow-from",
        action="append",
        metavar="ADDRESS_OR_DOMAIN",
        help="restrict the senders this credential may use (repeatable)",
    )
    command(creds, "list", "list a project's credentials", "credential_list", True)
    p = command(creds, "delete", "delete a credential", "credential_delete", True)
    p.add_argument("credential", metavar="ID_OR_USERNAME")

    ips = group("ipcredential", "networks allowed to submit without AUTH")
    p = command(ips, "create", "allow a network (CIDR) to send as a project", "ip_create", True)
    p.add_argument("network", metavar="CIDR")
    p = command(ips, "list", "list IP credentials", "ip_list")
    p.add_argument("--project", default=None, help="only this project's")
    p = command(ips, "delete", "delete an IP credential", "ip_delete", True)
    p.add_argument("credential", metavar="ID_OR_CIDR")

    keys = group("apikey", "API keys")
    p = command(keys, "create", "create an API key; prints the token once", "apikey_create", True)
    p.add_argument("--name", required=True, help="what the key is for")
    p.add_argument(
        "--scope",
        action="append",
        choices=["send", "read", "manage"],
        help="repeatable (default: send)",
    )
    command(keys, "list", "list a project's API keys", "apikey_list", True)
    p = command(keys, "delete", "revoke an API key", "apikey_delete", True)
    p.add_argument("key_id", metavar="KEY_ID")

    ses = group("seskey", "access key pairs for the SES-compatible API (--ses)")
    command(ses, "create", "create a key pair; prints the secret once", "seskey_create", True)
    command(ses, "list", "list a project's SES access keys", "seskey_list", True)
    p = command(ses, "delete", "delete an SES access key", "seskey_delete", True)
    p.add_argument("key_id", metavar="ACCESS_KEY_ID")

    domains = group("domain", "sending domains: DNS records, verification, DKIM keys")
    dns = ("hostname", "resolver")  # the records name this server; checks ask this resolver

    def key_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--algorithm", choices=["rsa", "ed25519"], help="generate this kind of key"
        )
        parser.add_argument(
            "--private-key", metavar="FILE", help="use this private key (PEM; - for stdin)"
        )
        parser.add_argument("--selector", help="default: pr<YYYYMMDD>")

    p = command(
        domains,
        "add",
        "add a domain; prints the records to publish",
        "domain_add",
        True,
        (*dns, "max_identities"),
    )
    p.add_argument("domain", metavar="DOMAIN")
    key_options(p)
    p = command(domains, "list", "list domains", "domain_list", config=dns)
    p.add_argument("--project", default=None, help="only this project's")
    for name, help_text, fn in (
        ("records", "the DNS records to publish and their last status", "domain_records"),
        ("show", "same as records", "domain_records"),
        ("verify", "check the DNS records now", "domain_verify"),
        ("delete", "delete a domain and its keys", "domain_delete"),
    ):
        p = command(domains, name, help_text, fn, True, dns)
        p.add_argument("domain", metavar="DOMAIN")
    p = command(domains, "rotate", "make a new pending DKIM key", "domain_rotate", True, dns)
    p.add_argument("domain", metavar="DOMAIN")
    key_options(p)
    p = command(
        domains, "activate", "sign with a published pending key", "domain_activate", True, dns
    )
    p.add_argument("domain", metavar="DOMAIN")
    p.add_argument("selector", metavar="SELECTOR")

    addresses = group("address", "sender addresses (pending until proven by mail)")
    mail = ("hostname", "http", "public_url", "system_sender", "address_token_lifetime")
    p = command(
        addresses,
        "add",
        "add an address, pending: queue a verification mail with a link and a code to it "
        "(the running server's delivery worker sends it)",
        "address_add",
        True,
        (*mail, "max_identities"),
    )
    p.add_argument("address", metavar="ADDRESS")
    p = command(
        addresses,
        "resend",
        "queue a new verification mail to a pending address (the previous link stops working)",
        "address_resend",
        True,
        mail,
    )
    p.add_argument("address", metavar="ADDRESS")
    p = command(
        addresses,
        "confirm",
        "confirm a pending address with the code of its verification mail",
        "address_confirm",
        True,
    )
    p.add_argument("address", metavar="ADDRESS")
    p.add_argument("--code", required=True, help="the code (pva_...) of the verification mail")
    command(addresses, "list", "list a project's addresses and their status", "address_list", True)
    p = command(
        addresses, "delete", "remove an address (pending or verified)", "address_delete", True
    )
    p.add_argument("address", metavar="ADDRESS")

    admins = group("admin", "administrators of the web UI")
    p = command(admins, "create", "create an admin (password prompted)", "admin_create")
    p.add_argument("username", metavar="USERNAME")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    command(admins, "list", "list admins", "admin_list")
    p = command(admins, "delete", "delete an admin", "admin_delete")
    p.add_argument("username", metavar="USERNAME")

    for parser, config in configured:
        add_options(parser, config)
