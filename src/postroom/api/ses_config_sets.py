"""SES API v2 configuration sets and event destinations (core/config_sets.py):
CreateConfigurationSet, GetConfigurationSet, ListConfigurationSets, DeleteConfigurationSet,
CreateConfigurationSetEventDestination, GetConfigurationSetEventDestinations,
UpdateConfigurationSetEventDestination and DeleteConfigurationSetEventDestination, with SES's
request and answer shapes.

An event destination is delivered to a Postroom webhook named by `SnsDestination.TopicArn`
(the webhook's id, or an ARN ending in `:` and the id); other destination kinds are a
BadRequestException naming the field. `Enabled` defaults to false, as SES. A configuration
set's options are kept and returned as given; only SendingOptions.SendingEnabled changes what
Postroom does. Errors: NotFoundException, AlreadyExistsException, LimitExceededException
(MAX_CONFIGURATION_SETS per project, MAX_EVENT_DESTINATIONS per set), BadRequestException.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from postroom.api.ses_context import SesApi, caller
from postroom.core.config_sets import (
    OPTION_FIELDS,
    ConfigurationSet,
    EventDestination,
    check_matching,
    check_name,
    webhook_of_topic,
)
from postroom.core.errors import InvalidInput

Handler = Callable[[Request], Awaitable[Response]]
Body = Callable[[Request], Awaitable[dict[str, Any]]]
_OTHER_DESTINATIONS = (
    "KinesisFirehoseDestination",
    "CloudWatchDestination",
    "EventBridgeDestination",
    "PinpointDestination",
)
_MAX_OPTIONS = 16 * 1024  # bytes of a set's options as JSON
_MAX_RESOURCE_TAGS = 50


def _options(body: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in OPTION_FIELDS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise InvalidInput(f"{name} must be a structure", name)
        options[name] = value
    sending = options.get("SendingOptions", {})
    if "SendingEnabled" in sending and not isinstance(sending["SendingEnabled"], bool):
        raise InvalidInput("SendingOptions.SendingEnabled must be true or false", "SendingOptions")
    if len(json.dumps(options)) > _MAX_OPTIONS:
        raise InvalidInput(f"the options are longer than {_MAX_OPTIONS} bytes", "body")
    return options


def _resource_tags(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > _MAX_RESOURCE_TAGS:
        raise InvalidInput(f"Tags must be a list of at most {_MAX_RESOURCE_TAGS} tags", "Tags")
    out = []
    for i, item in enumerate(value):
        key = item.get("Key") if isinstance(item, dict) else None
        tag = item.get("Value", "") if isinstance(item, dict) else None
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or not isinstance(tag, str):
            raise InvalidInput(f"Tags[{i}] needs a Key (1 to 128 characters) and a Value", "Tags")
        if len(tag) > 256:
            raise InvalidInput(f"Tags[{i}].Value is longer than 256 characters", "Tags")
        out.append((key, tag))
    return tuple(out)


def _definition(value: Any) -> tuple[bool, tuple[str, ...], str, str]:
    """(Enabled, MatchingEventTypes, webhook id, TopicArn) of an EventDestinationDefinition."""
    if not isinstance(value, dict):
        raise InvalidInput("EventDestination is required (a structure)", "EventDestination")
    for name in _OTHER_DESTINATIONS:
        if value.get(name) is not None:
            raise InvalidInput(
                f"EventDestination.{name}: Postroom delivers events to webhooks only; give "
                "SnsDestination.TopicArn naming a webhook of this project",
                f"EventDestination.{name}",
            )
    enabled = value.get("Enabled", False)
    if not isinstance(enabled, bool):
        raise InvalidInput("EventDestination.Enabled must be true or false", "Enabled")
    matching = check_matching(value.get("MatchingEventTypes"), "MatchingEventTypes")
    sns = value.get("SnsDestination")
    if not isinstance(sns, dict):
        raise InvalidInput(
            "EventDestination.SnsDestination is required: its TopicArn names the webhook that "
            "receives the events",
            "SnsDestination.TopicArn",
        )
    topic = sns.get("TopicArn")
    webhook_id = webhook_of_topic(topic)
    assert isinstance(topic, str)
    return enabled, matching, webhook_id, topic.strip()


def _set_view(found: ConfigurationSet) -> dict[str, Any]:
    out: dict[str, Any] = {"ConfigurationSetName": found.name, **found.options}
    out["Tags"] = [{"Key": k, "Value": v} for k, v in found.tags]
    return out


def _destination_view(found: EventDestination) -> dict[str, Any]:
    return {
        "Name": found.name,
        "Enabled": found.enabled,
        "MatchingEventTypes": list(found.matching),
        "SnsDestination": {"TopicArn": found.topic_arn},
    }


def routes(
    api: SesApi, body_of: Body, page: Callable[[Any, Any], tuple[int, int]]
) -> list[tuple[str, list[str], Handler]]:
    """(path, methods, handler) of the operations; `body_of` reads a JSON body, `page` turns
    NextToken and PageSize into (start, size)."""
    store = api.configuration_sets

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def sets(request: Request) -> Response:
        project = caller(request).project
        body = await body_of(request) if request.method == "POST" else {}
        if request.method == "POST" and request.url.path.endswith("/configuration-sets"):
            name = check_name(body.get("ConfigurationSetName"), "ConfigurationSetName")
            made = ConfigurationSet(
                project, name, api.clock.now(), _options(body), _resource_tags(body.get("Tags"))
            )
            await run(store.create, made)
            return JSONResponse({})
        params = request.query_params
        start, size = page(
            body.get("NextToken") or params.get("NextToken") or "0",
            body.get("PageSize") or params.get("PageSize") or 1000,
        )
        items = await run(store.list, project)
        answer: dict[str, Any] = {
            "ConfigurationSets": [s.name for s in items[start : start + size]]
        }
        if start + size < len(items):
            answer["NextToken"] = str(start + size)
        return JSONResponse(answer)

    async def one_set(request: Request) -> Response:
        project = caller(request).project
        name = request.path_params["name"]
        if request.method == "DELETE":
            await run(store.delete, project, name)
            return JSONResponse({})
        return JSONResponse(_set_view(await run(store.get, project, name)))

    async def destinations(request: Request) -> Response:
        project = caller(request).project
        set_name = request.path_params["name"]
        if request.method == "POST":
            body = await body_of(request)
            name = check_name(body.get("EventDestinationName"), "EventDestinationName")
            enabled, matching, webhook_id, topic = _definition(body.get("EventDestination"))
            made = EventDestination(
                project, set_name, name, enabled, matching, webhook_id, topic, api.clock.now()
            )
            await run(store.add_destination, made)
            return JSONResponse({})
        found = await run(store.destinations, project, set_name)
        return JSONResponse({"EventDestinations": [_destination_view(d) for d in found]})

    async def one_destination(request: Request) -> Response:
        project = caller(request).project
        set_name = request.path_params["name"]
        name = request.path_params["destination"]
        if request.method == "DELETE":
            await run(store.delete_destination, project, set_name, name)
            return JSONResponse({})
        body = await body_of(request)
        enabled, matching, webhook_id, topic = _definition(body.get("EventDestination"))
        changed = EventDestination(
            project, set_name, name, enabled, matching, webhook_id, topic, api.clock.now()
        )
        await run(store.update_destination, changed)
        return JSONResponse({})

    base = "/v2/email/configuration-sets"
    return [
        (base, ["GET", "POST"], sets),
        ("/v2/email/list-configuration-sets", ["POST"], sets),
        (base + "/{name}", ["GET", "DELETE"], one_set),
        (base + "/{name}/event-destinations", ["GET", "POST"], destinations),
        (base + "/{name}/event-destinations/{destination}", ["PUT", "DELETE"], one_destination),
    ]


__all__ = ["routes"]
