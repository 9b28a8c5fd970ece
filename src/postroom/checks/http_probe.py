"""The link check's HTTP client: one request per call, status line and headers only.

It asks with HEAD (and with GET when the server refuses HEAD with 405 or 501), reads at most
MAX_HEAD bytes of status line and headers, never a body, and closes the connection. The host
name is resolved here (through --resolver when it is set, else the system's resolver) and
every address checked before connecting to that very address: a
loopback, private, link-local or otherwise non-public one is refused (LinkUnreachable) unless
`allow_private` is set (--link-check-allow-private), so that the check cannot be used to
reach the server's own network, or another tenant's services, from a message's links.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

from postroom import __version__
from postroom.checks.links import Hop
from postroom.core.addresses import is_public_address
from postroom.core.errors import LinkUnreachable
from postroom.dns.host_addresses import Resolve, system_resolve
from postroom.dns.resolver import DnsError

MAX_HEAD = 16 * 1024
USER_AGENT = f"Postroom/{__version__} link check"


class HttpProbe:
    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolve: Resolve = system_resolve,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolve = resolve
        self.tls = tls or ssl.create_default_context()

    async def __call__(self, url: str) -> Hop:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise LinkUnreachable(f"not an http(s) URL: {url}")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise LinkUnreachable(f"bad port in {url}") from None
        host = parts.hostname
        address = await self._address(host, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        hop = await self._request("HEAD", scheme, host, address, port, target)
        if hop.status in (405, 501):
            hop = await self._request("GET", scheme, host, address, port, target)
        return hop

    async def _address(self, host: str, port: int) -> str:
        try:
            addresses = await self.resolve(host, port)
        except (OSError, UnicodeError, DnsError) as exc:
            raise LinkUnreachable(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise LinkUnreachable(f"{host} has no address")
        if not self.allow_private:
            private = [a for a in addresses if not is_public_address(a)]
            if private:
                raise LinkUnreachable(
                    f"refused: {host} is at {private[0]}, not a public address "
                    "(--link-check-allow-private allows it)"
                )
        return addresses[0]

    async def _request(
        self, method: str, scheme: str, host: str, address: str, port: int, target: str
    ) -> Hop:
        try:
            name = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise LinkUnreachable(f"bad host name {host!r}") from None
        default = 443 if scheme == "https" else 80
        host_header = name if port == default else f"{name}:{port}"
        if ":" in name:
            host_header = f"[{name}]" if port == default else f"[{name}]:{port}"
        try:
            reader, writer = await asyncio.open_connection(
                address,
                port,
                ssl=self.tls if scheme == "https" else None,
                server_hostname=name if scheme == "https" else None,
                limit=MAX_HEAD,
            )
        except (OSError, ssl.SSLError) as exc:
            raise LinkUnreachable(f"cannot connect to {host}:{port}: {exc}") from None
        try:
            writer.write(
                f"{method} {target} HTTP/1.1\r\nHost: {host_header}\r\n"
                f"User-Agent: {USER_AGENT}\r\nAccept: */*\r\nConnection: close\r\n\r\n".encode(
                    "ascii", "replace"
                )
            )
            await writer.drain()
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                raise LinkUnreachable(f"the answer's headers exceed {MAX_HEAD} bytes") from None
            except asyncio.IncompleteReadError:
                raise LinkUnreachable(
                    "the server closed the connection without an answer"
                ) from None
        except (OSError, ssl.SSLError) as exc:
            raise LinkUnreachable(f"request to {host}:{port} failed: {exc}") from None
        finally:
            writer.close()
        return parse_head(head)


def parse_head(head: bytes) -> Hop:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or len(code) != 3 or not code.isdigit():
        raise LinkUnreachable(f"not an HTTP answer: {lines[0][:80]!r}")
    location = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "location":
            location = value.strip()
    return Hop(int(code), reason.strip(), location)
