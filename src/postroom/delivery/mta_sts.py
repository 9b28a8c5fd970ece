"""MTA-STS (RFC 8461): the policies of destinations that ask for verified TLS.

A domain publishes `_mta-sts.<domain> TXT "v=STSv1; id=..."` and serves its policy at
`https://mta-sts.<domain>/.well-known/mta-sts.txt`:

    version: STSv1
    mode: enforce            (or testing, or none)
    mx: mail.example.com
    mx: *.example.net        (a wildcard stands for exactly one leftmost label)
    max_age: 604800          (seconds the policy may be cached, at most 31557600)

`MtaSts.lookup(domain)` gives the policy to apply to a delivery, following §3.3 and §5.1:

* The TXT record is read through the injected resolver (at most every `recheck` seconds per
  domain; between, the answer in memory is used). Several `v=STSv1` records, or an invalid one,
  count as none.
* When the record's id differs from the cached policy's, or there is no cached policy, or it
  has expired, or less than a quarter of its max_age is left, the policy is fetched (through
  the injected `PolicyFetcher`), validated and stored (`PolicyStore`: in the database, so
  it survives restarts).
* When no live policy can be discovered (no record, a DNS failure, a failed fetch) but a cached
  one has not expired, the cached one applies (§3.3): an attacker removing the record or
  blocking the policy host cannot switch enforcement off. Without either, the domain has no
  policy, and a failed fetch is remembered as the reason (TLS-RPT's `sts-policy-fetch-error`,
  `sts-policy-invalid` or `sts-webpki-invalid`).

The worker applies the policy (delivery/worker.py): in `enforce` mode only MX hosts matching
the policy's `mx` patterns are used, over TLS with a certificate valid for the MX host name;
in `testing` mode the same checks run, their failures are recorded and the mail goes anyway.

The fetcher resolves `mta-sts.<domain>` through the injected resolver (public addresses only,
unless private ones are allowed for tests and intranets), connects to the address it checked,
verifies the certificate for the policy host with its TLS context (the system's trust store;
a test CA in tests), follows no redirect, needs a 200 answer of type text/plain and reads at
most 64 KiB.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

import httpx

from postroom.core.addresses import is_public_address
from postroom.core.clock import Clock
from postroom.dns.resolver import DnsError, Resolver

log = logging.getLogger("postroom.delivery.mta_sts")

Mode = Literal["enforce", "testing", "none"]
MAX_AGE_LIMIT = 31_557_600  # RFC 8461 §3.2: at most a year
MAX_POLICY_BYTES = 64 * 1024  # §3.3: senders may limit the policy's size (64 KiB suggested)
POLICY_PATH = "/.well-known/mta-sts.txt"

_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_MX_PATTERN = re.compile(
    r"(\*\.)?([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*\.?"
)


class PolicyError(Exception):
    """A policy could not be had: `result_type` is RFC 8460's name for the reason."""

    def __init__(self, result_type: str, text: str) -> None:
        super().__init__(text)
        self.result_type = result_type
        self.text = text


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated policy of `domain`, as fetched at `fetched` under the TXT record's `id`."""

    domain: str
    id: str
    mode: Mode
    mx: tuple[str, ...]
    max_age: int
    text: str
    fetched: datetime

    @property
    def expires(self) -> datetime:
        return self.fetched + timedelta(seconds=self.max_age)

    def matches(self, host: str) -> bool:
        """Whether MX host `host` is one of the policy's (§4.1: a `*.` pattern matches one
        leftmost label, not the parent domain and not two labels)."""
        name = host.strip().rstrip(".").lower()
        for pattern in self.mx:
            if pattern.startswith("*."):
                suffix = pattern[1:]  # ".example.com"
                head = name[: -len(suffix)] if name.endswith(suffix) else ""
                if head and "." not in head:
                    return True
            elif name == pattern:
                return True
        return False

    def describe(self) -> str:
        return f"MTA-STS policy of {self.domain} (mode {self.mode}, id {self.id})"

    def lines(self) -> list[str]:
        """The policy text's lines, as TLS-RPT's `policy-string` wants them."""
        return [line.strip() for line in self.text.splitlines() if line.strip()]


def parse_record(texts: list[str]) -> str | None:
    """The id of the one valid `v=STSv1` record among a name's TXT records, else None (§3.1:
    records not beginning with v=STSv1; are ignored; more than one, or an invalid one, is no
    policy)."""
    candidates = [t for t in texts if re.match(r"v\s*=\s*STSv1\s*(;|$)", t)]
    if len(candidates) != 1:
        return None
    fields: dict[str, str] = {}
    for item in candidates[0].split(";"):
        if not item.strip():
            continue
        key, eq, value = item.partition("=")
        if not eq:
            return None
        fields.setdefault(key.strip(), value.strip())
    found = fields.get("id", "")
    return found if _ID.fullmatch(found) else None


