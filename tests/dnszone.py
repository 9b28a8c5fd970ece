"""A real DNS server for tests: a mutable in-memory zone served on 127.0.0.1 (UDP and TCP).

Use the `dns_zone` fixture (import it into a conftest.py or a test module):

    async def test_mx(dns_zone: DnsZone) -> None:
        dns_zone.add_mx("example.test", 10, "mx1.example.test")
        resolver = DnsPythonResolver(dns_zone.nameserver)
        assert await resolver.mx("example.test") == [(10, "mx1.example.test")]

The server answers authoritatively for every name: names it has no records for are NXDOMAIN,
names with records of other types get an empty NOERROR answer. CNAMEs are followed inside the
zone. UDP answers larger than the client's advertised size (512 without EDNS) are truncated so
the client retries over TCP, as with a real server. `drop(name)` makes the server ignore
queries for a name (the client times out); `fail(name, "SERVFAIL")` answers with that rcode.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dns.resolver
import pytest
from dnslib import (
    AAAA,
    CNAME,
    MX,
    QTYPE,
    RCODE,
    RR,
    TXT,
    A,
    DNSError,
    DNSHeader,
    DNSLabel,
    DNSRecord,
)
from dnslib.server import DNSHandler, DNSLogger, DNSServer

__all__ = ["DnsZone", "Query", "dkim_dnsfunc", "dkimpy_verify", "dns_zone", "split_txt"]

_TTL = 60


@dataclass(frozen=True, slots=True)
class Query:
    """One query the server received: name (lower-case, no trailing dot), type, protocol."""

    name: str
    rtype: str
    protocol: str


def _key(name: str) -> str:
    return name.strip().rstrip(".").lower()


def split_txt(text: str | bytes) -> list[bytes]:
    """Split TXT data into character-strings of at most 255 bytes (RFC 1035 3.3.14)."""
    data = text.encode() if isinstance(text, str) else text
    if not data:
        return [b""]
    return [data[i : i + 255] for i in range(0, len(data), 255)]


class _Handler(DNSHandler):  # type: ignore[misc]
    """Drops queries the zone says to drop; truncates UDP answers past the client's limit."""

    def get_reply(self, data: bytes) -> bytes:
        zone: DnsZone = self.server.zone
        request = DNSRecord.parse(data)  # a malformed query raises DNSError: no answer
        name = _key(str(request.q.qname))
        zone._record_query(Query(name, QTYPE[request.q.qtype], self.protocol))
        if zone._dropped(name):
            raise DNSError(f"dropping query for {name}")
        reply = zone.resolve(request, self)
        packed: bytes = reply.pack()
        if self.protocol == "udp":
            limit = 512
            for rr in request.ar:
                if rr.rtype == QTYPE.OPT:
                    limit = max(512, int(rr.rclass))
            if zone.udp_limit is not None:
                limit = zone.udp_limit
            if len(packed) > limit:  # keep the question (dnslib's truncate() drops it)
                truncated = DNSRecord(
                    DNSHeader(id=reply.header.id, bitmap=reply.header.bitmap, tc=1), q=reply.q
                )
                packed = truncated.pack()
        return packed


class _QuietLogger(DNSLogger):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)


