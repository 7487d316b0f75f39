"""What the API takes and answers about tags."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from ticketdesk.schemas import RequestBody
from ticketdesk.tags import policy

TagName = Annotated[str, AfterValidator(policy.normalize)]
"""A tag as given: normalized (`tags/policy.py`), or a 422 naming the field with the rule."""


class TagList(RequestBody):
    tags: list[TagName] = Field(
        max_length=4 * policy.MAX_PER_TICKET,
        description=f"{policy.RULE}; a ticket holds at most {policy.MAX_PER_TICKET}",
    )


class TicketTags(BaseModel):
    """A ticket's tags, sorted."""

    tags: list[str]


class TagCount(BaseModel):
    name: str
    tickets: int = Field(description="how many tickets hold it")


class TagRename(RequestBody):
    name: TagName = Field(description="the new name; an existing tag's: the two are merged")
