"""What the platform commands do (see commands.py for the parsers): each action takes the
service and the parsed arguments and returns the JSON object to print with --json and the
text to print otherwise. Imported only when a platform command runs."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from postroom.core.errors import InvalidInput
from postroom.core.platform import AddressIdentity
from postroom.platform import views
from postroom.platform.address_mail import AddressVerifier, ProofMailSettings
from postroom.platform.commands import KEEP
from postroom.platform.domains import DomainReport
from postroom.platform.service import UNSET, PlatformService

Json = dict[str, Any]


def keep(value: object) -> Any:
    """An option the user did not give stays as it is (the service's UNSET)."""
    return UNSET if value is KEEP else value


def read_key(path: str | None) -> str | None:
    if not path:
        return None
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise InvalidInput(
            f"cannot read the private key file: {exc.strerror}", "private_key"
        ) from None


def when(value: str | None) -> str:
    return value or "never"


# -- text renderings --------------------------------------------------------------------------


def project_text(p: Json) -> str:
    quota = p["daily_quota"] if p["daily_quota"] is not None else "no limit"
    rate = p["rate_limit"] if p["rate_limit"] is not None else "no limit"
    text = f"{p['id']}\t{p['mode']}\tdaily quota {quota}\trate {rate}/s\t{p['name']}"
    if p.get("suspended"):
        reason = f": {p['suspend_reason']}" if p.get("suspend_reason") else ""
        text += f"\tSUSPENDED since {p['suspended']}{reason}"
    return text


def report_text(rep: Json) -> str:
    state = "verified" if rep["verified"] else "not verified"
    lines = [
        f"{rep['name']} (project {rep['project']}): {state}; "
        f"last checked {when(rep['last_checked'])}",
        "",
        "Publish these DNS records (required ones marked *):",
    ]
    for r in rep["records"]:
        mark = "*" if r["required"] else " "
        lines.append(f"{mark} {r['type']:<3} {r['name']}")
        lines.append(f"      {r['value']}")
        lines.append(f"      [{r['status']}] {r['detail']}")
        if r.get("suggestion"):
            lines.append(f"      suggested: {r['suggestion']}")
    keys = ", ".join(f"{k['selector']} ({k['algorithm']}, {k['status']})" for k in rep["dkim_keys"])
    lines += ["", f"DKIM keys: {keys}"]
    return "\n".join(lines)


# -- projects ---------------------------------------------------------------------------------


def project_create(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    p = views.project(s.create_project(a.id, a.name, a.mode, a.daily_quota, a.rate_limit))
    return p, f"created project {project_text(p)}"


def project_list(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    items = [views.project(p) for p in s.list_projects()]
    return {"projects": items}, "\n".join(project_text(p) for p in items)


def project_show(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    p = views.project(s.get_project(a.id))
    u = views.usage(a.id, s.usage(a.id))
    return {**p, "usage": u}, f"{project_text(p)}\nsent in the last 24 h: {u['sent_24h']}"


def project_update(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    p = views.project(
        s.update_project(
            a.id,
            name=a.name if a.name is not None else UNSET,
            mode=a.mode if a.mode is not None else UNSET,
            daily_quota=keep(a.daily_quota),
            rate_limit=keep(a.rate_limit),
        )
    )
    return p, f"updated project {project_text(p)}"


def project_suspend(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    p = views.project(s.suspend_project(a.id, a.reason))
    return p, f"suspended project {project_text(p)}"


def project_resume(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    p = views.project(s.resume_project(a.id))
    return p, f"resumed project {project_text(p)}"


def project_delete(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    if not a.yes:
        raise InvalidInput(
            f"deleting project {a.id!r} deletes its credentials, keys, domains and messages: "
            "add --yes to confirm",
            "yes",
        )
    s.delete_project(a.id)
    return {"deleted": a.id}, f"deleted project {a.id}"


def project_usage(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    u = views.usage(a.id, s.usage(a.id))
    quota = u["daily_quota"] if u["daily_quota"] is not None else "no limit"
    return u, f"{a.id}: {u['sent_24h']} sent in the last 24 h (daily quota {quota})"


# -- SMTP and IP credentials ------------------------------------------------------------------


def credential_create(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    c = views.issued_smtp_credential(
        s.create_smtp_credential(a.project, a.username, a.allow_from or ())
    )
    text = (
        f"SMTP credential for project {a.project} (the password is shown this once):\n"
        f"  username: {c['username']}\n  password: {c['password']}"
    )
    return c, text


def credential_list(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    items = [views.smtp_credential(c) for c in s.list_smtp_credentials(a.project)]
    lines = [
        f"{c['id']}\t{c['username']}\tlast used {when(c['last_used'])}\t"
        f"from {', '.join(c['allowed_from']) or 'any verified identity'}"
        for c in items
    ]
    return {"project": a.project, "credentials": items}, "\n".join(lines)


def credential_delete(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    s.delete_smtp_credential(a.project, a.credential)
    return {"deleted": a.credential}, f"deleted SMTP credential {a.credential}"


def ip_create(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    c = views.ip_credential(s.create_ip_credential(a.project, a.network))
    return c, f"{c['network']} may now send as project {a.project} (id {c['id']})"


def ip_list(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    items = [views.ip_credential(c) for c in s.list_ip_credentials(a.project)]
    lines = [f"{c['id']}\t{c['project']}\t{c['network']}" for c in items]
    return {"credentials": items}, "\n".join(lines)


def ip_delete(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    s.delete_ip_credential(a.project, a.credential)
    return {"deleted": a.credential}, f"deleted IP credential {a.credential}"


# -- API keys ---------------------------------------------------------------------------------


def apikey_create(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    k = views.issued_api_key(s.create_api_key(a.project, a.name, a.scope or ["send"]))
    text = (
        f"API key {k['id']} ({', '.join(k['scopes'])}) for project {a.project} "
        f"(the token is shown this once):\n  {k['token']}"
    )
    return k, text


def apikey_list(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    items = [views.api_key(k) for k in s.list_api_keys(a.project)]
    lines = [
        f"{k['id']}\t{','.join(k['scopes'])}\tlast used {when(k['last_used'])}\t{k['name']}"
        for k in items
    ]
    return {"project": a.project, "api_keys": items}, "\n".join(lines)


def apikey_delete(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    s.delete_api_key(a.project, a.key_id)
    return {"deleted": a.key_id}, f"deleted API key {a.key_id}"


# -- SES access keys --------------------------------------------------------------------------


def _ses_keys(s: PlatformService, a: argparse.Namespace) -> Any:
    from postroom.api.ses_setup import ses_key_service

    return ses_key_service(a.loaded_config, s.store, s.clock)


def seskey_create(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    from postroom.api.ses_setup import issued_view

    k = issued_view(_ses_keys(s, a).create(a.project))
    text = (
        f"SES access key for project {a.project} (the secret is shown this once):\n"
        f"  aws_access_key_id     = {k['access_key_id']}\n"
        f"  aws_secret_access_key = {k['secret_access_key']}"
    )
    return k, text


def seskey_list(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    from postroom.api.ses_setup import key_view

    items = [key_view(k) for k in _ses_keys(s, a).list(a.project)]
    lines = [f"{k['access_key_id']}\tcreated {when(k['created'])}" for k in items]
    return {"project": a.project, "ses_keys": items}, "\n".join(lines)


def seskey_delete(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    _ses_keys(s, a).delete(a.project, a.key_id)
    return {"deleted": a.key_id}, f"deleted SES access key {a.key_id}"


# -- domains ----------------------------------------------------------------------------------


def domain_add(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    rep = views.domain_report(
        s.add_domain(
            a.project,
            a.domain,
            algorithm=a.algorithm,
            private_key=read_key(a.private_key),
            selector=a.selector,
        )
    )
    tail = f"\n\nThen run: postroom domain verify {rep['name']} --project {a.project}"
    return rep, report_text(rep) + tail


def domain_list(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    items = [views.domain(d) for d in s.list_domains(a.project)]
    lines = [
        f"{d['project']}\t{d['name']}\t{'verified' if d['verified'] else 'not verified'}\t"
        f"last checked {when(d['last_checked'])}"
        for d in items
    ]
    return {"domains": items}, "\n".join(lines)


def report(rep: DomainReport) -> tuple[Json, str]:
    data = views.domain_report(rep)
    return data, report_text(data)


def domain_records(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    return report(s.records(a.project, a.domain))


def domain_verify(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    return report(asyncio.run(s.verify(a.project, a.domain)))


def domain_rotate(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    key = views.dkim_key(
        s.rotate(
            a.project,
            a.domain,
            algorithm=a.algorithm,
            private_key=read_key(a.private_key),
            selector=a.selector,
        )
    )
    text = (
        f"new DKIM key {key['selector']} ({key['algorithm']}) is pending. Publish:\n"
        f"  TXT {key['name']}\n      {key['value']}\n"
        f"then run: postroom domain activate {a.domain} {key['selector']} --project {a.project}"
    )
    return {"project": a.project, "domain": a.domain, "key": key}, text


def domain_activate(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    d = views.domain(asyncio.run(s.activate(a.project, a.domain, a.selector)))
    retiring = [k for k in d["dkim_keys"] if k["status"] == "retiring"]
    text = f"{d['name']} now signs with selector {a.selector.lower()}"
    for k in retiring:
        text += f"\n{k['selector']} is retiring: keep its record until {k['retire_after']}"
    return d, text


def domain_delete(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    s.delete_domain(a.project, a.domain)
    return {"deleted": a.domain}, f"deleted domain {a.domain} from project {a.project}"


# -- sender addresses -------------------------------------------------------------------------


def _mailing(
    s: PlatformService,
    a: argparse.Namespace,
    work: Callable[[AddressVerifier], Awaitable[AddressIdentity]],
) -> AddressIdentity:
    """Run `work` with an AddressVerifier on the configured message store: the verification
    mail is queued in the database, and the server's delivery worker sends it."""
    from postroom.pipeline.complete import complete_message
    from postroom.storage.engine import open_store

    config = a.loaded_config
    store = open_store(config, s.clock, complete=complete_message)

    async def run() -> AddressIdentity:
        try:
            return await work(
                AddressVerifier(s, store, s.clock, ProofMailSettings.from_config(config))
            )
        finally:
            await store.close()

    return asyncio.run(run())


def address_add(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    v = views.address_identity(_mailing(s, a, lambda verifier: verifier.add(a.project, a.address)))
    return v, (
        f"{v['address']} added to project {a.project}, pending: a verification mail is queued "
        "to it. The project may send as it once its link or code is used."
    )


def address_resend(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    v = views.address_identity(
        _mailing(s, a, lambda verifier: verifier.resend(a.project, a.address))
    )
    return v, f"a new verification mail to {v['address']} is queued (until {v['expires']})"


def address_confirm(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    identity = s.confirm_address(a.code, "code", project_id=a.project, address=a.address)
    v = views.address_identity(identity)
    return v, f"{v['address']} is verified: project {a.project} may send as it"


def address_list(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    items = [views.address_identity(v) for v in s.list_addresses(a.project)]
    text = "\n".join(f"{v['address']}\t{v['status']}" for v in items)
    return {"project": a.project, "addresses": items}, text


def address_delete(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    s.delete_address(a.project, a.address)
    return {"deleted": a.address}, f"deleted address {a.address}"


# -- admins -----------------------------------------------------------------------------------


def read_password(a: argparse.Namespace) -> str:
    if a.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to ask for the password: use --password-stdin", "password")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise InvalidInput("the passwords differ", "password")
    return first


def admin_create(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    u = views.admin(s.create_admin(a.username, read_password(a)))
    return u, f"created admin {u['username']}"


def admin_list(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    items = [views.admin(u) for u in s.list_admins()]
    return {"admins": items}, "\n".join(f"{u['username']}\tcreated {u['created']}" for u in items)


def admin_delete(s: PlatformService, a: argparse.Namespace) -> tuple[Json, str]:
    s.delete_admin(a.username)
    return {"deleted": a.username}, f"deleted admin {a.username}"