def parse_policy(domain: str, policy_id: str, text: str, fetched: datetime) -> Policy:
    """Validate a policy body (§3.2). Raises PolicyError("sts-policy-invalid")."""
    fields: dict[str, str] = {}
    mx: list[str] = []
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise PolicyError("sts-policy-invalid", f"policy line {line[:80]!r} is not KEY: VALUE")
        key, value = key.strip(), value.strip()
        if key == "mx":
            if not _MX_PATTERN.fullmatch(value):
                raise PolicyError("sts-policy-invalid", f"mx {value[:80]!r} is not a host name")
            mx.append(value.rstrip(".").lower())
        else:
            fields.setdefault(key, value)  # unknown keys are ignored (§3.2)
    if fields.get("version") != "STSv1":
        raise PolicyError("sts-policy-invalid", "the policy's version is not STSv1")
    mode = fields.get("mode", "")
    if mode not in ("enforce", "testing", "none"):
        raise PolicyError(
            "sts-policy-invalid", f"mode {mode[:40]!r}: expected enforce, testing or none"
        )
    age = fields.get("max_age", "")
    if not age.isdigit() or len(age) > 10 or int(age) > MAX_AGE_LIMIT:
        raise PolicyError(
            "sts-policy-invalid", f"max_age {age[:40]!r}: expected 0 to {MAX_AGE_LIMIT} seconds"
        )
    if mode != "none" and not mx:
        raise PolicyError("sts-policy-invalid", f"a {mode} policy without mx lines")
    valid_mode: Mode = mode  # type: ignore[assignment]  # checked above
    return Policy(domain, policy_id, valid_mode, tuple(dict.fromkeys(mx)), int(age), text, fetched)


# Fetching -------------------------------------------------------------------------------------


class PolicyFetcher(Protocol):
    async def fetch(self, domain: str) -> str:
        """The policy text of `domain`. Raises PolicyError."""
        ...


Resolve = Callable[[str], Awaitable[list[str]]]


