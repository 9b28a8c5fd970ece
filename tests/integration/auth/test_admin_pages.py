"""The admin pages through their forms, as a browser without JavaScript posts them: projects,
quotas, SMTP and IP credentials (password shown once), API keys (token shown once), domains
with their records, DNS checks against a real DNS server, DKIM rotation; errors on the page."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from postroom.config import Config, HostPort
from postroom.pipeline.identity import check_smtp_credential
from postroom.platform.factory import open_platform
from tests.dnszone import DnsZone
from tests.harness import ServerThread
from tests.integration.auth.conftest import Browser, ServerFactory


@pytest.fixture
def server(start_server: ServerFactory, dns_zone: DnsZone) -> ServerThread:
    return start_server(resolver=dns_zone.nameserver, submission=HostPort("127.0.0.1", 0))


@pytest.fixture
def admin(browser: Browser) -> Browser:
    assert browser.login().status_code == 303
    return browser


def text(response: httpx.Response) -> str:
    """The page's text without tags, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def test_projects_create_update_and_delete(admin: Browser) -> None:
    created = admin.submit(
        "/admin/projects",
        {"id": "acme", "name": "Acme Inc", "mode": "live", "daily_quota": "1000", "rate_limit": ""},
    )
    assert (created.status_code, created.headers["location"]) == (
        303,
        "/admin/projects/acme?done=project-created",
    )
    page = admin.page(created.headers["location"])
    assert page.status_code == 200
    assert "Project created." in page.text
    assert "1,000 (1,000 left)" in text(page)
    assert "0 SMTP credentials, 0 IP credentials 0 API keys 0 domains, 0 verified" in text(page)
    listing = text(admin.page("/admin/projects"))
    assert "Acme Inc acme Live 1,000 No limit 0 of 1,000" in listing

    saved = admin.submit(
        "/admin/projects/acme",
        {"name": "Acme", "mode": "capture", "daily_quota": "", "rate_limit": "50"},
    )
    assert saved.headers["location"] == "/admin/projects/acme?done=project-saved"
    settings = text(admin.page("/admin/projects/acme"))
    assert "Capture" in settings and "50 per second" in settings and "No limit" in settings

    refused = admin.submit("/admin/projects/acme/delete", {}, "/admin/projects/acme")
    assert refused.status_code == 400
    assert "Tick the box to confirm" in refused.text
    deleted = admin.submit(
        "/admin/projects/acme/delete", {"confirm": "yes"}, "/admin/projects/acme"
    )
    assert deleted.headers["location"] == "/admin/projects?done=project-deleted"
    assert admin.page("/admin/projects/acme").status_code == 404


def test_input_errors_come_back_on_the_page(admin: Browser) -> None:
    bad = admin.submit("/admin/projects", {"id": "Not A Slug", "daily_quota": "lots"})
    assert bad.status_code == 400
    assert 'role="alert"' in bad.text
    assert "The daily quota must be a whole number, or empty for no limit." in text(bad)
    assert 'value="lots"' in bad.text  # what was typed stays
    bad_id = admin.submit("/admin/projects", {"id": "Not A Slug"})
    assert "Project id 'Not A Slug': 1-63 lower-case letters" in text(bad_id)
    assert re.search(r'name="id"[^>]*aria-invalid="true"', bad_id.text)
    default_live = admin.submit("/admin/projects/default", {"name": "Default", "mode": "live"})
    assert default_live.status_code == 400
    assert "The default project receives unauthenticated capture mail" in text(default_live)
    missing = admin.page("/admin/projects/nope")
    assert missing.status_code == 404
    assert "Not found No project 'nope'." in text(missing)


def test_smtp_credentials_show_the_password_once(admin: Browser, server: ServerThread) -> None:
    admin.submit("/admin/projects", {"id": "acme"})
    page = admin.submit(
        "/admin/projects/acme/credentials",
        {"username": "app-mailer", "allowed_from": "example.com, ops@example.org"},
    )
    assert page.status_code == 201
    assert page.headers["cache-control"] == "no-store"
    password = re.search(r'<code id="secret-value" class="secret-value">([^<]+)</code>', page.text)
    assert password, page.text
    secret = password.group(1)
    assert 'data-copy="secret-value"' in page.text and 'aria-label="Copy password"' in page.text
    assert "It is shown only this once" in page.text
    service = open_platform(server.app.config)
    try:
        credential = check_smtp_credential(service.store, "app-mailer", secret)
        assert credential is not None and credential.project_id == "acme"
    finally:
        service.close()
    listing = admin.page("/admin/projects/acme/credentials")
    assert "app-mailer" in listing.text and secret not in listing.text
    assert "example.com, ops@example.org" in listing.text

    cred_id = re.search(r"/credentials/([^/]+)/delete", listing.text)
    assert cred_id
    gone = admin.submit(
        f"/admin/projects/acme/credentials/{cred_id.group(1)}/delete",
        {},
        "/admin/projects/acme/credentials",
    )
    assert gone.headers["location"].endswith("done=credential-deleted")
    assert "app-mailer" not in admin.page("/admin/projects/acme/credentials").text

    ip = admin.submit(
        "/admin/projects/acme/ip-credentials",
        {"network": "192.0.2.0/24"},
        "/admin/projects/acme/credentials",
    )
    assert ip.headers["location"].endswith("done=ip-added")
    assert "192.0.2.0/24" in admin.page("/admin/projects/acme/credentials").text
    bad_ip = admin.submit(
        "/admin/projects/acme/ip-credentials",
        {"network": "nonsense"},
        "/admin/projects/acme/credentials",
    )
    assert bad_ip.status_code == 400 and "CIDR" in bad_ip.text
    removed = admin.submit(
        "/admin/projects/acme/ip-credentials/delete",
        {"credential": "192.0.2.0/24"},
        "/admin/projects/acme/credentials",
    )
    assert removed.headers["location"].endswith("done=ip-deleted")


