"""Every refusal kind maps into the bounce vocabulary; only the ones about the address itself
are hard."""

from __future__ import annotations

from postroom.bounces.refusals import refusal_reason
from postroom.core.errors import RefusalKind


def test_every_kind_has_a_reason_and_only_address_failures_are_hard() -> None:
    hard = set()
    for kind in RefusalKind:
        reason, is_hard = refusal_reason(kind)
        assert reason
        if is_hard:
            hard.add(kind)
    assert hard == {RefusalKind.UNKNOWN_RECIPIENT, RefusalKind.DESTINATION_NOT_ALLOWED}
    assert refusal_reason(RefusalKind.RATE_LIMIT) == ("speeding", False)
