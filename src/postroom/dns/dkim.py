"""DKIM signing (RFC 6376) with RSA-SHA256 and Ed25519-SHA256 (RFC 8463), keys and DNS records.

Signing uses relaxed/relaxed canonicalisation and works on the raw message bytes, so 8-bit
and UTF-8 header fields (SMTPUTF8, RFC 6532) are signed exactly as they will be sent. The
message must use CRLF line endings (the doors normalise bare CR/LF before the pipeline signs).

    signer = DkimSigner(domain="example.com", selector="pr20261129", key=key, clock=clock)
    signed = signer.sign(message) + message      # sign() returns the header to prepend

The `h=` tag lists every signed field present in the message once per occurrence, and the
over-signed fields (From by default) once more, so that a From added in transit (above or
below the original) breaks the signature instead of riding on it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput, PostroomError

__all__ = [
    "DEFAULT_HEADERS",
    "DEFAULT_OVERSIGN",
    "Algorithm",
    "DkimError",
    "DkimKeyError",
    "DkimSigner",
    "PrivateKey",
    "canonicalize_body_relaxed",
    "canonicalize_header_relaxed",
    "dated_selector",
    "dns_record",
    "dns_record_name",
    "dump_private_key",
    "generate_ed25519",
    "generate_rsa",
    "key_algorithm",
    "key_type",
    "load_private_key",
    "normalize_domain",
    "parse_tag_list",
    "public_key_b64",
    "sign_message",
]

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
Algorithm = Literal["rsa-sha256", "ed25519-sha256"]

#: Header fields signed when present (RFC 6376 5.4.1 and RFC 8058 for List-Unsubscribe*).
DEFAULT_HEADERS: tuple[str, ...] = (
    "from",
    "sender",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "to",
    "cc",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-language",
    "resent-date",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "resent-message-id",
    "list-id",
    "list-help",
    "list-subscribe",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-post",
    "list-owner",
    "list-archive",
    "feedback-id",
    "auto-submitted",
    "precedence",
)

#: Fields listed once more than they occur, so that adding one invalidates the signature.
DEFAULT_OVERSIGN: tuple[str, ...] = ("from",)

MIN_RSA_BITS = 1024  # RFC 8301: verifiers must not accept smaller keys
MAX_RSA_BITS = 8192
_FOLD_WIDTH = 78

# WSP runs that are not already a single SP (lone spaces, the common case, are left alone).
_WSP_RUN = re.compile(rb"(?:\t| [ \t])[ \t]*")
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")  # printable US-ASCII except ":"
_SELECTOR = re.compile(
    r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*"
)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class DkimError(PostroomError):
    """The message cannot be signed (no From field, bare CR or LF, ...)."""


class DkimKeyError(InvalidInput):
    """A private key is unreadable, of an unsupported type or too weak."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="private_key")


# -- keys -------------------------------------------------------------------------------------