class DnsZone:
    """The mutable zone and the UDP+TCP servers answering from it. Thread-safe."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self._lock = threading.Lock()
        self._records: dict[str, list[tuple[int, Any]]] = {}
        self._drop: set[str] = set()
        self._fail: dict[str, int] = {}
        self._queries: list[Query] = []
        self.address = address
        self.udp_limit: int | None = None  # force a smaller UDP limit (e.g. 0: always TCP)
        self._servers: list[Any] = []
        self.port = 0
        self._start()

    # -- server lifecycle -------------------------------------------------------------------

    def _start(self) -> None:
        last_error: OSError | None = None
        for _ in range(20):
            udp = tcp = None
            try:
                udp = DNSServer(
                    self, address=self.address, port=0, handler=_Handler, logger=_QuietLogger()
                )
                port = int(udp.server.server_address[1])
                tcp = DNSServer(
                    self,
                    address=self.address,
                    port=port,
                    tcp=True,
                    handler=_Handler,
                    logger=_QuietLogger(),
                )
            except OSError as exc:  # the UDP port's TCP twin is taken: try another port
                last_error = exc
                if udp is not None:
                    udp.server.server_close()
                continue
            for server in (udp, tcp):
                server.server.zone = self
                server.thread = threading.Thread(
                    target=server.server.serve_forever,
                    kwargs={"poll_interval": 0.05},  # quick shutdown at teardown
                    name=f"dnszone-{port}",
                    daemon=True,
                )
                server.thread.start()
            self._servers = [udp, tcp]
            self.port = port
            return
        raise RuntimeError(f"no free UDP+TCP port pair on {self.address}: {last_error}")

    def stop(self) -> None:
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()
            server.thread.join(timeout=5)
        self._servers = []

    def __enter__(self) -> DnsZone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def nameserver(self) -> str:
        """`HOST:PORT`, as accepted by `--resolver` and DnsPythonResolver."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    # -- zone editing -----------------------------------------------------------------------

    def _add(self, name: str, rtype: int, rdata: Any) -> None:
        with self._lock:
            self._records.setdefault(_key(name), []).append((rtype, rdata))

    def add_txt(self, name: str, text: str | bytes) -> None:
        """Add one TXT record; long text is split into 255-byte strings."""
        self._add(name, QTYPE.TXT, TXT(split_txt(text)))

    def add_txt_strings(self, name: str, strings: list[bytes]) -> None:
        """Add one TXT record made of exactly these character-strings."""
        self._add(name, QTYPE.TXT, TXT(strings))

    def add_mx(self, name: str, preference: int, exchange: str) -> None:
        self._add(name, QTYPE.MX, MX(exchange.rstrip(".") + ".", preference))

    def add_a(self, name: str, address: str) -> None:
        self._add(name, QTYPE.A, A(address))

    def add_aaaa(self, name: str, address: str) -> None:
        self._add(name, QTYPE.AAAA, AAAA(address))

    def add_cname(self, name: str, target: str) -> None:
        self._add(name, QTYPE.CNAME, CNAME(target.rstrip(".") + "."))

    def remove(self, name: str, rtype: str | None = None) -> None:
        """Remove the records of `name` (of type `rtype`, e.g. "TXT", or all)."""
        with self._lock:
            key = _key(name)
            if rtype is None:
                self._records.pop(key, None)
            else:
                code = getattr(QTYPE, rtype.upper())
                kept = [r for r in self._records.get(key, []) if r[0] != code]
                if kept:
                    self._records[key] = kept
                else:
                    self._records.pop(key, None)

    def drop(self, name: str) -> None:
        """Never answer queries for `name` (clients time out)."""
        with self._lock:
            self._drop.add(_key(name))

    def fail(self, name: str, rcode: str = "SERVFAIL") -> None:
        """Answer queries for `name` with this error rcode (SERVFAIL, REFUSED, ...)."""
        with self._lock:
            self._fail[_key(name)] = getattr(RCODE, rcode.upper())

    def clear(self) -> None:
        """Forget every record, drop and failure (the query log too)."""
        with self._lock:
            self._records.clear()
            self._drop.clear()
            self._fail.clear()
            self._queries.clear()

    @property
    def queries(self) -> list[Query]:
        with self._lock:
            return list(self._queries)

    # -- answering (called from the server threads) -----------------------------------------

    def _record_query(self, query: Query) -> None:
        with self._lock:
            self._queries.append(query)

    def _dropped(self, name: str) -> bool:
        with self._lock:
            return name in self._drop

    def resolve(self, request: Any, handler: Any) -> Any:
        """Answer `request` from the zone (dnslib's resolver interface)."""
        reply = request.reply()
        qtype = request.q.qtype
        name = _key(str(request.q.qname))
        with self._lock:
            if name in self._fail:
                reply.header.rcode = self._fail[name]
                return reply
            seen: set[str] = set()
            while True:
                records = self._records.get(name)
                if records is None:
                    if not seen:  # a CNAME pointing outside the zone just ends the chain
                        reply.header.rcode = RCODE.NXDOMAIN
                    return reply
                seen.add(name)
                cname = [r for r in records if r[0] == QTYPE.CNAME]
                if cname and qtype != QTYPE.CNAME:
                    reply.add_answer(RR(DNSLabel(name), QTYPE.CNAME, rdata=cname[0][1], ttl=_TTL))
                    name = _key(str(cname[0][1].label))
                    if name in seen:
                        return reply
                    continue
                for rtype, rdata in records:
                    if rtype == qtype or qtype == QTYPE.ANY:
                        reply.add_answer(RR(DNSLabel(name), rtype, rdata=rdata, ttl=_TTL))
                return reply


