"""A domain identity is proven per project: two projects adding the same domain get different
verification tokens, and one project's published record does not verify the other's (real
server, httpx against /api/v2, the test DNS server)."""

from __future__ import annotations

from tests.dnszone import DnsZone

from .test_management_api import DOM, PJ, Api, api, server

__all__ = ["api", "server"]

DOMAINS = PJ + "/domains"


def _verification(domain: dict[str, object]) -> dict[str, str]:
    records = domain["records"]
    assert isinstance(records, list)
    [record] = [r for r in records if r["kind"] == "verification"]
    return record


def test_each_project_proves_a_shared_domain_itself(api: Api, dns_zone: DnsZone) -> None:
    for project in ("one", "two"):
        api.call("POST", "/api/v2/projects", 201, {"id": project, "name": project})
    first = api.call("POST", DOMAINS, 201, {"domain": "shared.example"}, project="one")
    second = api.call("POST", DOMAINS, 201, {"domain": "shared.example"}, project="two")
    token_one, token_two = _verification(first), _verification(second)
    assert token_one["name"] == token_two["name"]
    assert token_one["value"] != token_two["value"]  # a token unique to each project

    # Project one publishes its records (verification TXT and DKIM key): only it is verified.
    for record in first["records"]:
        if record["required"]:
            dns_zone.add_txt(record["name"], record["value"])
    assert api.call("POST", DOM + "/verify", 200, project="one", domain="shared.example")[
        "verified"
    ]
    # Project two's DKIM key is published too, but not its verification token: not verified.
    for record in second["records"]:
        if record["required"] and record["kind"] != "verification":
            dns_zone.add_txt(record["name"], record["value"])
    two = api.call("POST", DOM + "/verify", 200, project="two", domain="shared.example")
    assert two["verified"] is False
    assert _verification(two)["status"] == "mismatch"
    # Once it publishes its own token beside the first project's, it is verified as well.
    dns_zone.add_txt(token_two["name"], token_two["value"])
    again = api.call("POST", DOM + "/verify", 200, project="two", domain="shared.example")
    assert again["verified"], [
        (r["kind"], r["name"], r["status"], r.get("detail"))
        for r in again["records"]
        if r["kind"] == "dkim"
    ]
