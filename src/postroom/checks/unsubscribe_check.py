"""List-Unsubscribe (RFC 2369) and one-click unsubscribe (RFC 8058) as a receiver judges them.

List-Unsubscribe must be one field holding URIs in angle brackets separated by commas, each
https or mailto (http works but is not one-click and mail programs warn about it).
List-Unsubscribe-Post, when present, must be exactly `List-Unsubscribe=One-Click`, needs an
https URI, and both fields must be covered by a DKIM signature that verifies (RFC 8058 §4):
otherwise receivers such as Gmail do not offer one-click.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from postroom.checks.dkim_verify import DkimVerdict
from postroom.checks.findings import Finding
from postroom.mime.decoding import repair, unfold
from postroom.pipeline.headers import HeaderField

__all__ = ["check_unsubscribe"]

ONE_CLICK = "List-Unsubscribe=One-Click"
_ITEM = re.compile(r"\s*<([^<>]*)>\s*")
_SHOWN = 300


def _text(value: bytes) -> str:
    return repair(unfold(value.decode("ascii", "surrogateescape"))).strip()


def _cut(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def _uris(text: str, out: list[Finding]) -> list[str] | None:
    """The URIs of a List-Unsubscribe value, or None (with a finding) when it is malformed."""
    uris: list[str] = []
    position = 0
    while True:
        match = _ITEM.match(text, position)
        if match is None:
            rest = text[position:].strip()
            out.append(
                Finding(
                    "fail",
                    "list-unsubscribe",
                    "List-Unsubscribe",
                    "List-Unsubscribe must be URIs in angle brackets separated by commas "
                    f"(RFC 2369), e.g. <https://…>, <mailto:…>; found {_cut(rest)!r}.",
                )
            )
            return None
        uris.append(match.group(1).strip())
        position = match.end()
        if position >= len(text):
            return uris
        if text[position] != ",":
            out.append(
                Finding(
                    "fail",
                    "list-unsubscribe",
                    "List-Unsubscribe",
                    "List-Unsubscribe URIs must be separated by commas (RFC 2369); found "
                    f"{_cut(text[position:])!r} after <{_cut(uris[-1])}>.",
                )
            )
            return None
        position += 1


def _uri_problem(uri: str) -> str | None:
    if not uri or any(c.isspace() for c in uri):
        return f"<{_cut(uri)}> is empty or contains spaces"
    scheme = uri.split(":", 1)[0].lower()
    if scheme == "mailto":
        address = uri[7:].split("?", 1)[0]
        local, at, domain = address.rpartition("@")
        if not at or not local or "." not in domain.strip("."):
            return f"<{_cut(uri)}> is not a valid mailto: URI"
        return None
    if scheme in ("https", "http"):
        try:
            host = urlsplit(uri).hostname
        except ValueError:
            host = None
        if not host:
            return f"<{_cut(uri)}> is not a valid {scheme} URI"
        return None
    return f"<{_cut(uri)}> is neither https nor mailto"


def check_unsubscribe(
    fields: Sequence[HeaderField], dkim: Sequence[DkimVerdict], out: list[Finding]
) -> None:
    """Append the findings about List-Unsubscribe and List-Unsubscribe-Post to `out`."""
    values = [f.value for f in fields if f.name == "list-unsubscribe"]
    posts = [f.value for f in fields if f.name == "list-unsubscribe-post"]
    if not values:
        if posts:
            out.append(
                Finding(
                    "fail",
                    "list-unsubscribe",
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe-Post is set but there is no List-Unsubscribe header.",
                )
            )
        else:
            out.append(
                Finding(
                    "info",
                    "list-unsubscribe",
                    "List-Unsubscribe",
                    "No List-Unsubscribe header. Gmail and Yahoo require one-click unsubscribe "
                    "(RFC 8058) from bulk senders; one-to-one transactional mail needs none.",
                )
            )
        return
    if len(values) > 1:
        out.append(
            Finding(
                "fail",
                "list-unsubscribe",
                "List-Unsubscribe",
                f"List-Unsubscribe appears {len(values)} times; it must be one header.",
            )
        )
        return
    uris = _uris(_text(values[0]), out)
    if uris is None:
        return
    usable: list[str] = []
    for uri in uris:
        problem = _uri_problem(uri)
        if problem is not None:
            out.append(Finding("fail", "list-unsubscribe", "List-Unsubscribe", problem + "."))
        elif uri.lower().startswith("http:"):
            out.append(
                Finding(
                    "warn",
                    "list-unsubscribe",
                    "List-Unsubscribe",
                    f"<{_cut(uri)}> is plain http: it cannot be one-click (RFC 8058 needs https) "
                    "and mail programs may warn before opening it.",
                )
            )
        else:
            usable.append(uri)
    https = [u for u in usable if u.lower().startswith("https:")]
    if not usable:
        out.append(
            Finding(
                "fail",
                "list-unsubscribe",
                "List-Unsubscribe",
                "List-Unsubscribe has no usable https or mailto URI.",
            )
        )
    if not posts:
        if https:
            out.append(
                Finding(
                    "info",
                    "list-unsubscribe",
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe has an https URI but no List-Unsubscribe-Post: "
                    "List-Unsubscribe=One-Click, so unsubscribing is not one-click (RFC 8058); "
                    "Gmail and Yahoo require one-click from bulk senders.",
                )
            )
        elif usable:
            out.append(
                Finding(
                    "pass",
                    "list-unsubscribe",
                    "List-Unsubscribe",
                    f"List-Unsubscribe offers {', '.join(_cut(u) for u in usable)}.",
                )
            )
        return
    post_ok = len(posts) == 1 and _text(posts[0]) == ONE_CLICK
    if not post_ok:
        what = f"appears {len(posts)} times" if len(posts) > 1 else f"is {_cut(_text(posts[0]))!r}"
        out.append(
            Finding(
                "fail",
                "list-unsubscribe",
                "List-Unsubscribe-Post",
                f"List-Unsubscribe-Post {what}; it must be exactly {ONE_CLICK} (RFC 8058 §3.1).",
            )
        )
    if not https:
        out.append(
            Finding(
                "fail",
                "list-unsubscribe",
                "List-Unsubscribe-Post",
                "One-click unsubscribe (List-Unsubscribe-Post) needs an https URI in "
                "List-Unsubscribe (RFC 8058 §3.1); there is none.",
            )
        )
    covering = [
        v
        for v in dkim
        if v.result == "pass"
        and "list-unsubscribe" in v.signed
        and "list-unsubscribe-post" in v.signed
    ]
    if not covering:
        out.append(
            Finding(
                "fail",
                "list-unsubscribe",
                "List-Unsubscribe-Post",
                "No DKIM signature that verifies covers both List-Unsubscribe and "
                "List-Unsubscribe-Post (RFC 8058 §4), so receivers will not offer one-click.",
            )
        )
    elif post_ok and https:
        out.append(
            Finding(
                "pass",
                "list-unsubscribe",
                "List-Unsubscribe-Post",
                f"One-click unsubscribe (RFC 8058) at {_cut(https[0])}, both headers signed by "
                f"DKIM d={covering[0].domain}.",
            )
        )
