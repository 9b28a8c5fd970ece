"""DKIM verification of a received message (RFC 6376) with dkimpy, keys found through the
injected resolver.

dkimpy's verifier is synchronous and asks a `dnsfunc` for `<s>._domainkey.<d>.`. Here the key
record is looked up first, through `Resolver.txt` (the configured --resolver, or a test's
DNS server), and dkimpy is then run in a worker thread with a `dnsfunc` that answers only that
name from what was found: it never reaches the network, so a message cannot make the
server query anything but that one TXT name through the resolver. `d=` and `s=` must be
DNS names (letters, digits, hyphens, underscores in the selector) before anything is asked.

At most MAX_SIGNATURES signatures are verified (topmost first); RSA keys under 1024 bits and
rsa-sha1 signatures fail (RFC 8301).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dkim

from postroom.dns.dkim import parse_tag_list
from postroom.dns.resolver import DnsError, Resolver

__all__ = ["MAX_SIGNATURES", "DkimVerdict", "verify_signatures"]

MAX_SIGNATURES = 5
DkimResult = Literal["pass", "fail", "temperror", "permerror"]
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


@dataclass(frozen=True, slots=True)
class DkimVerdict:
    """One DKIM-Signature: its `d=`/`s=`/`a=`, the header fields it signs (`h=`, lower case),
    whether it has a body length limit (`l=`), the result and why."""

    domain: str
    selector: str
    algorithm: str
    signed: tuple[str, ...]
    body_limit: bool
    result: DkimResult
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "Domain": self.domain,
            "Selector": self.selector,
            "Algorithm": self.algorithm,
            "SignedHeaders": list(self.signed),
            "BodyLengthLimit": self.body_limit,
            "Result": self.result,
            "Reason": self.reason,
        }


def _dns_name(text: str, labels_needed: int) -> str | None:
    """`text` as a lower-case DNS name of LDH(+underscore) labels, or None."""
    name = text.strip().rstrip(".").lower()
    if not name or len(name) > 253 or not name.isascii():
        return None
    labels = name.split(".")
    if len(labels) < labels_needed or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return name


class _Notes:
    """A logger for dkimpy that keeps its error messages (why a key was refused)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def isEnabledFor(self, level: int) -> bool:
        return False

    def debug(self, message: object, *args: object) -> None:
        return None

    info = warning = debug

    def error(self, message: object, *args: object) -> None:
        self.errors.append(str(message))


def _dkimpy(raw: bytes, index: int, key_name: str, record: bytes) -> tuple[bool, str]:
    """Run dkimpy on signature `index` with `record` as the only DNS answer it can get."""
    asked: list[str] = []

    def dnsfunc(name: bytes | str, timeout: float = 5.0) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        asked.append(text)
        return record if text.rstrip(".").lower() == key_name else None

    notes = _Notes()
    try:
        verifier = dkim.DKIM(raw, logger=notes, minkey=1024)
        ok = bool(verifier.verify(idx=index, dnsfunc=dnsfunc))
    except dkim.DKIMException as exc:
        return False, str(exc)
    except Exception as exc:  # dkimpy on hostile input: a verdict, never a crash
        return False, f"the signature cannot be verified ({type(exc).__name__}: {exc})"
    if ok:
        return True, ""
    if notes.errors:
        return False, notes.errors[-1]
    if any(a.rstrip(".").lower() != key_name for a in asked):
        return False, "the signature names a key other than its d= and s= say"
    return False, (
        "the signature does not match the signed header fields: they were changed after "
        "signing, or the key in DNS is not the one that signed"
    )


async def _verify(raw: bytes, index: int, value: bytes, resolver: Resolver) -> DkimVerdict:
    text = value.decode("utf-8", "replace")
    tags = {k: "".join(v.split()) for k, v in parse_tag_list(text).items()}
    domain, selector = tags.get("d", ""), tags.get("s", "")
    signed = tuple(h.strip().lower() for h in tags.get("h", "").split(":") if h.strip())

    def verdict(result: DkimResult, reason: str) -> DkimVerdict:
        return DkimVerdict(
            domain[:255],
            selector[:255],
            tags.get("a", "").lower()[:40],
            signed[:100],
            "l" in tags,
            result,
            reason,
        )

    missing = [t for t in ("v", "a", "b", "bh", "d", "h", "s") if not tags.get(t)]
    if missing:
        return verdict("permerror", f"the signature lacks {', '.join(t + '=' for t in missing)}")
    d_name, s_name = _dns_name(domain, 2), _dns_name(selector, 1)
    if d_name is None or s_name is None:
        which = "d=" if d_name is None else "s="
        return verdict("permerror", f"{which} is not a DNS name; no key was looked up")
    if tags["a"].lower() == "rsa-sha1":
        return verdict("fail", "rsa-sha1 signatures are not accepted any more (RFC 8301)")
    if "from" not in signed:
        return verdict("fail", "the signature does not sign From, which RFC 6376 §5.4 requires")
    key_name = f"{s_name}._domainkey.{d_name}"
    try:
        records = await resolver.txt(key_name)
    except DnsError as exc:
        return verdict("temperror", f"the key could not be looked up: {exc}")
    keys = [r for r in records if "p" in parse_tag_list(r)]
    if not keys:
        return verdict("permerror", f"no DKIM key is published at {key_name}")
    if len(keys) > 1:
        return verdict("permerror", f"{key_name} publishes more than one key record")
    if not "".join(parse_tag_list(keys[0])["p"].split()):
        return verdict("fail", f"the key at {key_name} is revoked (empty p=)")
    ok, reason = await asyncio.to_thread(_dkimpy, raw, index, key_name, keys[0].encode("utf-8"))
    return (
        verdict("pass", f"verified with the key at {key_name}") if ok else verdict("fail", reason)
    )


async def verify_signatures(
    raw: bytes, signatures: Sequence[bytes], resolver: Resolver
) -> list[DkimVerdict]:
    """Verify each DKIM-Signature value of `raw` (in the order they appear, the topmost
    first; at most MAX_SIGNATURES). `raw` uses CRLF line endings."""
    return [
        await _verify(raw, index, value, resolver)
        for index, value in enumerate(signatures[:MAX_SIGNATURES])
    ]
