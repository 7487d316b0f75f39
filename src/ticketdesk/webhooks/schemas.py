from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AnyHttpUrl, BaseModel, Field, StringConstraints, field_validator

from ticketdesk.events.schemas import EventKind, EventOut
from ticketdesk.schemas import RequestBody, Storable
from ticketdesk.webhooks.repository import WebhookRow, state

WebhookUrl = Annotated[str, StringConstraints(min_length=1, max_length=2048), Storable]


def _http_url(value: str) -> str:
    url = AnyHttpUrl(value)
    if url.username or url.password:
        raise ValueError("a webhook URL may not carry a user name or password")
    return value


def _kinds(value: list[EventKind]) -> list[EventKind]:
    if len(set(value)) != len(value):
        raise ValueError("each event kind once")
    return value


class WebhookCreate(RequestBody):
    url: WebhookUrl = Field(description="http(s) URL the events are POSTed to")
    events: list[EventKind] = Field(min_length=1, description="the event kinds it receives")

    _url_is_http = field_validator("url")(_http_url)
    _kinds_once = field_validator("events")(_kinds)


class WebhookUpdate(RequestBody):
    url: WebhookUrl | None = None
    events: list[EventKind] | None = Field(default=None, min_length=1)
    is_active: bool | None = Field(
        default=None,
        description="true enables an endpoint again after failures disabled or paused it "
        "(its waiting calls go at once); false disables it",
    )

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("events")
    @classmethod
    def _kinds_once(cls, value: list[EventKind] | None) -> list[EventKind] | None:
        return None if value is None else _kinds(value)


WebhookState = Literal["active", "paused", "disabled"]


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[EventKind]
    is_active: bool
    disabled_reason: str | None = Field(description="why failures disabled it, if they did")
    created_at: datetime
    state: WebhookState = Field(
        description="active; paused after WEBHOOK_PAUSE_AFTER failed calls in a row (its calls "
        "wait, a probe tries again at paused_until, a success resumes it); or disabled"
    )
    consecutive_failures: int = Field(description="calls failed in a row, since the last success")
    paused_until: datetime | None = Field(description="while paused: when the next probe goes")
    paused_reason: str | None = Field(description="while paused: why")

    @classmethod
    def of(cls, row: WebhookRow) -> Self:
        return cls(
            **row._asdict(),
            state=state(row.is_active, row.paused_until is not None),
        )


class NewWebhookOut(WebhookOut):
    secret: str = Field(
        description="The signing secret (whsec_...), shown this once: verify each call's "
        "webhook-signature with it (Standard Webhooks)"
    )


DeliveryStatus = Literal["queued", "running", "done", "failed"]


class DeliveryOut(BaseModel):
    id: int
    event_id: int | None
    status: DeliveryStatus = Field(description="done: the endpoint answered 2xx")
    attempts: int
    response_code: int | None = Field(description="the HTTP status of the last attempt")
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="while queued")
    created_at: datetime
    finished_at: datetime | None


class WebhookCall(BaseModel):
    """The body POSTed to an endpoint for each event it subscribes to."""

    type: str = Field(description="`ticket.` and the event's kind, e.g. ticket.message")
    timestamp: datetime = Field(description="when the event happened")
    data: EventOut = Field(description="the event, as the feed (GET /events) has it")


def call_body(event: EventOut) -> dict[str, Any]:
    return WebhookCall(type=f"ticket.{event.kind}", timestamp=event.at, data=event).model_dump(
        mode="json"
    )
