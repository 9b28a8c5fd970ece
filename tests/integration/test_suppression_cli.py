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


def test_export_is_safe_for_spreadsheets_and_reimports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    for project in ("acme", "copy"):
        assert main(["project", "create", project, *data]) == 0
    capsys.readouterr()
    code, _ = run(
        capsys, "suppression", "add", "=cmd@example.com", "--project", "acme",
        "--detail", "=HYPERLINK(\"http://x.example\")", *data,
    )  # fmt: skip
    assert code == 0
    code, out = run(capsys, "suppression", "export", "--project", "acme", *data)
    row = out.splitlines()[1]
    assert row.startswith("'=cmd@example.com,manual,") and ",\"'=HYPERLINK(" in row
    exported = tmp_path / "export.csv"
    exported.write_text(out, encoding="utf-8")
    assert run(capsys, "suppression", "import", str(exported), "--project", "copy", *data)[0] == 0
    code, out = run(capsys, "suppression", "list", "--project", "copy", "--json", *data)
    (entry,) = json.loads(out)["suppressions"]
    assert entry["address"] == "=cmd@example.com" and entry["detail"].startswith("=HYPERLINK(")


def test_a_deleted_projects_list_goes_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    assert main(["project", "create", "acme", *data]) == 0
    assert main(["suppression", "add", "x@example.org", "--project", "acme", *data]) == 0
    assert main(["project", "delete", "acme", "--yes", *data]) == 0
    assert main(["project", "create", "acme", *data]) == 0  # a new project, the same id
    capsys.readouterr()
    code, out = run(capsys, "suppression", "list", "--project", "acme", "--json", *data)
    assert code == 0 and json.loads(out)["suppressions"] == []