@pytest.fixture
def dns_zone() -> Iterator[DnsZone]:
    """A fresh DNS server on 127.0.0.1 with an empty zone, stopped at teardown."""
    zone = DnsZone()
    try:
        yield zone
    finally:
        zone.stop()


def dkim_dnsfunc(zone: DnsZone, timeout: float = 5.0) -> Any:
    """A `dnsfunc` for dkimpy's verify that looks TXT records up in `zone` over the network
    (dnspython, synchronous): dkimpy wants the record's strings joined, as bytes."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [zone.address]
    resolver.port = zone.port
    resolver.lifetime = timeout

    def dnsfunc(name: bytes | str, timeout: float = 5.0) -> bytes | None:
        text = name.decode() if isinstance(name, bytes) else name
        try:
            answer = resolver.resolve(text, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        for rdata in answer:
            return b"".join(rdata.strings)
        return None

    return dnsfunc


# -- DKIM verification with dkimpy ------------------------------------------------------------


def _ensure_dkimpy_ed25519() -> None:
    """dkimpy verifies Ed25519 through PyNaCl. Where PyNaCl is absent, give dkimpy a stand-in
    `nacl` that does the one Ed25519 verification it asks for with `cryptography`; everything
    DKIM (tag parsing, canonicalisation, hashing, key records) stays dkimpy's own."""
    import dkim

    try:
        import nacl.signing  # type: ignore[import-not-found]

        return
    except ImportError:
        pass
    if hasattr(dkim, "nacl"):
        return

    import base64
    import types

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    class NaclValueError(ValueError):
        pass

    class BadSignatureError(Exception):
        pass

    class Base64Encoder:
        @staticmethod
        def decode(data: bytes) -> bytes:
            return base64.b64decode(data)

    class VerifyKey:
        def __init__(self, key: bytes, encoder: type[Base64Encoder] = Base64Encoder) -> None:
            raw = encoder.decode(key)
            if len(raw) != 32:
                raise NaclValueError("an Ed25519 public key is 32 bytes")
            self._key = Ed25519PublicKey.from_public_bytes(raw)

        def verify(self, message: bytes, signature: bytes) -> bytes:
            try:
                self._key.verify(signature, message)
            except InvalidSignature:
                raise BadSignatureError("signature was forged or corrupt") from None
            return message

    nacl = types.ModuleType("nacl")
    nacl.signing = types.SimpleNamespace(VerifyKey=VerifyKey)  # type: ignore[attr-defined]
    nacl.encoding = types.SimpleNamespace(Base64Encoder=Base64Encoder)  # type: ignore[attr-defined]
    nacl.exceptions = types.SimpleNamespace(  # type: ignore[attr-defined]
        ValueError=NaclValueError, BadSignatureError=BadSignatureError
    )
    dkim.nacl = nacl


def dkimpy_verify(message: bytes, zone: DnsZone) -> bool:
    """Verify the first DKIM-Signature of `message` with dkimpy, looking the key up in `zone`
    through the network. Errors (bad key record, malformed signature) count as failure."""
    import dkim

    _ensure_dkimpy_ed25519()
    return bool(dkim.verify(message, dnsfunc=dkim_dnsfunc(zone)))
