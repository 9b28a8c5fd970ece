"""Email templates per project: stored in versions, checked when saved, rendered for a send.

A template has a name (1-64 letters, digits, `-` and `_`), a subject, a text part and an HTML
part in Handlebars syntax (pipeline/templates.py: safe, bounded; HTML escaped in the HTML part
only). Saving parses all three, so a malformed template is refused when it is written (400
naming the part), not when mail is sent. Rendering with data that lacks a variable is an
InvalidInput naming the variable and the part (`template.data.<name>`).

Used by the native send API and its template routes, and by the SES-compatible API.
"""

from __future__ import annotations

import asyncio
import functools
import re
from dataclasses import dataclass
from typing import Any

from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput
from postroom.core.sending import SendingStore, Template
from postroom.pipeline.templates import MissingVariable, TemplateError, parse, render

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PARTS = ("subject", "text", "html")
MAX_TEMPLATES = 10_000  # per project, as SES per account and region (config: max_templates)
# Parsed trees of recent templates (rendering only reads them): bulk sends parse once.
_parse = functools.lru_cache(maxsize=512)(parse)


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
    template: Template


def check_name(name: Any, field: str = "name") -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(
            f"{field} must be 1 to 64 letters, digits, '-' or '_' (got {name!r})", field
        )
    return name


def _check_parts(subject: str, text: str, html: str) -> None:
    if "\r" in subject or "\n" in subject:
        raise InvalidInput("subject must be one line", "subject")
    if not (text or html):
        raise InvalidInput("a template needs text or html", "text")
    for part, source in zip(PARTS, (subject, text, html), strict=True):
        try:
            parse(source)
        except TemplateError as exc:
            raise InvalidInput(f"{part}: {exc}", part) from None


def render_parts(template: Template, data: Any, field: str = "template") -> Rendered:
    """`template` rendered with `data` (a JSON object). Raises InvalidInput naming a missing
    variable (`{field}.data.<variable>`) or the limit that was hit."""
    prefix = f"{field}." if field else ""
    if not isinstance(data, dict):
        raise InvalidInput(f"{prefix}data must be a JSON object", f"{prefix}data")
    out: list[str] = []
    for part, source in zip(PARTS, (template.subject, template.text, template.html), strict=True):
        try:
            out.append(render(_parse(source), data, escape_html=part == "html"))
        except MissingVariable as exc:
            raise InvalidInput(
                f"template {template.name!r} (version {template.version}) {part}: the variable "
                f"{exc.name!r} is missing from the data",
                f"{prefix}data.{exc.name}",
            ) from None
        except TemplateError as exc:
            raise InvalidInput(f"template {template.name!r} {part}: {exc}", field or part) from None
    return Rendered(out[0], out[1], out[2], template)


class TemplateService:
    """`max_templates`: the most templates (names) a project may have; creating one more is
    LimitExceeded (SES's LimitExceededException; the config option max_templates)."""

    def __init__(
        self, store: SendingStore, clock: Clock, max_templates: int = MAX_TEMPLATES
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_templates = max_templates

    def save(
        self, project: str, name: str, subject: str, text: str, html: str, *, create: bool
    ) -> Template:
        check_name(name)
        _check_parts(subject, text, html)
        return self.store.save_template(
            project,
            name,
            (subject, text, html),
            self.clock.now(),
            create=create,
            limit=self.max_templates,
        )

    def get(self, project: str, name: str, version: int | None = None) -> Template:
        return self.store.get_template(project, check_name(name), version)

    def list(self, project: str) -> list[Template]:
        return self.store.list_templates(project)

    def delete(self, project: str, name: str) -> None:
        self.store.delete_template(project, check_name(name))

    async def render(
        self,
        project: str,
        name: str,
        data: Any,
        version: int | None = None,
        field: str = "template",
    ) -> Rendered:
        template = await asyncio.to_thread(self.get, project, name, version)
        return render_parts(template, data, field)
