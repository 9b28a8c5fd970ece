"""The HTML check: which HTML and CSS features a message's HTML uses, and how well the mail
clients of the support table (html_support.py) render them, in Mailpit's HTMLCheckResponse shape.

The HTML is read with the standard library's parser; CSS from `style` attributes and `<style>`
blocks with a few regular expressions (at-rules, selectors, declarations), enough to find what
the table names. Every use is counted with its line in the HTML source.

Scores: a feature's Score gives the share of clients supporting it (yes / partial / no); the
Total gives the share of clients that render the whole message: Supported when a client
supports every feature found, Partial when its worst is partial, Unsupported when it lacks at
least one. Only the first MAX_HTML characters are checked (`Truncated` says when more was).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from postroom.checks.html_support import Feature, SupportTable

MAX_HTML = 2 * 1024 * 1024
LINES_SHOWN = 20  # line numbers listed per warning
CANIEMAIL = "https://www.caniemail.com/features/{slug}/"

_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_AT_RULE = re.compile(r"@([a-zA-Z-]+)")
_BLOCK = re.compile(r"([^{};]*)\{([^{}]*)\}")
_DECLARATION = re.compile(r"(--[\w-]+|[a-zA-Z-]+)\s*:\s*([^;]*)")
_PSEUDO = re.compile(r"(?<!:):([a-zA-Z-]+)")
_FUNCTION = re.compile(r"([a-zA-Z-]+)\(")
_DATA_TYPE = re.compile(r"data:image/([a-z0-9.+-]+)", re.IGNORECASE)


@dataclass
class Uses:
    """What a document uses: (kind, name) -> line numbers, in order found."""

    found: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    nodes: int = 0

    def add(self, kind: str, name: str, line: int) -> None:
        self.found[(kind, name.lower())].append(line)


def _newlines_before(text: str, index: int) -> int:
    return text.count("\n", 0, index)


def scan_css(css: str, first_line: int, uses: Uses, *, inline: bool) -> None:
    """Record the at-rules, pseudo-classes, properties, values and functions of `css`
    (a style attribute's declarations when `inline`, else a style sheet)."""
    css = _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), css)
    if inline:
        _declarations(css, 0, css, first_line, uses)
        return
    for match in _AT_RULE.finditer(css):
        uses.add("at", match.group(1), first_line + _newlines_before(css, match.start()))
    for block in _BLOCK.finditer(css):
        prelude = block.group(1)
        if "@" not in prelude:
            for pseudo in _PSEUDO.finditer(prelude):
                line = first_line + _newlines_before(css, block.start(1) + pseudo.start())
                uses.add("pseudo", pseudo.group(1), line)
        _declarations(block.group(2), block.start(2), css, first_line, uses)


def _declarations(text: str, offset: int, css: str, first_line: int, uses: Uses) -> None:
    for decl in _DECLARATION.finditer(text):
        line = first_line + _newlines_before(css, offset + decl.start())
        prop, value = decl.group(1).lower(), decl.group(2).strip().lower()
        if prop.startswith("--"):
            uses.add("custom", "", line)
            continue
        uses.add("prop", prop, line)
        for word in re.split(r"[\s,!]+", value):
            if word:
                uses.add("value", f"{prop}:{word}", line)
        for function in _FUNCTION.finditer(value):
            name = function.group(1)
            if name == "var":
                uses.add("custom", "", line)
            uses.add("func", name, line)


def _image_type(src: str) -> str:
    data = _DATA_TYPE.match(src.strip())
    if data:
        return data.group(1).split("+")[0]
    path = urlsplit(src.strip()).path
    _, dot, extension = path.rpartition(".")
    return extension.lower() if dot else ""


