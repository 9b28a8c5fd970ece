"""The deliveries the pipeline builds for a live message: one per recipient, with its routing
domain (A-labels) and the DSN parameters (RFC 3461) of the envelope."""

from __future__ import annotations

from postroom.core.types import Delivery, Envelope
from postroom.pipeline.deliveries import deliveries_for, recipient_domain


def test_one_delivery_per_recipient_with_its_dsn_parameters() -> None:
    envelope = Envelope(
        mail_from="app@example.com",
        recipients=("a@example.net", "b@Example.ORG"),
        mail_params={"RET": "HDRS", "ENVID": "QQ314159", "SIZE": "100"},
        rcpt_params=(
            {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;a+2Bx@example.net"},
            {"NOTIFY": "NEVER"},
        ),
    )
    assert deliveries_for(envelope) == (
        Delivery(
            "a@example.net",
            "example.net",
            notify="SUCCESS,FAILURE",
            orcpt="rfc822;a+2Bx@example.net",
            ret="HDRS",
            envid="QQ314159",
        ),
        Delivery("b@Example.ORG", "example.org", notify="NEVER", ret="HDRS", envid="QQ314159"),
    )


def test_without_parameters_nothing_is_invented() -> None:
    envelope = Envelope(mail_from="", recipients=("a@example.net",))
    assert deliveries_for(envelope) == (Delivery("a@example.net", "example.net"),)


def test_the_routing_domain_is_in_a_labels() -> None:
    assert recipient_domain("jürgen@Bücher.Example") == "xn--bcher-kva.example"
    assert recipient_domain("a@xn--bcher-kva.example") == "xn--bcher-kva.example"
    assert recipient_domain("a@example.com.") == "example.com"
    assert recipient_domain("a@[192.0.2.1]") == "[192.0.2.1]"
    assert recipient_domain("a@[IPv6:2001:DB8::1]") == "[ipv6:2001:db8::1]"


def test_one_mailbox_gets_one_delivery_with_the_first_parameters() -> None:
    envelope = Envelope(
        mail_from="app@example.com",
        recipients=("a@bücher.example", "a@XN--BCHER-KVA.example", "A@bücher.example"),
        rcpt_params=({"NOTIFY": "DELAY"}, {"NOTIFY": "NEVER"}, {}),
    )
    deliveries = deliveries_for(envelope)
    # Local parts are case-sensitive (RFC 5321 section 2.4): A@ is another mailbox.
    assert [(d.recipient, d.domain, d.notify) for d in deliveries] == [
        ("a@bücher.example", "xn--bcher-kva.example", "DELAY"),
        ("A@bücher.example", "xn--bcher-kva.example", None),
    ]
