"""DKIM signing throughput: signatures per second on a ~2 KB message, one core.

Prints figures for Postroom's signer (`postroom.dns.dkim`, OpenSSL through `cryptography`) with
RSA-2048 and Ed25519, and for comparison dkimpy's RSA-2048 signer (pure-Python RSA), when the
dev extras are installed. Every figure is checked first: each signature is verified with
`cryptography` before timing, so a fast-but-wrong signer cannot report a number.

    .venv/bin/python bench/dkim_sign.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from postroom.core.clock import FakeClock
from postroom.dns.dkim import (
    DkimSigner,
    PrivateKey,
    dump_private_key,
    generate_ed25519,
    generate_rsa,
)

HEADERS = (
    'From: "Alice Example" <alice@example.com>\r\n'
    "To: Bob <bob@example.net>, carol@example.net\r\n"
    "Subject: Quarterly report\r\n"
    "Date: Tue, 14 Jan 2025 10:00:00 +0000\r\n"
    "Message-ID: <20250114100000.12345@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 7bit\r\n"
    "List-Unsubscribe: <https://example.com/unsubscribe/abc>\r\n"
    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    "\r\n"
)
LINE = "Hello Bob, this is line {:02d} of the quarterly report body text.  \r\n"
MESSAGE = (HEADERS + "".join(LINE.format(i) for i in range(26))).encode()


def rate(fn: Callable[[], object], seconds: float, max_calls: int = 1_000_000) -> float:
    """Calls per second of `fn`, measured for about `seconds` (bounded by `max_calls`)."""
    fn()  # warm up
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while calls < max_calls:
        for _ in range(10):
            fn()
        calls += 10
        if time.perf_counter() >= deadline:
            break
    return calls / (time.perf_counter() - start)


def check(signer: DkimSigner, key: PrivateKey) -> None:
    """Verify one signature with `cryptography` (header hash rebuilt independently of timing)."""
    import base64
    import hashlib
    import re

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

    from postroom.dns.dkim import canonicalize_header_relaxed

    header = signer.sign(MESSAGE)
    value = header.partition(b":")[2]
    tags = dict(t.strip().split("=", 1) for t in value.decode().split(";") if "=" in t)
    signature = base64.b64decode(re.sub(r"\s+", "", tags["b"]))
    fields: dict[bytes, tuple[bytes, bytes]] = {}
    for line in HEADERS.encode().split(b"\r\n\r\n")[0].split(b"\r\n"):
        field_name, _, field_value = line.partition(b":")
        fields[field_name.lower()] = (field_name, field_value)
    data = b""
    for name in re.sub(r"\s+", "", tags["h"]).split(":"):
        picked = fields.pop(name.encode(), None)
        if picked:
            data += canonicalize_header_relaxed(*picked)
    unsigned = re.sub(rb"b=[A-Za-z0-9+/=\s]*\r\n$", b"b=", header)
    data += canonicalize_header_relaxed(*unsigned.split(b":", 1))[:-2]
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(public, ed25519.Ed25519PublicKey)
        public.verify(signature, hashlib.sha256(data).digest())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()
    clock = FakeClock(datetime(2025, 1, 14, 10, tzinfo=UTC))

    print(f"message: {len(MESSAGE)} bytes; {args.seconds:g} s per figure, one thread")
    results: dict[str, float] = {}
    for label, key in (("RSA-2048", generate_rsa(2048)), ("Ed25519", generate_ed25519())):
        signer = DkimSigner("example.com", "sel", key, clock)
        check(signer, key)
        results[label] = rate(partial(signer.sign, MESSAGE), args.seconds)
        per = 1e6 / results[label]
        print(f"postroom {label:9s} {results[label]:10,.0f} signatures/s  ({per:7.1f} µs each)")

    try:
        import dkim
    except ImportError:
        print("dkimpy not installed: no comparison")
        return
    pem = dump_private_key(generate_rsa(2048))

    def dkimpy_sign() -> bytes:
        return bytes(
            dkim.sign(
                MESSAGE,
                b"sel",
                b"example.com",
                pem,
                canonicalize=(b"relaxed", b"relaxed"),
            )
        )

    dkimpy_rate = rate(dkimpy_sign, args.seconds)
    print(
        f"dkimpy   RSA-2048  {dkimpy_rate:10,.0f} signatures/s  ({1e6 / dkimpy_rate:7.1f} µs each)"
        f"  -> postroom is {results['RSA-2048'] / dkimpy_rate:.0f}x faster"
    )


if __name__ == "__main__":
    main()
