"""HTML to plain text with the standard library's HTML parser (for snippets, search, .txt views)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Content that is never shown as text.
_HIDDEN = frozenset({"script", "style", "title", "template", "svg"})
# Elements that start a new line of text.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
        "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table",
        "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0\u200b]+")
_BLANK_LINES = re.compile(r"\n{3,}")


_LINK_SCHEMES = ("http://", "https://", "mailto:")


class _Extractor(HTMLParser):
    def __init__(self, links: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.hidden = 0
        self.size = 0
        self.links = links
        self.open_link: tuple[str, int] | None = None  # href, index of its first chunk

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "body":
            self.hidden = 0  # an unclosed <title> or <style> must not hide the whole body
        elif tag in _BLOCKS:
            self.chunks.append("\n")
        elif tag == "a" and self.links:
            href = (dict(attrs).get("href") or "").strip()
            if href.lower().startswith(_LINK_SCHEMES):
                self.open_link = (href, len(self.chunks))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.open_link is not None:
            href, first = self.open_link
            self.open_link = None
            shown = "".join(self.chunks[first:])
            target = href[7:] if href.lower().startswith("mailto:") else href
            if target not in shown and not self.hidden:
                self.chunks.append(f" ( {href} )")
        if tag in _HIDDEN:
            if self.hidden:
                self.hidden -= 1
        elif tag in _BLOCKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.chunks.append(data)
            self.size += len(data)


_FEED_CHUNK = 16 * 1024


def html_to_text(html: str, limit: int | None = None, *, links: bool = False) -> str:
    """Readable text of an HTML document: scripts and styles dropped, entities decoded,
    whitespace collapsed within lines, one line per block element, at most one blank line.
    With `links`, a link's address follows its text as ` ( URL )` (http, https and mailto
    links whose text does not already show it), as Mailpit's text of an HTML-only message.

    With `limit`, parsing stops soon after about that many characters of text were found
    (snippets and search text need only the start). Never raises: on a parser failure the
    text read so far is returned.
    """
    if not html:
        return ""
    parser = _Extractor(links)
    try:
        for start in range(0, len(html), _FEED_CHUNK):
            parser.feed(html[start : start + _FEED_CHUNK])
            if limit is not None and parser.size >= limit:
                break
        parser.close()
    except Exception:  # html.parser has had assertion failures on hostile markup
        pass
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(parser.chunks).split("\n"))
    text = "\n".join(lines)
    return _BLANK_LINES.sub("\n\n", text).strip()
