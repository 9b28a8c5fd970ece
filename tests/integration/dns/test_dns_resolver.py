"""DnsPythonResolver against the real test DNS server on 127.0.0.1 (never a public resolver)."""

from __future__ import annotations

import pytest

from postroom.core.errors import ConfigError, PostroomError
from postroom.dns.resolver import DnsError, DnsPythonResolver, Resolver, parse_nameserver
from tests.dnszone import DnsZone, split_txt


def resolver_for(zone: DnsZone, timeout: float = 5.0) -> DnsPythonResolver:
    return DnsPythonResolver(zone.nameserver, timeout=timeout)


def test_adapter_satisfies_the_port(dns_zone: DnsZone) -> None:
    resolver: Resolver = resolver_for(dns_zone)
    assert isinstance(resolver, DnsPythonResolver)
    assert issubclass(DnsError, PostroomError)


async def test_txt_records(dns_zone: DnsZone) -> None:
    dns_zone.add_txt("example.test", "v=spf1 include:_spf.postroom.test ~all")
    dns_zone.add_txt("example.test", "google-site-verification=abc")
    found = await resolver_for(dns_zone).txt("example.test")
    assert sorted(found) == [
        "google-site-verification=abc",
        "v=spf1 include:_spf.postroom.test ~all",
    ]


async def test_long_txt_is_split_into_255_byte_strings_and_joined_back(dns_zone: DnsZone) -> None:
    text = "v=DKIM1; k=rsa; p=" + "A" * 600
    assert [len(s) for s in split_txt(text)] == [255, 255, len(text) - 510]
    dns_zone.add_txt("sel._domainkey.example.test", text)
    assert await resolver_for(dns_zone).txt("sel._domainkey.example.test") == [text]


async def test_txt_strings_are_joined_without_separator(dns_zone: DnsZone) -> None:
    dns_zone.add_txt_strings("example.test", [b"v=spf1 ", b"ip4:192.0.2.1", b" -all"])
    assert await resolver_for(dns_zone).txt("example.test") == ["v=spf1 ip4:192.0.2.1 -all"]


async def test_txt_utf8_is_decoded(dns_zone: DnsZone) -> None:
    dns_zone.add_txt("example.test", "note=größe")
    dns_zone.add_txt_strings("bad.test", [b"\xff\xfe"])
    resolver = resolver_for(dns_zone)
    assert await resolver.txt("example.test") == ["note=größe"]
    assert await resolver.txt("bad.test") == ["\ufffd\ufffd"]


async def test_names_are_case_insensitive_and_may_end_with_a_dot(dns_zone: DnsZone) -> None:
    dns_zone.add_txt("Example.TEST", "hello")
    resolver = resolver_for(dns_zone)
    assert await resolver.txt("example.test.") == ["hello"]
    assert await resolver.txt("EXAMPLE.test") == ["hello"]


async def test_mx_sorted_lower_cased_without_trailing_dot(dns_zone: DnsZone) -> None:
    dns_zone.add_mx("example.test", 20, "MX2.Example.Test.")
    dns_zone.add_mx("example.test", 10, "mx1.example.test")
    dns_zone.add_mx("example.test", 10, "mx0.example.test")
    assert await resolver_for(dns_zone).mx("example.test") == [
        (10, "mx0.example.test"),
        (10, "mx1.example.test"),
        (20, "mx2.example.test"),
    ]


async def test_null_mx(dns_zone: DnsZone) -> None:
    dns_zone.add_mx("nomail.test", 0, ".")
    assert await resolver_for(dns_zone).mx("nomail.test") == [(0, ".")]


async def test_a_and_aaaa(dns_zone: DnsZone) -> None:
    dns_zone.add_a("mx.example.test", "192.0.2.10")
    dns_zone.add_a("mx.example.test", "192.0.2.11")
    dns_zone.add_aaaa("mx.example.test", "2001:0db8:0000::0001")
    resolver = resolver_for(dns_zone)
    assert sorted(await resolver.a("mx.example.test")) == ["192.0.2.10", "192.0.2.11"]
    assert await resolver.aaaa("mx.example.test") == ["2001:db8::1"]


async def test_cname_is_followed(dns_zone: DnsZone) -> None:
    dns_zone.add_cname("sel._domainkey.example.test", "sel._domainkey.provider.test")
    dns_zone.add_txt("sel._domainkey.provider.test", "v=DKIM1; k=ed25519; p=abc")
    dns_zone.add_cname("www.example.test", "host.example.test")
    dns_zone.add_a("host.example.test", "192.0.2.7")
    resolver = resolver_for(dns_zone)
    assert await resolver.txt("sel._domainkey.example.test") == ["v=DKIM1; k=ed25519; p=abc"]
    assert await resolver.a("www.example.test") == ["192.0.2.7"]


