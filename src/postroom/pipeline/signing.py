"""DKIM signing at acceptance: every message of a live project is signed before it is stored,
so the stored bytes are exactly what the delivery workers will send.

The From domain's active keys sign (an RSA key and its Ed25519 twin both sign, RFC 8463 §4);
loading a PEM key costs far more than a signature, so a DkimSigner is kept per key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from postroom.core.clock import Clock
from postroom.core.errors import Refusal, RefusalKind
from postroom.core.platform import DkimKey, Domain
from postroom.dns.dkim import (
    DkimError,
    DkimKeyError,
    DkimSigner,
    RelaxedBodyHash,
    load_private_key,
)

log = logging.getLogger("postroom.pipeline")

MAX_CACHED = 1024


def signing_keys(domain: Domain) -> list[DkimKey]:
    """The keys that sign the domain's mail: its active keys (an RSA key and its Ed25519 twin
    both sign), RSA first, then by selector. Pending keys wait for activation, retiring and
    retired keys never sign. Only a verified domain signs (ProjectView.domains holds those)."""
    return sorted(
        (k for k in domain.dkim_keys if k.status == "active"),
        key=lambda k: (k.algorithm != "rsa", k.selector),
    )


class SignerCache:
    """DkimSigners by (domain, selector, private key PEM); safe to share between sessions.
    The PEM itself is in the key (a str caches its hash: looking a signer up costs no digest
    of the key per message)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._signers: dict[tuple[str, str, str], DkimSigner | None] = {}

    def signers_for(self, domain: Domain) -> list[DkimSigner]:
        """Signers for the domain's active keys, RSA first; keys that cannot be loaded are
        logged and skipped."""
        found: list[DkimSigner] = []
        for key in signing_keys(domain):
            signer = self._signer(domain.name, key)
            if signer is not None:
                found.append(signer)
        return found

    def _signer(self, domain: str, key: DkimKey) -> DkimSigner | None:
        cache_key = (domain, key.selector, key.private_pem)
        if cache_key in self._signers:
            return self._signers[cache_key]
        signer: DkimSigner | None
        try:
            signer = DkimSigner(
                domain, key.selector, load_private_key(key.private_pem), self._clock
            )
        except (DkimKeyError, ValueError) as exc:
            log.error("DKIM key %s of %s cannot be used: %s", key.selector, domain, exc)
            signer = None
        if len(self._signers) >= MAX_CACHED:
            self._signers.clear()
        self._signers[cache_key] = signer
        return signer


def sign(message: bytes, signers: list[DkimSigner]) -> bytes:
    """The DKIM-Signature fields to prepend to `message` (each signer signs the same bytes).
    Raises a Refusal (not signable) when the message cannot be signed."""
    return _each(signers, lambda signer: signer.sign(message))


def sign_head(head: bytes, body_hash: bytes, signers: list[DkimSigner]) -> bytes:
    """`sign` for a big message given as its header section and its body's relaxed hash
    (dns.dkim.RelaxedBodyHash), the body being read as a stream."""
    return _each(signers, lambda signer: signer.sign_head(head, body_hash))


def body_hash(chunks: Iterable[bytes]) -> bytes:
    """The relaxed body hash of a body read as chunks."""
    hasher = RelaxedBodyHash()
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.digest()


def _each(signers: list[DkimSigner], signature: Callable[[DkimSigner], bytes]) -> bytes:
    out = b""
    for signer in signers:
        try:
            out += signature(signer)
        except DkimError as exc:
            raise Refusal(
                RefusalKind.NOT_SIGNABLE, f"The message cannot be DKIM-signed: {exc}"
            ) from None
    return out
