"""The HTML check on fixtures with known features: what is found, on which line, the scores
computed from the support table, and the table's own format errors."""

from __future__ import annotations

import email
from email.message import Message
from pathlib import Path

import pytest

from postroom.checks import html_check as module
from postroom.checks.html_check import html_check
from postroom.checks.html_support import parse_table, shipped_table
from postroom.core.errors import ConfigError

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "html-check.eml"


def fixture_html() -> str:
    message: Message = email.message_from_bytes(FIXTURE.read_bytes())
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_fixture_features_and_their_lines() -> None:
    result = html_check(fixture_html(), shipped_table())
    lines = {w["Slug"]: w["Lines"] for w in result["Warnings"]}
    assert lines == {
        "html-style": [2],
        "css-at-font-face": [3],
        "css-display-grid": [4],
        "css-box-shadow": [4],
        "css-at-media": [5],
        "css-width": [5],
        "css-pseudo-class-hover": [6],
        "css-border-radius": [8],
        "css-position": [8],
        "html-svg": [9],
        "html-video": [10],
        "image-webp": [11],
    }
    assert result["Total"]["Nodes"] == 9  # html head style body div svg video img p
    assert result["Total"]["Tests"] == len(shipped_table().features)
    assert result["Truncated"] is False


def test_scores_follow_the_table() -> None:
    table = shipped_table()
    result = html_check(fixture_html(), table)
    video = next(w for w in result["Warnings"] if w["Slug"] == "html-video")
    supported = [
        r["Family"] + " " + r["Platform"] for r in video["Results"] if r["Support"] == "yes"
    ]
    assert supported == [
        "Apple Mail macos",
        "Apple Mail ios",
        "Outlook macos",
        "Samsung Email android",
        "Mozilla Thunderbird macos",
    ]
    assert len(video["Results"]) == len(table.clients)
    assert video["Score"] == {
        "Found": 1,
        "Supported": round(100 * 5 / 18, 2),
        "Partial": 0.0,
        "Unsupported": round(100 * 13 / 18, 2),
    }
    # The clients that support every feature found are exactly those five.
    assert result["Total"]["Supported"] == round(100 * 5 / 18, 2)
    assert result["Total"]["Partial"] == 0.0
    assert result["Total"]["Unsupported"] == round(100 * 13 / 18, 2)
    # A partial result names its note, and the note's text comes with the warning.
    media = next(w for w in result["Warnings"] if w["Slug"] == "css-at-media")
    numbers = {r["NoteNumber"] for r in media["Results"] if r["Support"] == "partial"}
    assert numbers == {"1", "2"} and set(media["NotesByNumber"]) == numbers
    assert media["URL"].endswith("/css-at-media/")
    # Least supported first.
    scores = [w["Score"]["Supported"] for w in result["Warnings"]]
    assert scores == sorted(scores)
    assert result["Platforms"]["android"] == ["Gmail", "Outlook", "Yahoo! Mail", "Samsung Email"]


def test_plain_tables_have_no_warnings() -> None:
    result = html_check(
        '<table width="600"><tr><td bgcolor="#fff" style="color: #333; font-size: 14px">'
        "Hello</td></tr></table><!-- display: grid --><p>a:hover {display: grid}</p>",
        shipped_table(),
    )
    assert result["Warnings"] == []
    assert result["Total"]["Supported"] == 100.0
    assert result["Total"]["Nodes"] == 4


def test_partial_support_makes_the_total_partial() -> None:
    result = html_check('<p style="margin: 0 auto">x</p>', shipped_table())
    assert [w["Slug"] for w in result["Warnings"]] == ["css-margin"]
    assert result["Total"]["Partial"] == round(100 / 18, 2)  # Outlook on Windows
    assert result["Total"]["Unsupported"] == 0.0


def test_css_comments_variables_and_unclosed_style() -> None:
    result = html_check(
        "<style>/* .x { display: grid } */\n.y { color: var(--brand) }\n"
        ".z:focus { transform: rotate(1deg) }",
        shipped_table(),
    )
    lines = {w["Slug"]: w["Lines"] for w in result["Warnings"]}
    assert "css-display-grid" not in lines
    assert lines["css-variables"] == [2]
    assert lines["css-pseudo-class-focus"] == [3]
    assert lines["css-transform"] == [3]


def test_long_html_is_checked_up_to_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "MAX_HTML", 100)
    html = "<p>" + "x" * 200 + "</p><svg></svg>"
    result = html_check(html, shipped_table())
    assert result["Truncated"] is True
    assert result["Warnings"] == []  # the <svg> is past the bound


TABLE = """
client a.web | A | web | 1
client b.ios | B | ios | 2
feature f | css | F | prop f | y p1 | f
note f | 1 | half
"""


def test_table_format_errors_name_the_problem() -> None:
    table = parse_table(TABLE)
    assert [c.name for c in table.clients] == ["A web 1", "B ios 2"]
    assert table.features[0].notes == {"1": "half"}
    cases = {
        TABLE.replace("y p1", "y"): "has 1 support values for 2 clients",
        TABLE.replace("p1", "p2"): "refers to note 2, not given",
        TABLE.replace("prop f", "colour f"): "line 4: unknown detection 'colour f'",
        TABLE.replace("y p1", "y q"): "bad support value 'q'",
        TABLE + "note g | 1 | x\n": "notes of unknown features: g",
        TABLE + "something else\n": "line 6: expected a client, feature or note row",
        "# nothing\n": "no clients",
    }
    for text, expected in cases.items():
        with pytest.raises(ConfigError) as raised:
            parse_table(text, "t.txt")
        assert expected in str(raised.value), text


def test_html_check_data_option_is_checked_at_start(tmp_path: Path) -> None:
    from postroom.config import load_config

    good = tmp_path / "good.txt"
    good.write_text(TABLE)
    assert load_config({"html_check_data": str(good)}, {}).html_check_data == str(good)
    bad = tmp_path / "bad.txt"
    bad.write_text(TABLE.replace("y p1", "y"))
    with pytest.raises(ConfigError, match="feature f has 1 support values for 2 clients"):
        load_config({"html_check_data": str(bad)}, {})
    with pytest.raises(ConfigError, match="--html-check-data: cannot read"):
        load_config({"html_check_data": str(tmp_path / "missing.txt")}, {})
