"""One webhook request over the injected HTTP client, bounded and kept off internal networks.

* The URL's host is resolved here (the injected `resolve`), and the request goes to the address
  that was checked (the URL rewritten to it, the Host header and TLS server name kept), so a
  name cannot resolve to a public address for the check and to an internal one for the
  connection. Addresses that are not globally reachable (loopback, private, link-local,
  multicast, unspecified, reserved) are refused unless the server allows them
  (`--webhook-allow-private`): a tenant's manager must not make the server probe its own
  network. Redirects are not followed (a 3xx is a failed request).
* The whole request, connection to last byte, is bounded by `timeout` seconds; at most
  `max_response_bytes` of the response are read, the rest is dropped unread.
* Success is a 2xx status. Everything else is an `Attempted` with the status (or None) and a
  sentence saying what went wrong; this never raises for the receiver's faults.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from postroom.core.addresses import is_public_address
from postroom.core.clock import Clock
from postroom.core.webhooks import Attempted
from postroom.dns.host_addresses import Resolve, system_resolve


@dataclass(frozen=True, slots=True)
class SenderSettings:
    timeout: float = 10.0
    max_response_bytes: int = 64 * 1024
    allow_private: bool = False
    user_agent: str = "Postroom-Webhooks/1"


class WebhookSender:
    def __init__(
        self,
        client: httpx.AsyncClient,
        clock: Clock,
        settings: SenderSettings | None = None,
        resolve: Resolve = system_resolve,
    ) -> None:
        self._client = client
        self._clock = clock
        self.settings = settings or SenderSettings()
        self._resolve = resolve

    async def _address(self, host: str, port: int) -> tuple[str | None, str | None]:
        """(address to connect to, None) or (None, why not)."""
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
            addresses = [host]
        except ValueError:
            try:
                addresses = await asyncio.wait_for(self._resolve(host, port), self.settings.timeout)
            except (OSError, TimeoutError) as exc:
                return None, f"cannot resolve {host}: {exc or type(exc).__name__}"
        if not addresses:
            return None, f"{host} has no address"
        if self.settings.allow_private:
            return addresses[0], None
        usable = [a for a in addresses if is_public_address(a)]
        if not usable:
            return None, (
                f"{host} resolves only to loopback, private or reserved addresses "
                f"({', '.join(addresses[:4])}); the server allows them only with "
                "--webhook-allow-private"
            )
        return usable[0], None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempted:
        """POST `body` to `url` with `headers` (plus Content-Type, User-Agent and Host)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        started = self._clock.monotonic()

        def elapsed() -> float:
            return round((self._clock.monotonic() - started) * 1000, 3)

        address, refused = await self._address(host, port)
        if address is None:
            return Attempted(None, elapsed(), refused, "")
        literal = f"[{address}]" if ":" in address else address
        target = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        default_port = port == (443 if secure else 80)
        host_header = (f"[{host}]" if ":" in host else host) + ("" if default_port else f":{port}")
        sent = {
            "Content-Type": "application/json",
            "User-Agent": self.settings.user_agent,
            **headers,
            "Host": host_header,
        }
        extensions = {"sni_hostname": host} if secure else {}
        limit = self.settings.max_response_bytes
        try:
            async with asyncio.timeout(self.settings.timeout):
                async with self._client.stream(
                    "POST", target, content=body, headers=sent, extensions=extensions
                ) as response:
                    data = bytearray()
                    async for chunk in response.aiter_raw():
                        data += chunk[: limit - len(data)]
                        if len(data) >= limit:
                            break
                    status = response.status_code
        except TimeoutError:
            return Attempted(
                None, elapsed(), f"no answer within {self.settings.timeout:g} seconds", ""
            )
        except httpx.HTTPError as exc:
            return Attempted(None, elapsed(), f"{type(exc).__name__}: {exc}"[:500], "")
        text = bytes(data).decode("utf-8", "replace")
        error = None if 200 <= status < 300 else f"HTTP {status}"
        return Attempted(status, elapsed(), error, text)
