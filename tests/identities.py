"""Test-only: address identities written straight into a store as *verified*, as if the link
of their verification mail had been used.

Fixtures that are not about the proof (submission, signing, quotas) use this to start with a
sender the project may use. Nothing in src/ can do it: the management API, the admin pages
and the CLI add addresses pending only, and only the mailed token verifies them (proven end
to end in tests/integration/platform/test_address_proof.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from postroom.core.platform import AddressIdentity

PROVEN_AT = datetime(2025, 6, 1, tzinfo=UTC)


def proven_address(
    address: str, project_id: str = "acme", when: datetime = PROVEN_AT
) -> AddressIdentity:
    """A verified identity to give a store's `add_address_identity` (tests only)."""
    return AddressIdentity(project_id, address.lower(), when, "verified", verified_at=when)
