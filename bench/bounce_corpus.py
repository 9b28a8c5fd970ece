"""How well `postroom.bounces.parse_report` reads the shared bounce corpus, and how fast.

Reads `../shared/corpora/bounces/` (real bounces and complaints with the results a dedicated
classifier, sisimai, gives in `expected.tsv`) and prints, per column, how many rows agree. The
status column is also counted on the rows whose expected code is a real one (not sisimai's
pseudo code `x.0.9yy`, made from the reason when the report gives no code).

    .venv/bin/python bench/bounce_corpus.py [-v] [--half dev|holdout]

-v lists every row that disagrees. --half keeps every other message file (sorted by name:
`dev` the 1st, 3rd, ...; `holdout` the 2nd, 4th, ...), to check that rules made while looking
at one half hold on the other.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from postroom.bounces.corpus import COLUMNS, half, read_expected, score
from postroom.bounces.parse import parse_report

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "bounces"


def main() -> int:
    if not (CORPUS / "expected.tsv").exists():
        print(f"corpus not found at {CORPUS}")
        return 1
    rows = read_expected(CORPUS)
    if "--half" in sys.argv:
        rows = half(rows, sys.argv[sys.argv.index("--half") + 1])
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
    scores = score(CORPUS, rows)
    if "-v" in sys.argv:
        print("\n".join(scores.disagreements))
    messages = len({row["file"] for row in rows})
    print(
        f"{messages} messages, {scores.rows} recipient rows; recipient found: "
        f"{scores.found}/{scores.rows} = {scores.found_share:.1%}"
    )
    for column in COLUMNS:
        print(f"  {column:13} {scores.agree[column]:4}/{scores.rows} = {scores.share(column):6.1%}")
    print(
        f"  status on the {scores.real_status_rows} rows with a real code (not a pseudo code): "
        f"{scores.real_status_agree}/{scores.real_status_rows} = {scores.real_status_share:.1%}"
    )
    print("most frequent disagreements (expected -> got):")
    for (expected, got), count in scores.confusion.most_common(8):
        print(f"  {count:3}  {expected} -> {got}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
