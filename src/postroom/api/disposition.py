"""Content-Disposition for downloads (RFC 6266), with any file name.

A header value must be ASCII (Latin-1 at most, and clients differ on that), so a name outside
ASCII goes out twice: `filename="..."`, an ASCII stand-in for old clients, and
`filename*=UTF-8''...`, the exact name percent-encoded (RFC 8187, formerly RFC 5987), which
every current browser and HTTP library prefers.
"""

from __future__ import annotations

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