class _Scanner(HTMLParser):
    def __init__(self, uses: Uses) -> None:
        super().__init__(convert_charrefs=True)
        self.uses = uses
        self.style_line = 0  # line of an open <style>, else 0
        self.style_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line = self.getpos()[0]
        self.uses.nodes += 1
        self.uses.add("tag", tag, line)
        for name, value in attrs:
            self.uses.add("attr", f"{tag}:{name}", line)
            self.uses.add("attr", f"*:{name}", line)
            if value is None:
                continue
            if name == "style":
                scan_css(value, line, self.uses, inline=True)
            elif name == "href" and value.strip().startswith("#") and len(value.strip()) > 1:
                self.uses.add("anchor", "", line)
            elif name == "src" and tag == "img":
                kind = _image_type(value)
                if kind:
                    self.uses.add("image", kind, line)
        if tag == "style":
            self.style_line, self.style_text = line, []

    def handle_data(self, data: str) -> None:
        if self.style_line:
            self.style_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self.style_line:
            scan_css("".join(self.style_text), self.style_line, self.uses, inline=False)
            self.style_line = 0

    def close(self) -> None:
        if self.style_line:
            # An unclosed <style> runs to the end of the document (which the standard
            # parser would drop unread).
            self.style_text.append(self.rawdata)
            self.rawdata = ""
            self.handle_endtag("style")
        super().close()


def scan_html(html: str) -> Uses:
    uses = Uses()
    scanner = _Scanner(uses)
    scanner.feed(html)
    scanner.close()
    return uses


def feature_lines(feature: Feature, uses: Uses) -> list[int]:
    detect = feature.detect
    if detect.kind in ("custom", "anchor"):
        keys = [(detect.kind, "")]
    elif detect.kind == "attr":
        keys = [("attr", f"{detect.element}:{name}") for name in detect.names]
    elif detect.kind == "value":
        keys = [("value", f"{detect.element}:{name}") for name in detect.names]
    else:
        keys = [(detect.kind, name) for name in detect.names]
    lines: list[int] = []
    for key in keys:
        lines.extend(uses.found.get(key, ()))
    return sorted(lines)


def _percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def html_check(html: str, table: SupportTable) -> dict[str, Any]:
    """Mailpit's HTMLCheckResponse for `html` (with Postroom's `Lines` per warning and
    `Truncated`)."""
    truncated = len(html) > MAX_HTML
    uses = scan_html(html[:MAX_HTML])
    clients = table.clients
    worst = ["yes"] * len(clients)
    rank = {"yes": 0, "partial": 1, "no": 2}
    warnings: list[dict[str, Any]] = []
    for feature in table.features:
        lines = feature_lines(feature, uses)
        if not lines:
            continue
        words = [s.word for s in feature.support]
        for index, word in enumerate(words):
            if rank[word] > rank[worst[index]]:
                worst[index] = word
        if all(word == "yes" for word in words):
            continue
        notes_used = {s.note for s in feature.support if s.note}
        warnings.append(
            {
                "Slug": feature.slug,
                "Title": feature.title,
                "Description": _description(feature, words),
                "Category": feature.category,
                "Tags": [],
                "Keywords": feature.keywords,
                "URL": CANIEMAIL.format(slug=feature.slug),
                "NotesByNumber": {n: feature.notes[n] for n in sorted(notes_used)},
                "Results": [
                    {
                        "Name": client.name,
                        "Family": client.family,
                        "Platform": client.platform,
                        "Version": client.version,
                        "Support": support.word,
                        "NoteNumber": support.note,
                    }
                    for client, support in zip(clients, feature.support, strict=True)
                ],
                "Score": {
                    "Found": len(lines),
                    "Supported": _percent(words.count("yes"), len(words)),
                    "Partial": _percent(words.count("partial"), len(words)),
                    "Unsupported": _percent(words.count("no"), len(words)),
                },
                "Lines": lines[:LINES_SHOWN],
            }
        )
    # Least supported first, as a tester reads them.
    warnings.sort(key=lambda w: (w["Score"]["Supported"], w["Slug"]))
    platforms: dict[str, list[str]] = {}
    for client in clients:
        families = platforms.setdefault(client.platform, [])
        if client.family not in families:
            families.append(client.family)
    return {
        "Platforms": platforms,
        "Total": {
            "Nodes": uses.nodes,
            "Tests": len(table.features),
            "Supported": _percent(worst.count("yes"), len(clients)),
            "Partial": _percent(worst.count("partial"), len(clients)),
            "Unsupported": _percent(worst.count("no"), len(clients)),
        },
        "Warnings": warnings,
        "Truncated": truncated,
    }


def _description(feature: Feature, words: list[str]) -> str:
    lacking = words.count("no")
    partial = words.count("partial")
    parts = []
    if lacking:
        parts.append(f"not supported by {lacking} of {len(words)} clients")
    if partial:
        parts.append(f"partly supported by {partial}")
    return f"{feature.title}: " + ", ".join(parts) + "."
