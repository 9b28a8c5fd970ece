"""The admin pages' Delivery tab of a project: its queue (entries per state and per domain,
the entries themselves), actions on one entry or on every entry of a state or domain (retry
now, hold, release, cancel), its latest events, and a page per message (its status, each
recipient's state and attempts, its events). Forms post with the CSRF token like every
admin form; the project comes from the path only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from postroom.api.queue import SitesOf
from postroom.core.errors import InvalidInput
from postroom.core.events import EventQuery
from postroom.core.ports import EventStore, MessageStore, QueueAdmin, QueueStore
from postroom.core.types import QUEUE_ACTIONS, QUEUE_STATES, QueueFilter, QueueState
from postroom.web.admin.routes import AdminPages, Form, _values, field, read_form

DONE = {
    "retry": "retry",
    "hold": "hold",
    "release": "release",
    "cancel": "cancel",
}


def _state(value: str) -> QueueState | None:
    for state in QUEUE_STATES:
        if value == state:
            return state
    if value:
        raise InvalidInput(f"unknown state {value!r}", "state")
    return None


class DeliveryPages:
    def __init__(
        self,
        pages: AdminPages,
        queue: QueueAdmin,
        events: EventStore,
        store: MessageStore,
        deliveries: QueueStore,
        sites_of: SitesOf | None = None,
    ) -> None:
        self.pages = pages
        self.sites_of = sites_of
        self.queue = queue
        self.events = events
        self.store = store
        self.deliveries = deliveries

    async def message(self, request: Request) -> Response:
        """One message's status, each recipient's state and attempts, and its events."""
        pages = self.pages
        project = await pages._project(request)
        record = await pages.run(self.store.get, project.id, request.path_params["message"])
        entries = await pages.run(self.deliveries.entries, record.id)
        attempts = await pages.run(self.deliveries.attempts, project.id, record.id)
        history = await pages.run(self.events.for_message, project.id, record.id)
        return await pages.render(
            request,
            "delivery_message.html",
            project=project,
            tab="delivery",
            record=record,
            recipients=[
                (
                    e,
                    "deferred" if e.status == "queued" and e.attempts else e.status,
                    [a for a in attempts if a.entry_id == e.id],
                )
                for e in entries
            ],
            events=history,
        )

    async def page(
        self, request: Request, error: InvalidInput | None = None, form: Form | None = None
    ) -> Response:
        pages = self.pages
        project = await pages._project(request)
        params = request.query_params
        try:
            state = _state(params.get("state", ""))
        except InvalidInput as exc:
            error, state = exc, None
        domain = params.get("domain", "").strip() or None
        summary = await pages.run(self.queue.summary, project.id)
        sites = self.sites_of([d.domain for d in summary.domains]) if self.sites_of else {}
        wanted = QueueFilter(state=state, domain=domain, everything=True)
        entries = await pages.run(self.queue.find, project.id, wanted, 0, 100)
        latest = await pages.run(
            self.events.query, project.id, EventQuery(limit=50, newest_first=True)
        )
        done = params.get("done", "")
        count = params.get("count", "")
        notice = (
            f"{DONE[done].capitalize()}: {int(count)} entr{'y' if count == '1' else 'ies'}."
            if done in DONE and count.isdigit()
            else None
        )
        return await pages.render(
            request,
            "delivery.html",
            400 if error else 200,
            project=project,
            tab="delivery",
            summary=summary,
            sites={d: s.site for d, s in sites.items()},
            site_states=list({s.site: s for s in sites.values()}.values()),
            entries=entries,
            events=latest.events,
            states=[("", "any state"), *((s, s) for s in QUEUE_STATES)],
            actions=[(a, a) for a in QUEUE_ACTIONS],
            state=state or "",
            domain=domain or "",
            done_notice=notice,
            error=error,
            form=_values(form),
        )

    async def act(self, request: Request) -> Response:
        pages = self.pages
        project = await pages._project(request)
        form = await read_form(request)
        try:
            action = field(form, "action")
            if action not in QUEUE_ACTIONS:
                raise InvalidInput(f"unknown action {action!r}", "action")
            entry = field(form, "entry")
            if entry:
                if not entry.isdigit():
                    raise InvalidInput("entry must be a queue entry id", "entry")
                wanted = QueueFilter(entry_ids=(int(entry),))
            else:
                wanted = QueueFilter(
                    state=_state(field(form, "state")), domain=field(form, "domain") or None
                )
                if wanted.empty:
                    raise InvalidInput("choose a state or a domain to act on", "state")
            changed = await pages.run(
                self.queue.act, project.id, action, wanted, pages.service.clock.now()
            )
        except InvalidInput as exc:
            return await self.page(request, exc, form)
        query: dict[str, Any] = {"done": action, "count": len(changed)}
        return pages.redirect(f"/admin/projects/{quote(project.id)}/delivery?{urlencode(query)}")


def delivery_routes(
    pages: AdminPages,
    queue: QueueAdmin,
    events: EventStore,
    store: MessageStore,
    deliveries: QueueStore,
    sites_of: SitesOf | None = None,
) -> list[BaseRoute]:
    delivery = DeliveryPages(pages, queue, events, store, deliveries, sites_of)
    base = "/admin/projects/{project}/delivery"
    return [
        Route(base, delivery.page, methods=["GET", "HEAD"]),
        Route(base + "/act", delivery.act, methods=["POST"]),
        Route(base + "/messages/{message}", delivery.message, methods=["GET", "HEAD"]),
    ]
