"""How well `postroom.bounces.parse_report` reads the shared bounce corpus.

Reads `../shared/corpora/bounces/` (real bounces and complaints with the results a dedicated
classifier, sisimai, gives in `expected.tsv`) and prints, per field, how many rows agree. The
status column counts separately the rows where sisimai reports one of its own pseudo codes
(`x.0.9xx`, made from the reason when the report gives no code).

    .venv/bin/python bench/bounce_corpus.py [-v] [--half dev|holdout]

-v lists every row that disagrees. --half keeps every other message file (sorted by name:
`dev` the 1st, 3rd, ...; `holdout` the 2nd, 4th, ...), to check that rules made while looking
at one half hold on the other.
"""

from __future__ import annotations

import csv
import sys
import time
from collections import Counter
from pathlib import Path

from postroom.bounces.model import Report
from postroom.bounces.parse import parse_report

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "bounces"
FIELDS = ("status", "replycode", "reason", "hardbounce", "feedbacktype")


def main() -> int:
    if not (CORPUS / "expected.tsv").exists():
        print(f"corpus not found at {CORPUS}")
        return 1
    with (CORPUS / "expected.tsv").open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if "--half" in sys.argv:
        half = sys.argv[sys.argv.index("--half") + 1]
        names = sorted({row["file"] for row in rows})
        keep = set(names[0 if half == "dev" else 1 :: 2])
        rows = [row for row in rows if row["file"] in keep]
    reports: dict[str, Report | None] = {}
    agree: Counter[str] = Counter()
    missing = pseudo = 0
    confusion: Counter[tuple[str, str]] = Counter()
    for row in rows:
        name = row["file"]
        if name not in reports:
            reports[name] = parse_report((CORPUS / name).read_bytes())
        report = reports[name]
        index = int(row["index"]) - 1
        pseudo += ".0.9" in row["status"]
        if report is None or index >= len(report.recipients):
            missing += 1
            if "-v" in sys.argv:
                print(f"missing  {name} #{index + 1}: expected {row['reason']}")
            continue
        found = report.recipients[index]
        got = {
            "status": found.status,
            "replycode": found.reply_code,
            "reason": found.reason,
            "hardbounce": str(found.hard).lower(),
            "feedbacktype": found.feedback_type,
        }
        for field in FIELDS:
            agree[field] += got[field] == row[field]
        if ".0.9" not in row["status"]:
            agree["real status"] += got["status"] == row["status"]
        if got["reason"] != row["reason"]:
            confusion[(row["reason"], got["reason"])] += 1
            if "-v" in sys.argv:
                print(
                    f"reason   {name} #{index + 1}: expected {row['reason']}, got "
                    f"{got['reason']} ({found.status}) {found.diagnostic[:100]!r}"
                )
    total = len(rows)
    files = sorted(CORPUS.glob("*.eml"))
    contents = [path.read_bytes() for path in files]
    started = time.process_time()
    for raw in contents:
        parse_report(raw)
    spent = time.process_time() - started
    print(
        f"parse: {len(files)} files in {spent:.2f} s of CPU = "
        f"{spent / len(files) * 100:.2f} s per 100 files"
    )
    print(f"{len(reports)} messages, {total} recipient rows; recipient not found: {missing}")
    for field in FIELDS:
        print(f"  {field:13} {agree[field]:4}/{total} = {agree[field] / total:6.1%}")
    comparable = total - pseudo
    print(
        f"  status without sisimai's {pseudo} pseudo codes: "
        f"{agree['real status']}/{comparable} = {agree['real status'] / comparable:.1%}"
    )
    print("most frequent disagreements (expected -> got):")
    for (expected, got), count in confusion.most_common(8):
        print(f"  {count:3}  {expected} -> {got}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
