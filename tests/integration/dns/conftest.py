"""The DNS tests run against a real DNS server on 127.0.0.1 (tests/dnszone.py)."""

from tests.dnszone import dns_zone

__all__ = ["dns_zone"]
