from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from postroom.core.errors import ConfigError
from postroom.smtp.tls import enforce_minimum_version, generate_self_signed, server_context


def test_self_signed_certificate_names_the_host(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    generate_self_signed(cert, key, "mail.example.test", extra_names=["192.0.2.5"])
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mail.example.test"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.5"]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_localhost_certificate_covers_loopback_addresses(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    generate_self_signed(str(cert), str(key), "localhost")
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(str(ip) for ip in san.get_values_for_type(x509.IPAddress)) == ["127.0.0.1", "::1"]


def test_server_context_requires_tls_1_2(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    generate_self_signed(cert, key, "localhost")
    context = server_context(cert, key)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_server_context_reports_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load the TLS certificate"):
        server_context(tmp_path / "nope.pem", tmp_path / "nope.key")


def test_weak_minimum_is_raised() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    assert enforce_minimum_version(context).minimum_version == ssl.TLSVersion.TLSv1_2
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    assert enforce_minimum_version(context).minimum_version == ssl.TLSVersion.TLSv1_3
