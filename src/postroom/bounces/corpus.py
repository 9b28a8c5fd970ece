"""Agreement with a labelled corpus of bounces (`expected.tsv`: file, index of the recipient in
the file, status, reply code, reason, hard bounce, feedback type), per column.

Used by `bench/bounce_corpus.py` (prints the figures) and by the test that holds the accuracy
targets. `status` counts the rows where the expected code is a real one separately from those
where it is a pseudo code (`x.0.9yy`, made from the reason when the report gives no code).
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from postroom.bounces.model import Report
from postroom.bounces.parse import parse_report

COLUMNS = ("status", "replycode", "reason", "hardbounce", "feedbacktype")


@dataclass
class Scores:
    rows: int = 0
    found: int = 0  # rows whose recipient the parser found
    agree: Counter[str] = field(default_factory=Counter)
    real_status_rows: int = 0
    real_status_agree: int = 0
    disagreements: list[str] = field(default_factory=list)
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)

    def share(self, column: str) -> float:
        return self.agree[column] / self.rows if self.rows else 0.0

    @property
    def found_share(self) -> float:
        return self.found / self.rows if self.rows else 0.0

    @property
    def real_status_share(self) -> float:
        return self.real_status_agree / self.real_status_rows if self.real_status_rows else 0.0


def read_expected(directory: Path) -> list[dict[str, str]]:
    with (directory / "expected.tsv").open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def half(rows: list[dict[str, str]], which: str) -> list[dict[str, str]]:
    """Every other message file, sorted by name: `dev` the 1st, 3rd...; `holdout` the rest."""
    names = sorted({row["file"] for row in rows})
    keep = set(names[0 if which == "dev" else 1 :: 2])
    return [row for row in rows if row["file"] in keep]


def score(directory: Path, rows: list[dict[str, str]]) -> Scores:
    reports: dict[str, Report | None] = {}
    scores = Scores()
    for row in rows:
        name = row["file"]
        if name not in reports:
            reports[name] = parse_report((directory / name).read_bytes())
        report = reports[name]
        index = int(row["index"]) - 1
        scores.rows += 1
        real = ".0.9" not in row["status"]
        scores.real_status_rows += real
        if report is None or index >= len(report.recipients):
            scores.disagreements.append(f"missing  {name} #{index + 1}: expected {row['reason']}")
            continue
        scores.found += 1
        found = report.recipients[index]
        got = {
            "status": found.status,
            "replycode": found.reply_code,
            "reason": found.reason,
            "hardbounce": str(found.hard).lower(),
            "feedbacktype": found.feedback_type,
        }
        for column in COLUMNS:
            scores.agree[column] += got[column] == row[column]
        scores.real_status_agree += real and got["status"] == row["status"]
        if got["reason"] != row["reason"]:
            scores.confusion[(row["reason"], got["reason"])] += 1
            scores.disagreements.append(
                f"reason   {name} #{index + 1}: expected {row['reason']}, got "
                f"{got['reason']} ({found.status}) {found.diagnostic[:100]!r}"
            )
    return scores
