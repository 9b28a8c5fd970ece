"""IP pools: named sets of local source addresses, each with the EHLO name it announces.

A project delivers from its pool (a dedicated IP in Amazon SES terms): every connection of its
deliveries binds to one of the pool's addresses and greets with that address's name, which
should be the name its PTR record gives (forward-confirmed reverse DNS is what receivers
check). Pools are server configuration (`--ip-pools`), since the addresses belong to the
machine; the assignment is a project's delivery setting (`ip_pool`, table
`delivery_settings`), `--default-ip-pool` for projects without one. No pool at all: the
system picks the source address and the EHLO name is `--hostname`.

Syntax of `--ip-pools`: pools separated by `;`, each `NAME=MEMBER MEMBER ...` (members
separated by spaces or commas), a member `ADDRESS` or `ADDRESS/EHLO-NAME`, e.g.
`dedicated=192.0.2.10/mail1.example.com 192.0.2.11/mail2.example.com; shared=192.0.2.20`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from postroom.core.clock import Clock
from postroom.core.errors import ConfigError, PostroomError

if TYPE_CHECKING:
    from postroom.config import Config

log = logging.getLogger("postroom.delivery")

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)


@dataclass(frozen=True, slots=True)
class PoolMember:
    address: str  # a local IP address to bind to
    ehlo: str  # the name it announces


@dataclass(frozen=True, slots=True)
class IpPool:
    name: str
    members: tuple[PoolMember, ...]


def parse_ip_pools(text: str, default_ehlo: str) -> dict[str, IpPool]:
    """`--ip-pools` -> {name: pool}. Raises ConfigError naming the option."""
    pools: dict[str, IpPool] = {}
    for item in text.split(";"):
        if not item.strip():
            continue
        name, eq, rest = item.partition("=")
        name = name.strip().lower()
        if not eq or not _NAME.match(name):
            raise ConfigError(
                f"--ip-pools: expected NAME=ADDRESS[/EHLO] ... (name of letters, digits, - "
                f"and _), got {item.strip()!r}"
            )
        if name in pools:
            raise ConfigError(f"--ip-pools: pool {name!r} is given twice")
        members: list[PoolMember] = []
        for word in re.split(r"[,\s]+", rest.strip()):
            if not word:
                continue
            address, _, ehlo = word.partition("/")
            try:
                address = str(ipaddress.ip_address(address))
            except ValueError:
                raise ConfigError(
                    f"--ip-pools: pool {name!r}: {address!r} is not an IP address"
                ) from None
            ehlo = (ehlo or default_ehlo).strip().lower().rstrip(".")
            if not _HOSTNAME.match(ehlo):
                raise ConfigError(f"--ip-pools: pool {name!r}: {ehlo!r} is not a host name")
            if any(m.address == address for m in members):
                raise ConfigError(f"--ip-pools: pool {name!r}: {address} is given twice")
            members.append(PoolMember(address, ehlo))
        if not members:
            raise ConfigError(f"--ip-pools: pool {name!r} has no address")
        pools[name] = IpPool(name, tuple(members))
    return pools


def check_pools(text: str, default_pool: str, default_ehlo: str) -> None:
    """Validate `--ip-pools` and `--default-ip-pool` together (for load_config)."""
    pools = parse_ip_pools(text, default_ehlo)
    if default_pool and default_pool.strip().lower() not in pools:
        known = ", ".join(sorted(pools)) or "none configured"
        raise ConfigError(f"--default-ip-pool: no pool named {default_pool!r} ({known})")


class ProjectPools:
    """Which pool a project's deliveries use: its `ip_pool` setting (read through `pool_of`,
    a blocking store call, cached `ttl` seconds), else the default pool, else none."""

    def __init__(
        self,
        pools: Mapping[str, IpPool],
        pool_of: Callable[[str], str | None],
        clock: Clock,
        default: str = "",
        ttl: float = 10.0,
    ) -> None:
        self.pools = dict(pools)
        self._pool_of = pool_of
        self._clock = clock
        self._default = default.strip().lower()
        self._ttl = ttl
        self._cache: dict[str, tuple[float, IpPool | None]] = {}
        self._turn: dict[str, int] = {}

    async def pool(self, project: str) -> IpPool | None:
        now = self._clock.monotonic()
        cached = self._cache.get(project)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            name = await asyncio.to_thread(self._pool_of, project)
        except PostroomError as exc:  # the store failed: the default pool, not a failure
            log.warning("the IP pool of project %s is unknown: %s", project, exc)
            name = None
        chosen = self.pools.get(name) if name else None
        if name and chosen is None:
            log.warning("project %s names IP pool %r, which is not configured", project, name)
        if chosen is None and self._default:
            chosen = self.pools.get(self._default)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[project] = (now, chosen)
        return chosen

    def forget(self, project: str) -> None:
        """Read the project's setting afresh next time (after it changed)."""
        self._cache.pop(project, None)

    def next_member(self, pool: IpPool) -> PoolMember:
        """The pool's members in turn (round robin)."""
        turn = self._turn.get(pool.name, 0)
        self._turn[pool.name] = turn + 1
        return pool.members[turn % len(pool.members)]


def pool_names(cfg: Config) -> frozenset[str]:
    """The names of the configured pools."""
    return frozenset(parse_ip_pools(cfg.ip_pools, cfg.hostname))


def project_pools(
    cfg: Config, pool_of: Callable[[str], str | None], clock: Clock
) -> ProjectPools | None:
    """The configured pools and the projects' choice of them; None when none is configured."""
    pools = parse_ip_pools(cfg.ip_pools, cfg.hostname)
    if not pools:
        return None
    return ProjectPools(pools, pool_of, clock, cfg.default_ip_pool)
