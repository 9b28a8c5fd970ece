"""The refusal of a delete that would cancel deliveries names them, briefly."""

from __future__ import annotations

from postroom.core.errors import PendingDeliveries


def test_the_refusal_names_the_pending_deliveries_briefly() -> None:
    many = tuple(f"r{i}@example.net" for i in range(12))
    pending = {f"m{i}": ("a@example.net",) for i in range(11)}
    pending["m0"] = many
    error = PendingDeliveries(pending, "IDs")
    assert error.deliveries == 22 and error.field == "IDs"
    text = str(error)
    assert text.startswith("Nothing was deleted: 11 messages have 22 deliveries pending (m0 to ")
    assert "r9@example.net and 2 more; m1 to a@example.net;" in text
    assert text.endswith(
        "; and 1 more); they can be deleted once every recipient is delivered or has failed"
    )
    one = str(PendingDeliveries({"m": ("a@example.net",)}))
    assert one == (
        "Nothing was deleted: 1 message has 1 delivery pending (m to a@example.net); "
        "it can be deleted once every recipient is delivered or has failed"
    )
