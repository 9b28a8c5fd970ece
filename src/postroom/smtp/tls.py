"""TLS for the SMTP listeners: a server context (TLS 1.2 at least) and self-signed certificates."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from postroom.core.errors import ConfigError

_WEAK_MINIMUMS = frozenset(
    (
        ssl.TLSVersion.MINIMUM_SUPPORTED,
        ssl.TLSVersion.SSLv3,
        ssl.TLSVersion.TLSv1,
        ssl.TLSVersion.TLSv1_1,
    )
)


def enforce_minimum_version(context: ssl.SSLContext) -> ssl.SSLContext:
    """Raise the context's minimum protocol to TLS 1.2 when it allows less; return it."""
    if context.minimum_version in _WEAK_MINIMUMS:
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def server_context(
    cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str]
) -> ssl.SSLContext:
    """A server-side context for STARTTLS and implicit TLS, refusing anything below TLS 1.2."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(os.fspath(cert_path), os.fspath(key_path))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the TLS certificate {os.fspath(cert_path)!r} "
            f"with key {os.fspath(key_path)!r}: {exc}"
        ) from None
    return context


class ReloadableContext:
    """A server context whose certificate can be replaced while listeners use it.

    Listeners are given `context` once. `reload()` loads the files again into a new context;
    every handshake after that switches to the newest one from the ClientHello callback (it runs
    for every handshake, with or without SNI), so new connections present the new certificate
    while established ones keep theirs. A certificate of another key type works too, which
    reloading into the same context would not guarantee (OpenSSL keeps one per key type).
    """

    def __init__(self, cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str]):
        self.cert_path = os.fspath(cert_path)
        self.key_path = os.fspath(key_path)
        self.context = server_context(self.cert_path, self.key_path)
        self.current = self.context
        self.context.sni_callback = self._select

    def _select(
        self, connection: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object
    ) -> None:
        current = self.current
        if current is not self.context:
            connection.context = current

    def reload(self) -> None:
        """Load the certificate and key again (raises ConfigError, keeping the old pair)."""
        fresh = server_context(self.cert_path, self.key_path)
        self.current = fresh


def generate_self_signed(
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    hostname: str,
    *,
    days: int = 825,
    now: datetime.datetime | None = None,
    extra_names: Sequence[str] = (),
) -> None:
    """Write a self-signed certificate for `hostname` (RSA 2048, SHA-256) and its key.

    The key file is created readable by the owner only. `hostname` and `extra_names` may be
    host names or IP addresses; "localhost" also covers 127.0.0.1 and ::1.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    names = [hostname, *extra_names]
    if hostname == "localhost":
        names += ["127.0.0.1", "::1"]
    alt_names: list[x509.GeneralName] = []
    for item in dict.fromkeys(names):
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(item)))
        except ValueError:
            alt_names.append(x509.DNSName(item))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_file = Path(key_path)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_bytes)
    os.chmod(key_file, 0o600)
    Path(cert_path).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