def test_api_keys_show_the_token_once_and_it_works(admin: Browser, server: ServerThread) -> None:
    admin.submit("/admin/projects", {"id": "acme"})
    token_page = admin.client.post(
        "/admin/projects/acme/api-keys",
        content="name=ci&scopes=read&scopes=send&csrf_token=" + admin.csrf,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert token_page.status_code == 201
    found = re.search(
        r'<code id="secret-value" class="secret-value">(prk_[^<]+)</code>', token_page.text
    )
    assert found
    token = found.group(1)
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/api/v1/messages").status_code == 200
    listing = admin.page("/admin/projects/acme/api-keys")
    assert token not in listing.text
    assert "ci" in listing.text and ">read<" in listing.text and ">send<" in listing.text
    none = admin.submit("/admin/projects/acme/api-keys", {"name": "x"})
    assert none.status_code == 400 and "give at least one scope" in none.text.lower()
    key_id = token.split("_")[1]
    revoked = admin.submit(
        f"/admin/projects/acme/api-keys/{key_id}/delete", {}, "/admin/projects/acme/api-keys"
    )
    assert revoked.headers["location"].endswith("done=key-deleted")
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/api/v1/messages").status_code == 401


def test_domains_records_checks_and_rotation(
    admin: Browser, server: ServerThread, dns_zone: DnsZone
) -> None:
    config: Config = server.app.config
    admin.submit("/admin/projects", {"id": "acme"})
    added = admin.submit(
        "/admin/projects/acme/domains", {"domain": "Mail.Example.TEST", "algorithm": "ed25519"}
    )
    url = "/admin/projects/acme/domains/mail.example.test"
    assert added.headers["location"] == url + "?done=domain-added"
    page = admin.page(url)
    service = open_platform(config)
    try:
        report = service.records("acme", "mail.example.test")
    finally:
        service.close()
    for record in report.records:
        assert html.escape(record.value, quote=False) in page.text or record.value in text(page)
        assert record.name in page.text
    assert text(page).count("Not checked yet") == len(report.records)
    assert "Not verified" in page.text
    assert 'aria-label="Copy value of the DKIM record"' in page.text

    for record in report.records:
        if record.kind in ("verification", "dkim"):
            dns_zone.add_txt(record.name, record.value)
    checked = admin.submit(url + "/verify", {}, url)
    assert checked.headers["location"] == url + "?done=domain-checked"
    page = admin.page(url)
    assert "Verified" in page.text and "Not verified" not in page.text
    assert 'class="pill status ok"' in page.text
    assert 'class="pill status missing"' in page.text  # SPF, DMARC... not published

    rotated = admin.submit(url + "/rotate", {"algorithm": ""}, url)
    assert rotated.headers["location"] == url + "?done=key-rotated"
    page = admin.page(url)
    pending = re.search(r'name="selector" value="([^"]+)"', page.text)
    assert pending, "a pending key has an Activate button"
    early = admin.submit(url + "/activate", {"selector": pending.group(1)}, url)
    assert early.status_code == 400
    assert "does not resolve as it must" in early.text
    service = open_platform(config)
    try:
        new_key = next(
            k for k in service.records("acme", "mail.example.test").keys if k.status == "pending"
        )
    finally:
        service.close()
    dns_zone.add_txt(new_key.name, new_key.value)
    activated = admin.submit(url + "/activate", {"selector": new_key.selector}, url)
    assert activated.headers["location"] == url + "?done=key-activated"
    assert "retiring" in admin.page(url).text

    address = admin.submit(
        "/admin/projects/acme/addresses",
        {"address": "ops@other.test"},
        "/admin/projects/acme/domains",
    )
    assert address.headers["location"].endswith("done=address-added")
    listing = admin.page("/admin/projects/acme/domains")
    assert "ops@other.test" in listing.text and "mail.example.test" in listing.text
    assert "Pending" in listing.text and "Send the mail again" in listing.text  # not verified
    resent = admin.submit(
        "/admin/projects/acme/addresses/resend",
        {"address": "ops@other.test"},
        "/admin/projects/acme/domains",
    )
    assert resent.status_code == 400 and "ask again in" in resent.text  # one mail a minute
    service = open_platform(config)
    try:
        (identity,) = service.list_addresses("acme")
        assert identity.status == "pending" and identity.mails_in_window == 1
    finally:
        service.close()
    deleted = admin.submit(url + "/delete", {}, url)
    assert deleted.headers["location"].endswith("done=domain-deleted")
    assert admin.page(url).status_code == 404


def test_the_domain_check_task_runs_in_the_background(
    start_server: ServerFactory, dns_zone: DnsZone
) -> None:
    server = start_server(admin=False, resolver=dns_zone.nameserver, domain_check_interval=0.2)
    service = open_platform(server.app.config)
    try:
        report = service.add_domain("default", "bg.example.test", algorithm="ed25519")
        for record in report.records:
            if record.kind in ("verification", "dkim"):
                dns_zone.add_txt(record.name, record.value)
        for _ in range(300):  # waits for the state, up to about 30 s; never asserts a time
            if service.get_domain("default", "bg.example.test").verified:
                break
            server.call(_sleep(0.1))
        assert service.get_domain("default", "bg.example.test").verified
    finally:
        service.close()


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
