"""Platform integration tests: a real DNS server on 127.0.0.1 (tests/dnszone.py), the real
command line, the real HTTP server; PostgreSQL where a test asks for it."""

from __future__ import annotations

from tests.dnszone import dns_zone
from tests.integration.storage.conftest import postgres_database

__all__ = ["dns_zone", "postgres_database"]
