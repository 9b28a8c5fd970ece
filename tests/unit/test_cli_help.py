"""Every command but `serve` shows its own options in `--help`, then only the configuration
options it uses (it used to list all of serve's ~35 options first)."""

from __future__ import annotations

import argparse
import re
from dataclasses import fields

import pytest

from postroom.cli import build_parser
from postroom.config import Config

CONFIG_FLAGS = {"--" + f.name.replace("_", "-") for f in fields(Config)} | {"--config"}
STORAGE = {"--config", "--data-dir", "--database-url"}
DNS = {"--hostname", "--resolver"}
INGEST = STORAGE | {"--writer-process", "--hostname", "--log-level", "--log-format"}
# address add and resend queue a verification mail: its sender, links and lifetime
MAIL = {"--hostname", "--http", "--public-url", "--system-sender", "--address-token-lifetime"}


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every leaf command, by its name (`credential create`, `ingest`, ...)."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found[prefix.strip()] = parser
            return
        for name, child in subs[0].choices.items():
            walk(child, f"{prefix} {name}")

    walk(build_parser(), "")
    return found


def help_of(command: str) -> str:
    return commands()[command].format_help()


def flags(text: str) -> set[str]:
    return set(re.findall(r"^\s+(--[a-z][a-z-]*)", text, re.MULTILINE))


def sections(text: str) -> dict[str, str]:
    """Help text by section title (`options`, `configuration`, ...)."""
    parts = re.split(r"^(\S[^\n]*):\n", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


MANAGEMENT = sorted(
    name for name in commands() if name.split()[0] not in ("serve", "send", "version", "bounce")
)


def test_every_management_command_is_covered() -> None:
    groups = {name.split()[0] for name in MANAGEMENT}
    assert groups == {
        "project",
        "credential",
        "ipcredential",
        "apikey",
        "domain",
        "address",
        "admin",
        "ingest",
        "queue",
        "seskey",
        "suppression",
        "events",
        "webhook",
        "fulltext",
    }
    assert len(MANAGEMENT) == 57


@pytest.mark.parametrize("command", MANAGEMENT)
def test_own_options_first_then_only_the_configuration_used(command: str) -> None:
    text = help_of(command)
    parts = sections(text)
    assert list(parts)[-1] == "configuration", text
    own, configuration = flags(parts["options"]), flags(parts["configuration"])
    assert not own & CONFIG_FLAGS, f"{command}: config options among its own: {own}"
    if command == "ingest":
        expected = INGEST
    elif command.startswith("domain "):
        expected = STORAGE | DNS
    elif command in ("address add", "address resend"):
        expected = STORAGE | MAIL
    elif command in ("webhook create", "webhook update"):
        expected = STORAGE | {"--webhook-allow-private"}  # URLs are checked as the server does
    else:
        expected = STORAGE
    if command in ("domain add", "address add"):
        expected = expected | {"--max-identities"}  # the project's maximum of identities
    assert configuration == expected
    assert flags(text) & CONFIG_FLAGS == expected
    usage = text.split("\n\n", 1)[0]
    assert usage.index("--config") > max((usage.index(f) for f in own), default=0), usage


def test_credential_create_help() -> None:
    parts = sections(help_of("credential create"))
    assert flags(parts["options"]) == {
        "--json",
        "--project",
        "--username",
        "--allow-from",
    }
    assert flags(parts["configuration"]) == {"--config", "--data-dir", "--database-url"}


def test_serve_keeps_every_option() -> None:
    assert flags(help_of("serve")) >= CONFIG_FLAGS


def test_the_configuration_options_still_work() -> None:
    args = build_parser().parse_args(
        ["credential", "list", "--project", "acme", "--data-dir", "/tmp/x", "--json"]
    )
    assert (args.project, args.data_dir, args.json) == ("acme", "/tmp/x", True)
    args = build_parser().parse_args(["domain", "verify", "a.example", "--resolver", "127.0.0.1"])
    assert args.resolver == "127.0.0.1"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["credential", "list", "--smtp", "127.0.0.1:25"])
