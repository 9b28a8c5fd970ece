"""SPF evaluation (RFC 7208 `check_host()`), through the injected resolver.

`check_host(ip, domain, sender, resolver)` returns one of pass, fail, softfail, neutral, none,
permerror or temperror with an explanation. Supported: the mechanisms all, include, a, mx,
ip4, ip6, exists (ptr never matches, as §5.5 advises against it) with CIDR lengths, the
qualifiers + - ~ ?, the modifiers redirect and exp (exp is not expanded), and the macros
%{s l o d i h v} with digit and r transformers. Limits of §4.6.4: at most 10 mechanisms or
modifiers that cause DNS lookups, at most 2 lookups that find nothing ("void"), at most 10
MX or A names per mx/a mechanism.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from postroom.dns.resolver import DnsError, Resolver

SpfResult = Literal["pass", "fail", "softfail", "neutral", "none", "permerror", "temperror"]
_QUALIFIERS: dict[str, SpfResult] = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
_MAX_LOOKUPS = 10
_MAX_VOID = 2
_MAX_NAMES = 10
_MACRO = re.compile(r"%\{([slodiphcrtv])(\d*)(r?)([.\-+,/_=]*)\}|%%|%_|%-", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SpfOutcome:
    result: SpfResult
    explanation: str
    mechanism: str = ""


class _PermError(Exception):
    pass


class _Evaluation:
    def __init__(self, resolver: Resolver, ip: str, sender: str, helo: str) -> None:
        self.resolver = resolver
        self.ip = ipaddress.ip_address(ip)
        if isinstance(self.ip, ipaddress.IPv6Address) and self.ip.ipv4_mapped is not None:
            self.ip = self.ip.ipv4_mapped
        self.sender = sender
        self.helo = helo
        self.lookups = 0
        self.void = 0

    def count_lookup(self) -> None:
        self.lookups += 1
        if self.lookups > _MAX_LOOKUPS:
            raise _PermError("more than 10 DNS-querying mechanisms")

    def found(self, answers: list[str] | list[tuple[int, str]]) -> None:
        if not answers:
            self.void += 1
            if self.void > _MAX_VOID:
                raise _PermError("more than 2 void DNS lookups")

    def expand(self, text: str, domain: str) -> str:
        local, _, sender_domain = self.sender.rpartition("@")
        values = {
            "s": self.sender,
            "l": local or "postmaster",
            "o": sender_domain or domain,
            "d": domain,
            "i": _dotted(self.ip),
            "h": self.helo,
            "v": "in-addr" if self.ip.version == 4 else "ip6",
            "p": "unknown",
        }

        def replace(match: re.Match[str]) -> str:
            token = match.group(0)
            if token == "%%":
                return "%"
            if token == "%_":
                return " "
            if token == "%-":
                return "%20"
            letter, digits, reverse, delimiters = match.groups()
            value = values.get(letter.lower())
            if value is None:
                raise _PermError(f"macro %{{{letter}}} is not allowed here")
            parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
            if reverse:
                parts.reverse()
            if digits:
                count = int(digits)
                if count == 0:
                    raise _PermError("a macro transformer of 0 labels")
                parts = parts[-count:]
            return ".".join(parts)

        if "%" in _MACRO.sub("", text):
            raise _PermError(f"malformed macro in {text!r}")
        return _MACRO.sub(replace, text)

    async def record(self, domain: str) -> str | None:
        try:
            texts = await self.resolver.txt(domain)
        except DnsError as exc:
            raise _TempError(str(exc)) from exc
        records = [t for t in texts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]
        if len(records) > 1:
            raise _PermError(f"{domain} publishes more than one SPF record")
        return records[0] if records else None

    async def addresses(self, name: str) -> list[str]:
        try:
            found = await (
                self.resolver.a(name) if self.ip.version == 4 else self.resolver.aaaa(name)
            )
        except DnsError as exc:
            raise _TempError(str(exc)) from exc
        return found

    def in_network(self, address: str, cidr4: int, cidr6: int) -> bool:
        try:
            network = ipaddress.ip_network(
                f"{address}/{cidr4 if ':' not in address else cidr6}", strict=False
            )
        except ValueError:
            return False
        return network.version == self.ip.version and self.ip in network

    async def evaluate(self, domain: str, depth: int = 0) -> tuple[SpfResult, str]:
        if depth > _MAX_LOOKUPS:
            raise _PermError("include/redirect loop")
        record = await self.record(domain)
        if record is None:
            return "none", f"{domain} publishes no SPF record"
        redirect = ""
        for term in record.split()[1:]:
            name, eq, value = term.partition("=")
            if eq and re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", name):
                if name.lower() == "redirect":
                    if redirect:
                        raise _PermError("more than one redirect")
                    redirect = value
                continue
            qualifier = term[0] if term[0] in _QUALIFIERS else "+"
            mechanism = term[1:] if term[0] in _QUALIFIERS else term
            if await self.matches(mechanism, domain, depth):
                return _QUALIFIERS[qualifier], f"{term} in the SPF record of {domain}"
        if redirect:
            self.count_lookup()
            target = self.expand(redirect, domain)
            result, why = await self.evaluate(target, depth + 1)
            if result == "none":
                raise _PermError(f"redirect to {target}, which publishes no SPF record")
            return result, why
        return "neutral", f"no mechanism of {domain}'s SPF record matched"

    async def matches(self, mechanism: str, domain: str, depth: int) -> bool:
        kind, _, argument = mechanism.partition(":")
        kind_lower = kind.lower()
        cidr4, cidr6 = 32, 128
        if "/" in kind and kind_lower.split("/")[0] in ("a", "mx"):
            kind_lower, argument = kind_lower.split("/")[0], "/" + kind.split("/", 1)[1]
        if kind_lower in ("a", "mx") and "/" in argument:
            argument, cidr4, cidr6 = _cidrs(argument)
        if kind_lower == "all":
            return True
        if kind_lower == "include":
            self.count_lookup()
            result, _ = await self.evaluate(
                self.expand(_required(argument, kind), domain), depth + 1
            )
            if result == "none":
                raise _PermError(f"include:{argument} publishes no SPF record")
            if result in ("permerror", "temperror"):
                raise _PermError(f"include:{argument} gave {result}")
            return result == "pass"
        if kind_lower == "a":
            self.count_lookup()
            target = self.expand(argument, domain) if argument else domain
            found = await self.addresses(target)
            self.found(found)
            return any(self.in_network(a, cidr4, cidr6) for a in found)
        if kind_lower == "mx":
            self.count_lookup()
            target = self.expand(argument, domain) if argument else domain
            try:
                exchanges = await self.resolver.mx(target)
            except DnsError as exc:
                raise _TempError(str(exc)) from exc
            self.found(exchanges)
            if len(exchanges) > _MAX_NAMES:
                raise _PermError(f"{target} has more than 10 MX records")
            for _, host in exchanges:
                if host != "." and any(
                    self.in_network(a, cidr4, cidr6) for a in await self.addresses(host)
                ):
                    return True
            return False
        if kind_lower in ("ip4", "ip6"):
            try:
                network = ipaddress.ip_network(_required(argument, kind), strict=False)
            except ValueError:
                raise _PermError(f"{mechanism} is not a valid network") from None
            return network.version == self.ip.version and self.ip in network
        if kind_lower == "exists":
            self.count_lookup()
            try:
                found = await self.resolver.a(self.expand(_required(argument, kind), domain))
            except DnsError as exc:
                raise _TempError(str(exc)) from exc
            self.found(found)
            return bool(found)
        if kind_lower == "ptr":
            self.count_lookup()
            return False
        raise _PermError(f"unknown mechanism {mechanism!r}")


class _TempError(Exception):
    pass


def _required(argument: str, kind: str) -> str:
    if not argument:
        raise _PermError(f"{kind} needs an argument")
    return argument


def _cidrs(argument: str) -> tuple[str, int, int]:
    """ "name/24//64", "/24", "//64" -> (name, 24, 64) with the defaults 32 and 128."""
    name = argument.split("/", 1)[0]
    suffix = argument[len(name) :]
    if suffix.startswith("//"):
        four, six = "", suffix[2:]
    else:
        four, _, six = suffix[1:].partition("//")
    try:
        cidr4 = int(four) if four else 32
        cidr6 = int(six) if six else 128
    except ValueError:
        raise _PermError(f"bad CIDR length in {argument!r}") from None
    if not (0 <= cidr4 <= 32 and 0 <= cidr6 <= 128):
        raise _PermError(f"bad CIDR length in {argument!r}")
    return name, cidr4, cidr6


def _dotted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if ip.version == 4:
        return str(ip)
    return ".".join(ip.exploded.replace(":", ""))


async def check_host(
    ip: str, domain: str, sender: str, resolver: Resolver, helo: str = ""
) -> SpfOutcome:
    """The SPF result for mail from `sender` (its domain `domain`) sent by `ip`."""
    try:
        evaluation = _Evaluation(resolver, ip, sender or f"postmaster@{domain}", helo or domain)
    except ValueError:
        return SpfOutcome("permerror", f"{ip!r} is not an IP address")
    try:
        result, why = await evaluation.evaluate(domain.rstrip(".").lower())
    except _PermError as exc:
        return SpfOutcome("permerror", str(exc))
    except _TempError as exc:
        return SpfOutcome("temperror", str(exc))
    return SpfOutcome(result, why)
