"""The event model of the Segment/RudderStack tracking spec: track, identify, page, screen, group, alias.

Connectors work on plain dicts (fast, and faithful to whatever a client sent);
these models define what a *valid* event is, for the gateway, for docs, and
for the JSON Schema that ``sluice schema events`` exports. Unknown keys are
kept: clients send vendor-specific extras that destinations may need.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

JSONObject = dict[str, Any]


class Context(BaseModel):
    """Well-known context fields; anything else is allowed and kept."""

    model_config = ConfigDict(extra="allow")

    ip: str | None = None
    locale: str | None = None
    userAgent: str | None = None
    timezone: str | None = None
    traits: JSONObject | None = None
    library: JSONObject | None = None
    app: JSONObject | None = None
    device: JSONObject | None = None
    os: JSONObject | None = None
    page: JSONObject | None = None
    screen: JSONObject | None = None
    campaign: JSONObject | None = None
    network: JSONObject | None = None
    externalId: list[JSONObject] | None = None


class BaseEvent(BaseModel):
    """Fields common to every event type."""

    model_config = ConfigDict(extra="allow")

    type: str
    messageId: str | None = Field(default=None, description="unique per event; used to deduplicate")
    anonymousId: str | None = None
    userId: str | None = None
    context: Context | None = None
    integrations: dict[str, Any] | None = Field(
        default=None, description='per-destination switches: {"All": true, "Amplitude": false}'
    )
    timestamp: str | None = None
    originalTimestamp: str | None = None
    sentAt: str | None = None
    receivedAt: str | None = None
    channel: str | None = None

    @model_validator(mode="after")
    def _identified(self) -> BaseEvent:
        if not (self.userId or self.anonymousId):
            raise ValueError("an event needs userId or anonymousId; set at least one")
        return self


class TrackEvent(BaseEvent):
    type: Literal["track"]
    event: str = Field(min_length=1)
    properties: JSONObject | None = None


class IdentifyEvent(BaseEvent):
    type: Literal["identify"]
    traits: JSONObject | None = None


class PageEvent(BaseEvent):
    type: Literal["page"]
    name: str | None = None
    category: str | None = None
    properties: JSONObject | None = None


class ScreenEvent(BaseEvent):
    type: Literal["screen"]
    name: str | None = None
    category: str | None = None
    properties: JSONObject | None = None


class GroupEvent(BaseEvent):
    type: Literal["group"]
    groupId: str | int = Field(description="the account, company or organisation")
    traits: JSONObject | None = None


class AliasEvent(BaseEvent):
    type: Literal["alias"]
    previousId: str = Field(min_length=1)


Event = Annotated[
    TrackEvent | IdentifyEvent | PageEvent | ScreenEvent | GroupEvent | AliasEvent,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)


def parse_event(data: dict[str, Any]) -> BaseEvent:
    """Validate one event; raises pydantic.ValidationError with the offending field."""
    return EVENT_ADAPTER.validate_python(data)


def event_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of an event, for other tools and languages."""
    schema = EVENT_ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Sluice event"
    return schema


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(event_json_schema(), indent=2))