async def test_nxdomain_and_no_answer_are_empty(dns_zone: DnsZone) -> None:
    dns_zone.add_a("host.example.test", "192.0.2.1")
    resolver = resolver_for(dns_zone)
    assert await resolver.txt("nothing.example.test") == []  # NXDOMAIN
    assert await resolver.mx("host.example.test") == []  # name exists, no MX
    assert await resolver.aaaa("host.example.test") == []
    assert await resolver.a("nothing.example.test") == []


async def test_large_answer_falls_back_to_tcp(dns_zone: DnsZone) -> None:
    for i in range(8):
        dns_zone.add_txt("big.example.test", f"{i}" * 200)
    found = await resolver_for(dns_zone).txt("big.example.test")
    assert sorted(found) == [f"{i}" * 200 for i in range(8)]
    protocols = [q.protocol for q in dns_zone.queries if q.name == "big.example.test"]
    assert protocols == ["udp", "tcp"]


async def test_forced_tcp(dns_zone: DnsZone) -> None:
    dns_zone.udp_limit = 0
    dns_zone.add_mx("example.test", 5, "mx.example.test")
    assert await resolver_for(dns_zone).mx("example.test") == [(5, "mx.example.test")]
    assert [q.protocol for q in dns_zone.queries] == ["udp", "tcp"]


async def test_timeout_raises_dns_error(dns_zone: DnsZone) -> None:
    dns_zone.add_txt("slow.example.test", "never seen")
    dns_zone.drop("slow.example.test")
    with pytest.raises(DnsError) as info:
        await resolver_for(dns_zone, timeout=0.3).txt("slow.example.test")
    assert "timed out" in str(info.value)
    assert info.value.name == "slow.example.test"
    assert info.value.rdtype == "TXT"


async def test_servfail_raises_dns_error(dns_zone: DnsZone) -> None:
    dns_zone.fail("broken.example.test", "SERVFAIL")
    with pytest.raises(DnsError, match="SERVFAIL"):
        await resolver_for(dns_zone).mx("broken.example.test")


async def test_invalid_name_raises_dns_error(dns_zone: DnsZone) -> None:
    with pytest.raises(DnsError, match="invalid DNS name"):
        await resolver_for(dns_zone).txt("a..b")
    with pytest.raises(DnsError):
        await resolver_for(dns_zone).txt("x" * 64 + ".test")
    assert dns_zone.queries == []


async def test_zone_edits_are_seen_at_once(dns_zone: DnsZone) -> None:
    resolver = resolver_for(dns_zone)
    dns_zone.add_txt("example.test", "one")
    assert await resolver.txt("example.test") == ["one"]
    dns_zone.remove("example.test", "TXT")
    assert await resolver.txt("example.test") == []  # no cache in the adapter
    dns_zone.add_txt("example.test", "two")
    dns_zone.add_mx("example.test", 1, "mx.example.test")
    dns_zone.remove("example.test", "MX")
    assert await resolver.mx("example.test") == []
    assert await resolver.txt("example.test") == ["two"]
    dns_zone.clear()
    assert await resolver.txt("example.test") == []
    assert [q.rtype for q in dns_zone.queries] == ["TXT"]


async def test_stopped_zone_times_out() -> None:
    zone = DnsZone()
    zone.add_txt("example.test", "x")
    resolver = resolver_for(zone, timeout=0.3)
    assert await resolver.txt("example.test") == ["x"]
    zone.stop()
    with pytest.raises(DnsError):
        await resolver.txt("example.test")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        (" 10.1.2.3:53 ", ("10.1.2.3", 53)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[2001:db8::1]", ("2001:db8::1", 53)),
    ],
)
def test_parse_nameserver(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize(
    "text",
    ["dns.example:53", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x", "[::1", "[::1]53", ""],
)
def test_parse_nameserver_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_nameserver(text)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        DnsPythonResolver("127.0.0.1:53", timeout=0)


def test_repr_names_the_server() -> None:
    assert "127.0.0.1:5353" in repr(DnsPythonResolver("127.0.0.1:5353"))


def _ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_zone_and_resolver_over_ipv6_loopback() -> None:
    with DnsZone(address="::1") as zone:
        assert zone.nameserver == f"[::1]:{zone.port}"
        zone.add_mx("example.test", 10, "mx.example.test")
        assert await DnsPythonResolver(zone.nameserver).mx("example.test") == [
            (10, "mx.example.test")
        ]
