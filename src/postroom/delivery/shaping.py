"""Traffic shaping: how hard the MTA may push each destination site.

A **site** is the set of MX hosts a domain resolves to (KumoMTA's "MX rollup"): every domain
hosted by Google's MX hosts shares one site and one set of limits, whatever the recipient
domain is called. Limits apply per site and source (IP pool address):

* `connections`: concurrent connections;
* `messages_per_connection`: messages sent over one connection before it is closed;
* `message_rate`, `connection_rate`: e.g. "100/s", "600/m", "20000/h" (GCRA, with a burst).

Rules come from a TOML file (`shaping.toml` beside this module holds the defaults shipped with
Postroom; `--shaping FILE` adds to or overrides it): a `[default]` table and `[site.NAME]`
tables matched by MX host name suffix (`mx_suffix = ["google.com", "googlemail.com"]`). The
first site rule whose suffix matches any MX host of the site applies, merged over the default.

Automatic reaction: when a site answers with 421, a 4.7.x "try again later / rate limited"
reply, or refuses connections, `Shaper.back_off` suspends it for a while and halves its
concurrency (never below 1); the concurrency recovers by one per successful connection.
Times are plain monotonic seconds passed in by the caller (the injected clock).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from postroom.core.errors import ConfigError

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_UNITS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(text: str) -> float:
    """'100/s', '600/m', '20000/h', '1/d' -> events per second. Raises ConfigError."""
    match = _RATE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"rate {text!r}: expected COUNT/UNIT such as 100/s, 600/m or 20000/h")
    return float(match.group(1)) / _UNITS[match.group(2)]


class Gcra:
    """Generic cell rate algorithm: `rate` events per second with bursts of `burst` events."""

    __slots__ = ("_interval", "_tat", "_tolerance")

    def __init__(self, rate: float, burst: int = 1) -> None:
        if rate <= 0 or burst < 1:
            raise ConfigError("a rate must be positive and a burst at least 1")
        self._interval = 1.0 / rate
        self._tolerance = self._interval * (burst - 1)
        self._tat = 0.0  # theoretical arrival time

    def wait(self, now: float) -> float:
        """Seconds until an event is allowed (0 when allowed now; then it is counted)."""
        tat = max(self._tat, now)
        allowed_at = tat - self._tolerance
        if now < allowed_at:
            return allowed_at - now
        self._tat = tat + self._interval
        return 0.0


@dataclass(frozen=True, slots=True)
class SiteLimits:
    connections: int = 10
    messages_per_connection: int = 100
    message_rate: str = ""  # "" = unlimited
    connection_rate: str = ""
    burst: int = 10
    suspend_seconds: float = 300.0  # how long a back-off suspends the site

    def __post_init__(self) -> None:
        if self.connections < 1 or self.messages_per_connection < 1 or self.burst < 1:
            raise ConfigError("connections, messages_per_connection and burst must be at least 1")
        for rate in (self.message_rate, self.connection_rate):
            if rate:
                parse_rate(rate)
        if self.suspend_seconds < 0:
            raise ConfigError("suspend_seconds must not be negative")


_LIMIT_KEYS = frozenset(f.name for f in fields(SiteLimits))


@dataclass(frozen=True, slots=True)
class SiteRule:
    name: str
    mx_suffixes: tuple[str, ...]
    settings: Mapping[str, Any]

    def matches(self, mx_hosts: Iterable[str]) -> bool:
        return any(
            host == suffix or host.endswith("." + suffix)
            for host in mx_hosts
            for suffix in self.mx_suffixes
        )


@dataclass(frozen=True, slots=True)
class ShapingRules:
    default: Mapping[str, Any] = field(default_factory=dict)
    sites: tuple[SiteRule, ...] = ()

    def limits_for(self, mx_hosts: Iterable[str]) -> tuple[str, SiteLimits]:
        """(rule name, limits) for a site's MX hosts."""
        hosts = [h.lower().rstrip(".") for h in mx_hosts]
        base = SiteLimits(**self.default)
        for rule in self.sites:
            if rule.matches(hosts):
                return rule.name, replace(base, **rule.settings)
        return "default", base

    def merged(self, other: ShapingRules) -> ShapingRules:
        """These rules with `other` laid over them (its site rules first)."""
        default = {**self.default, **other.default}
        names = {rule.name for rule in other.sites}
        sites = other.sites + tuple(r for r in self.sites if r.name not in names)
        return ShapingRules(default, sites)


