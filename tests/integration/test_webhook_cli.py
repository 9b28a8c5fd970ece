"""`postroom webhook ...` through the real entry point, on a SQLite data directory: create
(the secret printed once, sealed on disk), list, update, rotate, requests, resend, delete;
errors as JSON naming the field; another project's webhook is not found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from postroom.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main(list(args))
    return code, json.loads(capsys.readouterr().out)


def test_webhooks_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    for project in ("acme", "other"):
        assert main(["project", "create", project, *data]) == 0
    capsys.readouterr()
    code, made = run(
        capsys, "webhook", "create", "--project", "acme", "--url", "https://hooks.example.com/in",
        "--type", "bounce,complaint", "--type", "send", "--json", *data,
    )  # fmt: skip
    assert code == 0 and made["types"] == ["bounce", "complaint", "send"]
    secret = str(made["secret"])
    assert secret.startswith("whsec_")
    db = (tmp_path / "data" / "postroom.db").read_bytes()
    assert secret.encode() not in db  # stored sealed
    assert (tmp_path / "data" / "sealing.key").exists()
    hook = str(made["id"])

    code, listed = run(capsys, "webhook", "list", "--project", "acme", "--json", *data)
    assert code == 0 and [h["id"] for h in listed["webhooks"]] == [hook]  # type: ignore[attr-defined]
    assert secret not in json.dumps(listed)
    code, changed = run(
        capsys, "webhook", "update", hook, "--project", "acme", "--disable",
        "--include-headers", "--json", *data,
    )  # fmt: skip
    assert code == 0 and changed["enabled"] is False and changed["include_headers"] is True
    code, rotated = run(
        capsys, "webhook", "rotate-secret", hook, "--project", "acme", "--json", *data
    )
    assert code == 0 and rotated["secret"] != secret
    code, requests = run(capsys, "webhook", "requests", hook, "--project", "acme", "--json", *data)
    assert code == 0 and requests["requests"] == []

    code, error = run(
        capsys, "webhook", "create", "--project", "acme", "--url", "http://127.0.0.1/x",
        "--type", "send", "--json", *data,
    )  # fmt: skip
    assert code == 2 and error["Field"] == "url"
    code, made_local = run(
        capsys, "webhook", "create", "--project", "acme", "--url", "http://127.0.0.1/x",
        "--type", "send", "--webhook-allow-private", "--json", *data,
    )  # fmt: skip
    assert code == 0 and made_local["url"] == "http://127.0.0.1/x"
    code, error = run(
        capsys, "webhook", "create", "--project", "acme", "--url", "https://x.example/",
        "--type", "opened", "--json", *data,
    )  # fmt: skip
    assert code == 2 and error["Field"] == "types"
    for command in (["requests", hook], ["delete", hook], ["rotate-secret", hook]):
        code, error = run(capsys, "webhook", *command, "--project", "other", "--json", *data)
        assert code == 2 and "not found" in str(error["Error"]), command
    code, error = run(capsys, "webhook", "resend", hook, "1", "--project", "acme", "--json", *data)
    assert code == 2 and "not found" in str(error["Error"])
    code, gone = run(capsys, "webhook", "delete", hook, "--project", "acme", "--json", *data)
    assert code == 0 and gone == {"deleted": hook}
