"""Builds and runs the SES-compatible API's listener (`--ses HOST:PORT`) from what the
composition root has, and the management routes of SES access keys
(`/api/v2/projects/{project}/ses-keys`)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postroom.api.context import ApiContext
from postroom.api.guard import HostRule
from postroom.api.native_send import Sender, SendingContext
from postroom.api.serving import HttpListener, serve_config
from postroom.api.ses_app import SesGate, build_ses_app
from postroom.api.ses_context import SesApi
from postroom.api.ses_identities import Identities
from postroom.api.ses_send import SesSender, SesSending
from postroom.config import Config, public_url_host
from postroom.core.clock import Clock
from postroom.core.errors import ConfigError
from postroom.core.platform import PlatformStore
from postroom.core.sending import SesKey
from postroom.pipeline.shared_reads import SharedReads
from postroom.pipeline.submission import SubmissionSteps
from postroom.platform.address_mail import AddressVerifier
from postroom.platform.email_templates import TemplateService
from postroom.platform.service import PlatformService
from postroom.platform.ses_keys import IssuedSesKey, SesKeyService
from postroom.storage.platform_store import SqlPlatformStore
from postroom.storage.sealing import SecretBox
from postroom.storage.sending_store import SqlSendingStore
from postroom.storage.store import SqlMessageStore
from postroom.suppression.service import SuppressionList


def ses_key_service(config: Config, platform: PlatformStore, clock: Clock) -> SesKeyService:
    if not isinstance(platform, SqlPlatformStore):
        raise ConfigError("SES access keys need the SQL platform store")
    box = SecretBox.load_or_create(config.data_dir)
    return SesKeyService(platform, SqlSendingStore(platform), box, clock)


def key_view(key: SesKey) -> dict[str, Any]:
    return {
        "access_key_id": key.id,
        "project": key.project_id,
        "created": key.created.isoformat().replace("+00:00", "Z"),
        "last_used": key.last_used.isoformat().replace("+00:00", "Z") if key.last_used else None,
    }


def issued_view(issued: IssuedSesKey) -> dict[str, Any]:
    return {**key_view(issued.key), "secret_access_key": issued.secret}


def key_routes(keys: SesKeyService) -> list[BaseRoute]:
    """GET/POST /api/v2/projects/{project}/ses-keys, DELETE .../ses-keys/{key_id} (manage)."""

    async def collection(request: Request) -> Response:
        project: str = request.path_params["project"]
        if request.method == "POST":
            issued = await asyncio.to_thread(keys.create, project)
            return JSONResponse(issued_view(issued), status_code=201)
        items = await asyncio.to_thread(keys.list, project)
        return JSONResponse({"project": project, "ses_keys": [key_view(k) for k in items]})

    async def member(request: Request) -> Response:
        key_id: str = request.path_params["key_id"]
        await asyncio.to_thread(keys.delete, request.path_params["project"], key_id)
        return JSONResponse({"deleted": key_id})

    base = "/api/v2/projects/{project}/ses-keys"
    return [
        Route(base, collection, methods=["GET", "POST"]),
        Route(f"{base}/{{key_id}}", member, methods=["DELETE"]),
    ]


async def start_ses_listener(
    sock: socket.socket,
    context: ApiContext,
    steps: SubmissionSteps,
    service: PlatformService,
    platform: PlatformStore,
    verifier: AddressVerifier | None = None,
) -> HttpListener:
    """The SES API on `sock`, serving once this returns (`stop()` closes it)."""
    config = context.config
    entries = list(config.allowed_hosts)
    if config.public_url:
        entries.append(public_url_host(config.public_url))
    hosts = HostRule.build(entries, config.ses)
    gate = build_ses_gate(context, steps, service, platform, verifier, hosts)
    listener = HttpListener(serve_config(gate), sock, f"SES listener on {config.ses}")
    await listener.start()
    return listener


def build_ses_gate(
    context: ApiContext,
    steps: SubmissionSteps,
    service: PlatformService,
    platform: PlatformStore,
    verifier: AddressVerifier | None,
    hosts: HostRule,
    prefix: str = "",
) -> SesGate:
    """The SES API behind its gate (Host check, body limit, SigV4); `prefix`: the path it is
    served under on the HTTP listener (--ses-prefix)."""
    config, clock = context.config, context.clock
    keys = ses_key_service(config, platform, clock)
    store = SqlSendingStore(platform) if isinstance(platform, SqlPlatformStore) else None
    assert store is not None and isinstance(context.store, SqlMessageStore)
    templates = TemplateService(store, clock, config.max_templates)
    suppressions = SuppressionList(context.store.suppressions, clock)
    sending = SendingContext(
        config, clock, context.http_send, steps.directory, steps.routed, None, None
    )
    configuration_sets = context.store.configuration_sets
    api = SesApi(
        sender=SesSender(
            SesSending(Sender(sending), templates, clock, config.hostname, configuration_sets)
        ),
        templates=templates,
        identities=Identities(service, verifier),
        service=service,
        store=store,
        clock=clock,
        suppressions=suppressions,
        configuration_sets=configuration_sets,
    )
    generations: SharedReads[None, int] = SharedReads(
        lambda asked: [platform.generation()] * len(asked)
    )

    async def before_send() -> None:
        steps.directory.saw_generation(await generations.ask(None))

    return SesGate(
        build_ses_app(api),
        keys.secret_for,
        clock,
        hosts,
        config.max_message_size,
        prefix,
        before_send,
    )