def generate_rsa(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A new RSA key (public exponent 65537). 2048 bits is the default, 1024..8192 accepted."""
    if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
        raise DkimKeyError(f"RSA key size must be {MIN_RSA_BITS} to {MAX_RSA_BITS} bits")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def generate_ed25519() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def _check_key(key: object) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey):
        if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise DkimKeyError(
                f"RSA key of {key.key_size} bits; DKIM needs {MIN_RSA_BITS} to {MAX_RSA_BITS}"
            )
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise DkimKeyError(f"unsupported key type {type(key).__name__}: use RSA or Ed25519")


def load_private_key(data: str | bytes, password: bytes | None = None) -> PrivateKey:
    """Load a user-supplied private key.

    Accepts PEM (PKCS#8 "PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY", encrypted with `password`),
    base64 DER without the PEM armour, and the base64 32-byte Ed25519 seed that dkimpy and
    other tools write. Raises DkimKeyError (an InvalidInput) with a sentence saying why.
    """
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    raw = raw.strip()
    if not raw:
        raise DkimKeyError("the private key is empty")
    try:
        if raw.startswith(b"-----BEGIN"):
            if b"PUBLIC KEY-----" in raw.split(b"\n", 1)[0]:
                raise DkimKeyError("this is a public key; the private key is needed")
            key: object = serialization.load_pem_private_key(raw, password=password)
        else:
            try:
                der = base64.b64decode(b"".join(raw.split()), validate=True)
            except (binascii.Error, ValueError):
                raise DkimKeyError("the private key is neither PEM nor base64") from None
            if len(der) == 32:
                key = ed25519.Ed25519PrivateKey.from_private_bytes(der)
            else:
                key = serialization.load_der_private_key(der, password=password)
    except DkimKeyError:
        raise
    except TypeError as exc:  # password missing, or given for an unencrypted key
        raise DkimKeyError(f"the private key cannot be decrypted: {exc}") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise DkimKeyError(f"the private key cannot be read: {exc}") from None
    return _check_key(key)


def dump_private_key(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: the caller encrypts it at rest and never shows it to users."""
    return _check_key(key).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def key_type(key: PrivateKey) -> Literal["rsa", "ed25519"]:
    """The k= value of the key's DNS record."""
    return "rsa" if isinstance(_check_key(key), rsa.RSAPrivateKey) else "ed25519"


def key_algorithm(key: PrivateKey) -> Algorithm:
    """The a= value of signatures made with the key."""
    return "rsa-sha256" if key_type(key) == "rsa" else "ed25519-sha256"


def public_key_b64(key: PrivateKey) -> str:
    """The p= value: base64 SubjectPublicKeyInfo DER for RSA, the raw 32 bytes for Ed25519."""
    public = _check_key(key).public_key()
    if isinstance(public, rsa.RSAPublicKey):
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        der = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(der).decode("ascii")


def dns_record(key: PrivateKey) -> str:
    """The TXT record text to publish at `dns_record_name(selector, domain)`."""
    return f"v=DKIM1; k={key_type(key)}; p={public_key_b64(key)}"


def normalize_domain(domain: str) -> str:
    """`domain` in A-labels, lower-case, without the trailing dot. Raises InvalidInput."""
    text = domain.strip().rstrip(".")
    try:
        ascii_name = text.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidInput(f"{domain!r} is not a valid domain name", field="domain") from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidInput(f"{domain!r} is not a valid domain name", field="domain")
    return ascii_name


def _check_selector(selector: str) -> str:
    value = selector.strip().lower()
    if not _SELECTOR.fullmatch(value):
        raise InvalidInput(
            f"DKIM selector {selector!r} must be DNS labels of letters, digits, '-' and '_'",
            field="selector",
        )
    return value


def dns_record_name(selector: str, domain: str) -> str:
    """`<selector>._domainkey.<domain>` (A-labels, lower-case, no trailing dot)."""
    return f"{_check_selector(selector)}._domainkey.{normalize_domain(domain)}"


def dated_selector(when: datetime, prefix: str = "pr", suffix: str = "") -> str:
    """A selector naming the key's creation day, e.g. `pr20261129` (`suffix` tells apart keys
    made the same day, e.g. "e" for the Ed25519 twin of an RSA key)."""
    return _check_selector(f"{prefix}{when:%Y%m%d}{suffix}")


def parse_tag_list(text: str) -> dict[str, str]:
    """Parse a DKIM tag=value list (RFC 6376 3.2): keys and values with whitespace removed
    around them; a later duplicate tag wins. Entries without "=" are ignored."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.strip()] = value.strip()
    return tags


# -- canonicalisation -------------------------------------------------------------------------


def canonicalize_header_relaxed(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2: `name` lower-cased, value unfolded, WSP runs to one SP, trimmed."""
    unfolded = value.replace(b"\r\n", b"")
    compact = _WSP_RUN.sub(b" ", unfolded).strip(b" ")
    return name.rstrip(b" \t").lower() + b":" + compact + b"\r\n"


def canonicalize_body_relaxed(body: bytes) -> bytes:
    """RFC 6376 3.4.4: WSP runs to one SP, no WSP at line ends, no empty lines at the end,
    CRLF-terminated unless empty. A last line without CRLF is treated as if it had one (the
    SMTP client adds it), so trailing WSP on it is removed too."""
    compact = _WSP_RUN.sub(b" ", body).replace(b" \r\n", b"\r\n")
    if compact.endswith(b" "):
        compact = compact[:-1]
    while compact.endswith(b"\r\n"):
        compact = compact[:-2]
    return compact + b"\r\n" if compact else b""


class RelaxedBodyHash:
    """SHA-256 of the relaxed canonical form of a body fed in pieces (RFC 6376 3.4.4): the same
    digest as hashing `canonicalize_body_relaxed(body)`, without holding the body. Lines are
    canonicalised whole (WSP runs never cross a line end); empty lines are counted, not hashed,
    until something follows them (the empty lines at the end do not count)."""

    _FLUSH = 64 * 1024  # a line longer than this is hashed up to its trailing WSP

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._partial = b""  # an incomplete last line
        self._empty = 0  # CRLFs of empty lines not hashed yet
        self._hashed = False

    def update(self, data: bytes) -> None:
        if self._partial:
            data = self._partial + data
        cut = data.rfind(b"\r\n") + 2
        if cut < 2:
            if len(data) <= self._FLUSH:
                self._partial = data
                return
            cut = len(data.rstrip(b" \t\r"))  # keep a trailing WSP run and a CR
        self._partial = data[cut:]
        self._lines(_WSP_RUN.sub(b" ", data[:cut]).replace(b" \r\n", b"\r\n"))

    def _lines(self, compact: bytes) -> None:
        end = len(compact)
        while end >= 2 and compact[end - 2] == 13 and compact[end - 1] == 10:
            end -= 2
        if end:
            self._hash.update(b"\r\n" * self._empty + compact[:end])
            self._empty = (len(compact) - end) // 2
            self._hashed = True
        else:
            self._empty += len(compact) // 2

    def digest(self) -> bytes:
        tail = _WSP_RUN.sub(b" ", self._partial)
        self._partial = b""
        if tail.endswith(b" "):
            tail = tail[:-1]
        if tail:
            self._hash.update(b"\r\n" * self._empty + tail + b"\r\n")
        elif self._hashed:
            self._hash.update(b"\r\n")
        return self._hash.digest()


def _split_message(message: bytes) -> tuple[list[tuple[bytes, bytes, bytes]], bytes]:
    """Header fields as (lower-cased name, name as written, value incl. folding) and the body."""
    if message.startswith(b"\r\n"):
        return [], message[2:]
    end = message.find(b"\r\n\r\n")
    if end < 0:
        head, body = message, b""
    else:
        head, body = message[: end + 2], message[end + 4 :]
    fields: list[tuple[bytes, bytes, bytes]] = []
    current: list[bytes] | None = None
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        if current is not None:
            fields.append(_field(current))
            current = None
        if b":" in line:
            current = [line]
    if current is not None:
        fields.append(_field(current))
    return [f for f in fields if f[0]], body


def _field(lines: list[bytes]) -> tuple[bytes, bytes, bytes]:
    raw = b"\r\n".join(lines)
    name, _, value = raw.partition(b":")
    stripped = name.rstrip(b" \t")
    if not _FIELD_NAME.fullmatch(stripped):
        return b"", name, value
    return stripped.lower(), name, value


# -- signing ----------------------------------------------------------------------------------


class _Folder:
    """Builds a folded header: lines of at most `width` characters where possible, folds
    (CRLF + TAB) placed only where the DKIM grammar allows FWS."""

    def __init__(self, start: str, width: int = _FOLD_WIDTH) -> None:
        self.lines = [start]
        self.width = width

    def word(self, text: str, space: bool = True) -> None:
        """Append `text` (preceded by a space if `space`), folding before it if it is too long."""
        line = self.lines[-1]
        sep = " " if space else ""
        if len(line) + len(sep) + len(text) > self.width and line.strip():
            self.lines.append("\t" + text)
        else:
            self.lines[-1] = line + sep + text

    def breakable(self, text: str) -> None:
        """Append `text` directly, folding inside it wherever the line is full."""
        while text:
            room = self.width - len(self.lines[-1])
            if room <= 0:
                self.lines.append("\t")
                continue
            self.lines[-1] += text[:room]
            text = text[room:]

    def text(self) -> str:
        return "\r\n".join(self.lines)


class DkimSigner:
    """Signs messages for one domain and selector with one key.

    `headers` are the field names to sign when present; `oversign` those listed once more than
    they occur (From must be among the signed headers). `expire_after` adds x= (t= + delta).
    The signer is immutable and safe to share between tasks and threads.
    """

    def __init__(
        self,
        domain: str,
        selector: str,
        key: PrivateKey,
        clock: Clock,
        headers: Iterable[str] = DEFAULT_HEADERS,
        oversign: Iterable[str] = DEFAULT_OVERSIGN,
        expire_after: timedelta | None = None,
    ) -> None:
        self.domain = normalize_domain(domain)
        self.selector = _check_selector(selector)
        self._key = _check_key(key)
        self.algorithm: Algorithm = key_algorithm(self._key)
        self._clock = clock
        names: list[str] = []
        for name in headers:
            lowered = name.strip().lower()
            if not lowered.isascii() or not _FIELD_NAME.fullmatch(lowered.encode("ascii")):
                raise InvalidInput(f"{name!r} is not a header field name", field="headers")
            if lowered not in names:
                names.append(lowered)
        if "from" not in names:
            raise InvalidInput("DKIM must sign the From field (RFC 6376 5.4)", field="headers")
        self.headers: tuple[str, ...] = tuple(names)
        self.oversign: frozenset[str] = frozenset(n.strip().lower() for n in oversign)
        if expire_after is not None and expire_after.total_seconds() < 1:
            raise InvalidInput("DKIM expiry must be at least one second", field="expire_after")
        self.expire_after = expire_after

    def __repr__(self) -> str:  # never show the key
        return f"DkimSigner(domain={self.domain!r}, selector={self.selector!r}, {self.algorithm})"

    def sign(self, message: bytes) -> bytes:
        """The `DKIM-Signature:` field (folded, CRLF-terminated) to prepend to `message`."""
        if not message.count(b"\r") == message.count(b"\n") == message.count(b"\r\n"):
            raise DkimError("the message has a bare CR or LF; normalise line endings first")
        fields, body = _split_message(message)
        return self._signature(fields, hashlib.sha256(canonicalize_body_relaxed(body)).digest())

    def sign_head(self, head: bytes, body_hash: bytes) -> bytes:
        """`sign` for a message given as its header section (up to and including the empty
        line) and the RelaxedBodyHash digest of its body (a big message read as a stream)."""
        if not head.count(b"\r") == head.count(b"\n") == head.count(b"\r\n"):
            raise DkimError("the message has a bare CR or LF; normalise line endings first")
        if not head.endswith(b"\r\n\r\n") or head.find(b"\r\n\r\n") != len(head) - 4:
            raise DkimError("the header section must end at its first empty line")
        fields, _ = _split_message(head)
        return self._signature(fields, body_hash)

    def _signature(self, fields: list[tuple[bytes, bytes, bytes]], body_digest: bytes) -> bytes:
        by_name: dict[bytes, list[tuple[bytes, bytes]]] = {}
        for lowered, raw_name, value in fields:
            by_name.setdefault(lowered, []).append((raw_name, value))
        if b"from" not in by_name:
            raise DkimError("the message has no From field; DKIM must sign it")

        counts = Counter(lowered.decode("ascii") for lowered, _, _ in fields)
        signed: list[str] = []
        for name in self.headers:
            signed.extend([name] * (counts.get(name, 0) + (name in self.oversign)))

        # Instances are used bottom-up, as the verifier will select them (RFC 6376 5.4.2).
        header_data = bytearray()
        for name in signed:
            instances = by_name.get(name.encode("ascii"))
            if instances:
                header_data += canonicalize_header_relaxed(*instances.pop())

        body_hash = base64.b64encode(body_digest).decode("ascii")
        now = int(self._clock.now().timestamp())

        folder = _Folder("DKIM-Signature:")
        tags = [
            "v=1;",
            f"a={self.algorithm};",
            "c=relaxed/relaxed;",
            f"d={self.domain};",
            f"s={self.selector};",
            f"t={now};",
        ]
        if self.expire_after is not None:
            tags.append(f"x={now + int(self.expire_after.total_seconds())};")
        for tag in tags:
            folder.word(tag)
        for i, name in enumerate(signed):  # folds go after a ":" (FWS allowed there)
            last = i == len(signed) - 1
            folder.word(("h=" if i == 0 else "") + name + (";" if last else ":"), space=i == 0)
        folder.word(f"bh={body_hash};")
        folder.word("b=")
        unsigned = folder.text().encode("ascii")

        # The signature field itself is hashed last, with b= empty and no CRLF (RFC 6376 3.7).
        sig_name, _, sig_value = unsigned.partition(b":")
        header_data += canonicalize_header_relaxed(sig_name, sig_value).removesuffix(b"\r\n")
        folder.breakable(base64.b64encode(self._sign(bytes(header_data))).decode("ascii"))
        return folder.text().encode("ascii") + b"\r\n"

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        # RFC 8463: PureEdDSA over the SHA-256 hash of the data.
        return self._key.sign(hashlib.sha256(data).digest())


def sign_message(
    message: bytes,
    *,
    domain: str,
    selector: str,
    key: PrivateKey,
    clock: Clock,
    headers: Sequence[str] = DEFAULT_HEADERS,
) -> bytes:
    """One-off signing: the `DKIM-Signature:` field to prepend (see DkimSigner)."""
    return DkimSigner(domain, selector, key, clock, headers=headers).sign(message)
