"""`postroom suppression list|add|remove|import|export` through the real entry point, on a
SQLite data directory: per project and account-wide, CSV in and out, errors as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from postroom.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def test_add_list_import_export_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    assert main(["project", "create", "acme", *data]) == 0
    capsys.readouterr()
    code, out = run(
        capsys, "suppression", "add", "Gone@Example.net", "--project", "acme", "--json", *data
    )
    assert code == 0 and json.loads(out)["reason"] == "manual"
    csv_file = tmp_path / "list.csv"
    csv_file.write_text(
        "Email,Reason,Detail\n"
        "a@example.org,complaint,from the FBL\n"
        "B@example.org,,\n"
        "a@EXAMPLE.org,unsubscribe,again\n",
        encoding="utf-8",
    )
    code, out = run(
        capsys, "suppression", "import", str(csv_file), "--project", "acme",
        "--reason", "bounce", "--json", *data,
    )  # fmt: skip
    assert code == 0 and json.loads(out) == {"imported": 2}
    code, out = run(capsys, "suppression", "list", "--project", "acme", "--json", *data)
    listed = {e["address"]: e["reason"] for e in json.loads(out)["suppressions"]}
    assert listed == {
        "a@EXAMPLE.org": "unsubscribe",
        "B@example.org": "bounce",
        "Gone@Example.net": "manual",
    }
    code, out = run(capsys, "suppression", "export", "--project", "acme", *data)
    lines = out.splitlines()
    assert lines[0] == "address,reason,created,expires,detail"
    assert len(lines) == 4 and lines[1].startswith("a@EXAMPLE.org,unsubscribe,")
    code, out = run(capsys, "suppression", "remove", "gone@example.NET", "--project", "acme", *data)
    assert code == 0 and "removed" in out
    code, out = run(capsys, "suppression", "add", "x@y.example", "--account", "--json", *data)
    assert code == 0 and json.loads(out)["scope"] == "account"
    code, out = run(capsys, "suppression", "list", "--account", "--json", *data)
    assert [e["address"] for e in json.loads(out)["suppressions"]] == ["x@y.example"]


def test_errors_name_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    assert main(["project", "create", "acme", *data]) == 0
    capsys.readouterr()
    code, out = run(
        capsys, "suppression", "add", "not-an-address", "--project", "acme", "--json", *data
    )
    assert code == 2 and json.loads(out)["Field"] == "address"
    bad = tmp_path / "bad.csv"
    bad.write_text("address\nok@example.org\nbroken\n", encoding="utf-8")
    code, out = run(capsys, "suppression", "import", str(bad), "--project", "acme", "--json", *data)
    error = json.loads(out)
    assert code == 2 and error["Field"] == "csv" and error["Error"].startswith("line 3:")
    code, out = run(capsys, "suppression", "list", "--project", "acme", "--json", *data)
    assert json.loads(out)["suppressions"] == []  # all or nothing
    code, out = run(capsys, "suppression", "list", "--project", "nope", "--json", *data)
    assert code == 2 and "nope" in json.loads(out)["Error"]
