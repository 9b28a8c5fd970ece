"""IP pools: `--ip-pools` syntax, its errors naming the option, and a project's pool."""

from __future__ import annotations

import pytest

from postroom.config import load_config
from postroom.core.clock import FakeClock
from postroom.core.errors import ConfigError, StorageError
from postroom.delivery.pools import IpPool, PoolMember, ProjectPools, parse_ip_pools


def test_pools_parse() -> None:
    pools = parse_ip_pools(
        "Dedicated=127.0.0.2/Out2.Example.COM., 127.0.0.3/out3.example.com ;"
        " shared = 127.0.0.4  ::1/v6.example.com;",
        "postroom.example",
    )
    assert pools == {
        "dedicated": IpPool(
            "dedicated",
            (
                PoolMember("127.0.0.2", "out2.example.com"),
                PoolMember("127.0.0.3", "out3.example.com"),
            ),
        ),
        "shared": IpPool(
            "shared",
            (PoolMember("127.0.0.4", "postroom.example"), PoolMember("::1", "v6.example.com")),
        ),
    }
    assert parse_ip_pools("", "x") == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("dedicated", "NAME=ADDRESS"),
        ("bad name=127.0.0.2", "NAME=ADDRESS"),
        ("a=mail.example.com", "not an IP address"),
        ("a=127.0.0.2/not_a_host!", "not a host name"),
        ("a=", "has no address"),
        ("a=127.0.0.2 127.0.0.2", "given twice"),
        ("a=127.0.0.2; a=127.0.0.3", "given twice"),
    ],
)
def test_bad_pools_name_the_option(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        parse_ip_pools(text, "postroom.example")
    assert str(caught.value).startswith("--ip-pools")
    with pytest.raises(ConfigError, match="--ip-pools"):
        load_config({"ip_pools": text}, environ={})


def test_config_default_pool_must_exist() -> None:
    config = load_config(
        {"ip_pools": "a=127.0.0.2/out.example.com", "default_ip_pool": "a"}, environ={}
    )
    assert config.default_ip_pool == "a"
    with pytest.raises(ConfigError, match="--default-ip-pool: no pool named 'b'"):
        load_config({"ip_pools": "a=127.0.0.2", "default_ip_pool": "b"}, environ={})
    with pytest.raises(ConfigError, match="none configured"):
        load_config({"default_ip_pool": "b"}, environ={})


async def test_project_pool_setting_default_and_cache() -> None:
    pools = parse_ip_pools("a=127.0.0.2 127.0.0.3; b=127.0.0.4", "out.example")
    chosen: dict[str, str | None] = {"acme": "a", "gone": "removed"}
    reads: list[str] = []

    def pool_of(project: str) -> str | None:
        reads.append(project)
        if project == "broken":
            raise StorageError("down")
        return chosen.get(project)

    clock = FakeClock()
    projects = ProjectPools(pools, pool_of, clock, default="b", ttl=10)
    assert (await projects.pool("acme")) == pools["a"]
    assert (await projects.pool("other")) == pools["b"]  # none chosen: the default
    assert (await projects.pool("gone")) == pools["b"]  # a pool no longer configured
    assert (await projects.pool("broken")) == pools["b"]  # the store failed
    chosen["acme"] = "b"
    assert (await projects.pool("acme")) == pools["a"]  # cached
    clock.advance(11)
    assert (await projects.pool("acme")) == pools["b"]
    assert reads.count("acme") == 2
    assert [projects.next_member(pools["a"]).address for _ in range(3)] == [
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.2",
    ]
    no_default = ProjectPools(pools, pool_of, clock)
    assert (await no_default.pool("other")) is None
