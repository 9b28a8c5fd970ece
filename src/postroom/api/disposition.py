"""Content-Disposition for downloads (RFC 6266), with any file name.

A header value must be ASCII (Latin-1 at most, and clients differ on that), so a name outside
ASCII goes out twice: `filename="..."`, an ASCII stand-in for old clients, and
`filename*=UTF-8''...`, the exact name percent-encoded (RFC 8187, formerly RFC 5987), which
every current browser and HTTP library prefers.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal
from urllib.parse import quote

# RFC 8187 attr-char beyond ALPHA / DIGIT: what may stand unencoded in `filename*`.
_ATTR_SAFE = "!#$&+-.^_`|~"


def _ascii_fallback(name: str) -> str:
    """`name` in printable ASCII: accents dropped (é -> e), other characters, quotes and
    backslashes as `_`."""
    out = []
    for ch in unicodedata.normalize("NFKD", name):
        if unicodedata.combining(ch):
            continue
        out.append(ch if " " <= ch <= "~" and ch not in '"\\' else "_")
    return "".join(out)


def content_disposition(
    kind: Literal["attachment", "inline"], filename: str, default: str = "part"
) -> str:
    """The Content-Disposition value for serving a file called `filename` (control
    characters dropped; `default` when nothing is left)."""
    name = "".join(ch for ch in filename if ch.isprintable()).strip() or default
    fallback = _ascii_fallback(name)
    value = f'{kind}; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe=_ATTR_SAFE)}"
    return value


# What a browser may show of a message's part in a tab of its own, from Postroom's origin: the
# types it renders without running anything of the sender's (raster images, PDF in the
# browser's viewer, plain text). HTML, SVG (a document that can hold script and links), XML
# and everything else only ever go out as downloads.
SAFE_INLINE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}
)
_CHARSET = re.compile(r"""(?:^|;)\s*charset\s*=\s*"?([A-Za-z0-9._:-]{1,40})"?\s*(?:;|$)""", re.I)


def media_type_of(content_type: str) -> str:
    """The bare media type of a Content-Type value, lower case ("" when there is none)."""
    return content_type.split(";", 1)[0].strip().lower()


def inline_media_type(content_type: str) -> str | None:
    """The Content-Type to show a part inline with, or None when it must be a download. Only
    the safe types, re-written from scratch (so nothing of the sender's header passes but a
    well-formed charset of a text part)."""
    media = media_type_of(content_type)
    if media not in SAFE_INLINE_TYPES:
        return None
    if media == "text/plain":
        found = _CHARSET.search(content_type.split(";", 1)[1] if ";" in content_type else "")
        return f"text/plain; charset={found.group(1) if found else 'utf-8'}"
    return media
