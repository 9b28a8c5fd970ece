"""The DNS resolver port and its adapter over dnspython's asynchronous resolver.

Services read DNS only through `Resolver`, so tests point them at a DNS server on 127.0.0.1
(see tests/dnszone.py) and never at the internet.

Answers are plain data: "no such name" and "no record of that type" are both the empty list,
because that is what every caller (MX routing, SPF, DKIM, domain checks) wants to treat alike.
Failures that say nothing about the records (timeouts, SERVFAIL from every server, malformed
names) raise `DnsError`: the caller decides whether that is a temporary failure.
"""

from __future__ import annotations

import ipaddress
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA

from postroom.core.errors import ConfigError, PostroomError

__all__ = [
    "DnsError",
    "DnsPythonResolver",
    "Resolver",
    "parse_nameserver",
]


class DnsError(PostroomError):
    """A DNS query failed without an answer (timeout, servers failing, bad name).

    Treat it as temporary: the records may well exist. `name` and `rdtype` say which query.
    """

    def __init__(self, message: str, name: str = "", rdtype: str = "") -> None:
        super().__init__(message)
        self.name = name
        self.rdtype = rdtype


class Resolver(Protocol):
    """What Postroom asks of DNS. Names are given without a trailing dot (one is accepted)."""

    async def txt(self, name: str) -> list[str]:
        """Each TXT record's strings joined (no separator), decoded as UTF-8 (errors replaced)."""
        ...

    async def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, exchange) sorted by preference then name; exchange lower-cased without
        the trailing dot. A null MX (RFC 7505) is reported as `(0, ".")`."""
        ...

    async def a(self, name: str) -> list[str]:
        """IPv4 addresses as text."""
        ...

    async def aaaa(self, name: str) -> list[str]:
        """IPv6 addresses as text (compressed form)."""
        ...


def parse_nameserver(text: str) -> tuple[str, int]:
    """Parse `HOST`, `HOST:PORT`, `IPv6` or `[IPv6]:PORT` into (address, port).

    The host must be an IP address (a resolver cannot resolve its own name). Raises ConfigError.
    """
    value = text.strip()
    host, port_text = value, ""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ConfigError(f"resolver {text!r}: missing ']' after the IPv6 address")
        host, rest = value[1:end], value[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"resolver {text!r}: expected ':PORT' after ']'")
            port_text = rest[1:]
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"resolver {text!r}: {host!r} is not an IP address (use HOST:PORT, e.g. 127.0.0.1:5353)"
        ) from None
    port = 53
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"resolver {text!r}: port must be a number from 1 to 65535")
        port = int(port_text)
    return str(address), port


class DnsPythonResolver:
    """`Resolver` over dnspython's async resolver.

    `nameserver` is `HOST[:PORT]` (e.g. "127.0.0.1:5353"); None reads the system configuration
    (/etc/resolv.conf). No caching: domain checks must see changes as soon as they are published.
    `timeout` bounds each query as a whole (all servers and retries).
    """

    def __init__(self, nameserver: str | None = None, timeout: float = 5.0) -> None:
        if timeout <= 0:
            raise ConfigError("resolver timeout must be positive")
        if nameserver is None:
            try:
                resolver = dns.asyncresolver.Resolver(configure=True)
            except dns.exception.DNSException as exc:
                raise ConfigError(f"cannot read the system resolver configuration: {exc}") from exc
        else:
            host, port = parse_nameserver(nameserver)
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [host]
            resolver.port = port
        resolver.lifetime = timeout
        resolver.timeout = timeout
        resolver.cache = None
        self._resolver = resolver
        self.nameserver = nameserver

    def __repr__(self) -> str:
        return f"DnsPythonResolver({self.nameserver or 'system'!r})"

    async def _query(
        self, name: str, rdtype: dns.rdatatype.RdataType
    ) -> dns.resolver.Answer | None:
        type_text = dns.rdatatype.to_text(rdtype)
        try:
            qname = dns.name.from_text(name.strip())
        except dns.exception.DNSException as exc:
            raise DnsError(f"invalid DNS name {name!r}: {exc}", name, type_text) from exc
        try:
            return await self._resolver.resolve(
                qname, rdtype, raise_on_no_answer=False, search=False
            )
        except dns.resolver.NXDOMAIN:
            return None
        except dns.resolver.NoAnswer:
            return None
        except dns.exception.Timeout as exc:
            raise DnsError(f"DNS query for {name} {type_text} timed out", name, type_text) from exc
        except dns.resolver.NoNameservers as exc:
            raise DnsError(
                f"DNS query for {name} {type_text} failed: no server answered usefully ({exc})",
                name,
                type_text,
            ) from exc
        except dns.exception.DNSException as exc:
            raise DnsError(
                f"DNS query for {name} {type_text} failed: {exc}", name, type_text
            ) from exc

    async def txt(self, name: str) -> list[str]:
        answer = await self._query(name, dns.rdatatype.TXT)
        if answer is None or answer.rrset is None:
            return []
        out = []
        for rdata in answer.rrset:
            assert isinstance(rdata, TXT)
            out.append(b"".join(rdata.strings).decode("utf-8", errors="replace"))
        return out

    async def mx(self, name: str) -> list[tuple[int, str]]:
        answer = await self._query(name, dns.rdatatype.MX)
        if answer is None or answer.rrset is None:
            return []
        out = []
        for rdata in answer.rrset:
            assert isinstance(rdata, MX)
            if rdata.exchange == dns.name.root:
                host = "."
            else:
                host = rdata.exchange.to_text(omit_final_dot=True).lower()
            out.append((int(rdata.preference), host))
        return sorted(out)

    async def a(self, name: str) -> list[str]:
        answer = await self._query(name, dns.rdatatype.A)
        if answer is None or answer.rrset is None:
            return []
        out = []
        for rdata in answer.rrset:
            assert isinstance(rdata, A)
            out.append(str(rdata.address))
        return out

    async def aaaa(self, name: str) -> list[str]:
        answer = await self._query(name, dns.rdatatype.AAAA)
        if answer is None or answer.rrset is None:
            return []
        out = []
        for rdata in answer.rrset:
            assert isinstance(rdata, AAAA)
            out.append(str(ipaddress.IPv6Address(rdata.address)))
        return out
