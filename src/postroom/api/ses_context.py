"""What the SES-compatible API's handlers share, and who is calling (set by the SigV4 gate)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from postroom.api.native_send import Peer
from postroom.api.ses_identities import Identities
from postroom.api.ses_send import SesSender
from postroom.core.clock import Clock
from postroom.core.sending import SendingStore
from postroom.platform.email_templates import TemplateService
from postroom.platform.service import PlatformService
from postroom.storage.config_sets import SqlConfigSetStore
from postroom.suppression.service import SuppressionList

CALLER = "postroom.ses.caller"


@dataclass(frozen=True, slots=True)
class Caller:
    project: str
    key_id: str


@dataclass
class SesApi:
    sender: SesSender
    templates: TemplateService
    identities: Identities
    service: PlatformService
    store: SendingStore
    clock: Clock
    suppressions: SuppressionList
    configuration_sets: SqlConfigSetStore


def caller(request: Request) -> Caller:
    found = request.scope.get(CALLER)
    assert isinstance(found, Caller), "the SigV4 gate runs before every SES handler"
    return found


def peer(request: Request) -> Peer:
    who = caller(request)
    client = request.client
    return Peer(
        client.host if client else "", client.port if client else 0, f"ses:{who.key_id}", "ses"
    )
