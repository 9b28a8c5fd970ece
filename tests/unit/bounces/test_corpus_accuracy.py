"""Every sample of the shared bounce corpus is read, and the classifier meets issue 11's
targets on it: recipient found >= 99%, status >= 95% (rows with a real code), hard/soft >= 98%,
reason >= 90%. Figures: bench/bounce_corpus.py."""

from __future__ import annotations

from postroom.bounces.corpus import read_expected, score
from postroom.bounces.parse import parse_report
from tests.services import require_shared


def test_every_sample_parses_and_accuracy_meets_the_targets() -> None:
    corpus = require_shared("corpora/bounces")
    for path in sorted(corpus.glob("*.eml")):
        parse_report(path.read_bytes())  # never raises
    rows = read_expected(corpus)
    assert len(rows) > 300
    scores = score(corpus, rows)
    report = "\n".join(scores.disagreements)
    assert scores.found_share >= 0.99, report
    assert scores.real_status_share >= 0.95, report
    assert scores.share("hardbounce") >= 0.98, report
    assert scores.share("reason") >= 0.90, report
    assert scores.share("feedbacktype") >= 0.99, report