def webpki_failure(exc: BaseException) -> bool:
    """Whether an HTTPS failure was the server's certificate (not the network)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(seen) or "certificate verify failed" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class HttpsPolicyFetcher:
    """Fetches policies over HTTPS with `client` (an httpx client whose TLS context verifies
    certificates: the system's trust store, or a test CA), resolving the policy host through
    `resolver`. `port` is 443 but for tests."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        resolver: Resolver,
        *,
        port: int = 443,
        allow_private: bool = False,
        timeout: float = 20.0,
    ) -> None:
        self._client = client
        self._resolver = resolver
        self.port = port
        self.allow_private = allow_private
        self.timeout = timeout

    async def _address(self, host: str) -> str:
        try:
            found = [*await self._resolver.a(host), *await self._resolver.aaaa(host)]
        except DnsError as exc:
            raise PolicyError("sts-policy-fetch-error", f"cannot resolve {host}: {exc}") from exc
        usable = [a for a in found if self.allow_private or is_public_address(a)]
        if not usable:
            why = "has no address" if not found else "has only non-public addresses"
            raise PolicyError("sts-policy-fetch-error", f"{host} {why}")
        return usable[0]

    async def fetch(self, domain: str) -> str:
        host = f"mta-sts.{domain}"
        address = await self._address(host)
        literal = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
        url = f"https://{literal}:{self.port}{POLICY_PATH}"
        headers = {"Host": host if self.port == 443 else f"{host}:{self.port}"}
        try:
            async with asyncio.timeout(self.timeout):
                async with self._client.stream(
                    "GET", url, headers=headers, extensions={"sni_hostname": host}
                ) as response:
                    data = bytearray()
                    async for chunk in response.aiter_raw():
                        data += chunk
                        if len(data) > MAX_POLICY_BYTES:
                            raise PolicyError(
                                "sts-policy-fetch-error",
                                f"the policy at {host} is larger than {MAX_POLICY_BYTES} octets",
                            )
                    status = response.status_code
                    media = response.headers.get("content-type", "").split(";")[0].strip()
        except TimeoutError:
            raise PolicyError(
                "sts-policy-fetch-error", f"{host} did not answer within {self.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            kind = "sts-webpki-invalid" if webpki_failure(exc) else "sts-policy-fetch-error"
            raise PolicyError(kind, f"fetching the policy from {host}: {exc}"[:300]) from None
        if status != 200:
            raise PolicyError("sts-policy-fetch-error", f"{host} answered HTTP {status}")
        if media.lower() != "text/plain":
            raise PolicyError(
                "sts-policy-invalid", f"{host} served {media or 'no media type'}, not text/plain"
            )
        return bytes(data).decode("utf-8", "replace")


# Caching --------------------------------------------------------------------------------------


class PolicyStore(Protocol):
    """Where policies are kept across restarts (storage/tls_reports.py)."""

    def load(self) -> list[tuple[str, str, str, datetime]]:
        """Every stored policy: (domain, id, text, fetched)."""
        ...

    def save(self, domain: str, policy_id: str, text: str, fetched: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class Lookup:
    """What applies to a delivery to a domain: its policy (None: none, or mode none counts as
    none for delivery), and why a live policy could not be had, if it could not."""

    policy: Policy | None
    error: PolicyError | None = None

    @property
    def active(self) -> Policy | None:
        """The policy when it asks for something (enforce or testing)."""
        return self.policy if self.policy is not None and self.policy.mode != "none" else None


@dataclass(slots=True)
class _Known:
    checked: float = float("-inf")  # monotonic time of the last TXT lookup
    record_id: str | None = None
    lookup: Lookup = field(default_factory=lambda: Lookup(None))


class MtaSts:
    """Policies of destination domains, discovered, fetched, cached and refreshed."""

    def __init__(
        self,
        resolver: Resolver,
        fetcher: PolicyFetcher,
        store: PolicyStore,
        clock: Clock,
        *,
        recheck: float = 300.0,
    ) -> None:
        self._resolver = resolver
        self._fetcher = fetcher
        self._store = store
        self._clock = clock
        self.recheck = recheck
        self._cache: dict[str, Policy] | None = None
        self._known: dict[str, _Known] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0  # policies fetched (for tests and metrics)

    async def _cached(self) -> dict[str, Policy]:
        if self._cache is None:
            rows = await asyncio.to_thread(self._store.load)
            cache: dict[str, Policy] = {}
            for domain, policy_id, text, fetched in rows:
                try:
                    cache[domain] = parse_policy(domain, policy_id, text, fetched)
                except PolicyError:
                    continue
            self._cache = cache
        return self._cache

    async def lookup(self, domain: str) -> Lookup:
        """The policy that applies to mail for `domain` now (see the module's docstring)."""
        name = domain.strip().rstrip(".").lower()
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            known = self._known.get(name)
            now = self._clock.monotonic()
            if known is not None and now - known.checked < self.recheck:
                policy = known.lookup.policy
                if policy is None or policy.expires > self._clock.now():
                    return known.lookup
            found = await self._discover(name)
            if len(self._known) > 100_000:
                self._known.clear()
                self._locks = {name: lock}
            self._known[name] = found
            return found.lookup

    async def _discover(self, domain: str) -> _Known:
        cache = await self._cached()
        now = self._clock.now()
        cached = cache.get(domain)
        if cached is not None and cached.expires <= now:
            cached = None
        try:
            record_id = parse_record(await self._resolver.txt(f"_mta-sts.{domain}"))
        except DnsError as exc:
            log.info("MTA-STS record of %s not read: %s", domain, exc)
            record_id = None
        checked = self._clock.monotonic()
        if record_id is None:
            return _Known(checked, None, Lookup(cached))
        fresh = cached is not None and cached.id == record_id
        if fresh and cached is not None:
            left = (cached.expires - now).total_seconds()
            if left > cached.max_age / 4:
                return _Known(checked, record_id, Lookup(cached))
        try:
            self.fetches += 1
            text = await self._fetcher.fetch(domain)
            policy = parse_policy(domain, record_id, text, now)
        except PolicyError as exc:
            log.info("MTA-STS policy of %s not fetched: %s", domain, exc.text)
            return _Known(checked, record_id, Lookup(cached, exc))
        cache[domain] = policy
        try:
            await asyncio.to_thread(self._store.save, domain, record_id, text, now)
        except Exception:  # the policy still applies from memory
            log.exception("storing the MTA-STS policy of %s failed", domain)
        return _Known(checked, record_id, Lookup(policy))


# TLS failures in RFC 8460's words ---------------------------------------------------------------


def tls_result_type(stage: str, tls_error: BaseException | None) -> str:
    """RFC 8460 §4.3's result type of a failed TLS negotiation: no STARTTLS (or refused), a
    certificate for another name, expired, or not trusted; anything else `validation-failure`."""
    if tls_error is None:
        return "starttls-not-supported" if stage == "starttls" else "validation-failure"
    if isinstance(tls_error, ssl.SSLCertVerificationError):
        code = tls_error.verify_code
        # X509_V_ERR_HOSTNAME_MISMATCH
        if code == 62 or "hostname mismatch" in str(tls_error).lower():
            return "certificate-host-mismatch"
        if code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
            return "certificate-expired"
        return "certificate-not-trusted"
    return "validation-failure"
