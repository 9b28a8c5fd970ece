"""`postroom bounce parse FILE...`: one JSON object per file, one per line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from postroom.cli import main
from tests.unit.bounces.test_parse import ARF, DSN, QMAIL, VACATION


def run(capsys: pytest.CaptureFixture[str], *files: Path) -> tuple[int, list[dict[str, object]]]:
    code = main(["bounce", "parse", *map(str, files)])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines()]


def test_one_line_per_file_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = []
    for name, raw in (
        ("dsn.eml", DSN),
        ("arf.eml", ARF),
        ("qmail.eml", QMAIL),
        ("vacation.eml", VACATION),
        ("plain.eml", b"From: a@example.com\r\nSubject: hi\r\n\r\nJust mail.\r\n"),
    ):
        (tmp_path / name).write_bytes(raw)
        files.append(tmp_path / name)
    code, lines = run(capsys, *files)
    assert code == 0
    assert [line["file"] for line in lines] == [str(f) for f in files]
    assert [line["kind"] for line in lines] == [
        "bounce",
        "complaint",
        "bounce",
        "autoreply",
        "none",
    ]
    assert lines[0]["recipients"] == [
        {
            "address": "gone@example.net",
            "status": "5.1.1",
            "reply_code": "550",
            "reason": "userunknown",
            "hard_bounce": True,
            "feedback_type": None,
        },
        {
            "address": "full@example.net",
            "status": "4.2.2",
            "reply_code": "452",
            "reason": "mailboxfull",
            "hard_bounce": False,
            "feedback_type": None,
        },
    ]
    complaint = lines[1]["recipients"]
    assert isinstance(complaint, list)
    assert complaint[0]["reason"] == "feedback" and complaint[0]["feedback_type"] == "abuse"
    assert lines[4]["recipients"] == []


def test_unreadable_file_is_reported_and_the_rest_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "dsn.eml"
    good.write_bytes(DSN)
    code = main(["bounce", "parse", str(tmp_path / "missing.eml"), str(good)])
    captured = capsys.readouterr()
    assert code == 1
    assert "missing.eml" in captured.err
    (line,) = captured.out.splitlines()
    assert json.loads(line)["file"] == str(good)


def test_binary_garbage_is_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.eml"
    junk.write_bytes(bytes(range(256)) * 4)
    code, lines = run(capsys, junk)
    assert code == 0 and lines[0]["kind"] == "none"