def _limits_table(table: Any, where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"shaping: [{where}] must be a table")
    settings = {k.replace("-", "_"): v for k, v in table.items() if k != "mx_suffix"}
    unknown = set(settings) - _LIMIT_KEYS
    if unknown:
        raise ConfigError(f"shaping: [{where}] has unknown keys: {', '.join(sorted(unknown))}")
    try:
        SiteLimits(**settings)
    except TypeError as exc:
        raise ConfigError(f"shaping: [{where}]: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"shaping: [{where}]: {exc}") from None
    return settings


def parse_rules(text: str, source: str = "shaping") -> ShapingRules:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    default = _limits_table(data.get("default", {}), "default")
    sites = []
    site_tables = data.get("site", {})
    if not isinstance(site_tables, dict):
        raise ConfigError(f"{source}: [site.NAME] tables expected")
    for name, table in site_tables.items():
        settings = _limits_table(table, f"site.{name}")
        suffixes = table.get("mx_suffix", [])
        if isinstance(suffixes, str):
            suffixes = [suffixes]
        if not suffixes or not all(isinstance(s, str) and s for s in suffixes):
            raise ConfigError(f'{source}: [site.{name}] needs mx_suffix = ["host.suffix", ...]')
        sites.append(SiteRule(name, tuple(s.lower().strip(".") for s in suffixes), settings))
    unknown = set(data) - {"default", "site"}
    if unknown:
        raise ConfigError(f"{source}: unknown tables: {', '.join(sorted(unknown))}")
    return ShapingRules(default, tuple(sites))


def load_rules(extra: str | Path | None = None) -> ShapingRules:
    """The shipped defaults, with the file `extra` laid over them."""
    shipped = resources.files("postroom.delivery").joinpath("shaping.toml").read_text("utf-8")
    rules = parse_rules(shipped, "shipped shaping.toml")
    if extra:
        path = Path(extra)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"--shaping {path}: {exc.strerror}") from None
        rules = rules.merged(parse_rules(text, str(path)))
    return rules


def site_name(mx_hosts: Iterable[str]) -> str:
    """The site of a set of MX hosts: their sorted names, so equal sets share a site."""
    return ",".join(sorted({h.lower().rstrip(".") for h in mx_hosts}))


@dataclass(slots=True)
class _SiteState:
    limits: SiteLimits
    rule: str
    concurrency: int
    active: int = 0
    suspended_until: float = 0.0
    reason: str = ""
    message_rate: Gcra | None = None
    connection_rate: Gcra | None = None


@dataclass(frozen=True, slots=True)
class SiteStatus:
    site: str
    source: str
    rule: str
    active: int
    concurrency: int
    suspended_for: float
    reason: str


class Shaper:
    """Per (site, source) limits and back-off, in memory, for one delivery process."""

    def __init__(self, rules: ShapingRules) -> None:
        self._rules = rules
        self._sites: dict[tuple[str, str], _SiteState] = {}

    def _state(self, site: str, source: str) -> _SiteState:
        key = (site, source)
        state = self._sites.get(key)
        if state is None:
            rule, limits = self._rules.limits_for(site.split(","))
            state = _SiteState(limits, rule, limits.connections)
            if limits.message_rate:
                state.message_rate = Gcra(parse_rate(limits.message_rate), limits.burst)
            if limits.connection_rate:
                state.connection_rate = Gcra(parse_rate(limits.connection_rate), limits.burst)
            self._sites[key] = state
        return state

    def limits(self, site: str, source: str) -> SiteLimits:
        return self._state(site, source).limits

    def suspension(self, site: str, source: str, now: float) -> tuple[float, str]:
        """(seconds until the site's suspension ends, why it was suspended), or (0, "")."""
        state = self._state(site, source)
        if now < state.suspended_until:
            return state.suspended_until - now, state.reason
        return 0.0, ""

    def open_connection(
        self, site: str, source: str, now: float, *, ignore_suspension: bool = False
    ) -> float:
        """0 when a new connection may open now (it is counted; call `close_connection`
        later), the seconds to wait, or -1 when the site's connections are all in use (wait
        for one to close). `ignore_suspension`: a delivery already walking the site's MX list
        (its connection to an earlier host failed) may try the next host."""
        state = self._state(site, source)
        if now < state.suspended_until and not ignore_suspension:
            return state.suspended_until - now
        if state.active >= state.concurrency:
            return -1.0
        if state.connection_rate is not None:
            wait = state.connection_rate.wait(now)
            if wait > 0:
                return wait
        state.active += 1
        return 0.0

    def close_connection(self, site: str, source: str, *, succeeded: bool) -> None:
        state = self._state(site, source)
        state.active = max(0, state.active - 1)
        if succeeded and state.concurrency < state.limits.connections:
            state.concurrency += 1

    def send_message(
        self, site: str, source: str, now: float, *, ignore_suspension: bool = False
    ) -> float:
        """0 when a message may be sent now (it is counted), else the seconds to wait."""
        state = self._state(site, source)
        if now < state.suspended_until and not ignore_suspension:
            return state.suspended_until - now
        if state.message_rate is None:
            return 0.0
        return state.message_rate.wait(now)

    def back_off(self, site: str, source: str, now: float, reason: str) -> None:
        """The site pushed back: suspend it and halve its concurrency."""
        state = self._state(site, source)
        state.suspended_until = max(state.suspended_until, now + state.limits.suspend_seconds)
        state.concurrency = max(1, state.concurrency // 2)
        state.reason = reason

    def status(self, now: float) -> list[SiteStatus]:
        return [
            SiteStatus(
                site,
                source,
                s.rule,
                s.active,
                s.concurrency,
                max(0.0, s.suspended_until - now),
                s.reason if now < s.suspended_until else "",
            )
            for (site, source), s in sorted(self._sites.items())
        ]


_BACK_OFF = re.compile(
    r"rate.?limit|too many (connections|messages)|try (again )?later|throttl|temporarily deferred"
    r"|reduce your send rate|too fast",
    re.IGNORECASE,
)


def is_push_back(code: int, enhanced: str, text: str) -> bool:
    """Whether a reply asks the sender to slow down (rather than refusing one recipient)."""
    if code == 421:
        return True
    return 400 <= code < 500 and (enhanced.startswith("4.7.") or bool(_BACK_OFF.search(text)))
