from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ticketdesk.reports.repository import Counts, Durations


class Times(BaseModel):
    tickets: int = Field(description="how many tickets the times are taken over")
    median_seconds: float | None
    p90_seconds: float | None = Field(description="90th percentile, by nearest rank")

    @classmethod
    def of(cls, row: Durations | None) -> Times:
        if row is None:
            return cls(tickets=0, median_seconds=None, p90_seconds=None)
        return cls(tickets=row.tickets, median_seconds=row.median, p90_seconds=row.p90)


class Ratings(BaseModel):
    count: int
    average: float | None


class Figures(BaseModel):
    created: int = Field(description="tickets opened in the period")
    resolved: int = Field(description="tickets resolved in the period")
    canceled: int = Field(description="tickets canceled in the period")
    breaches: int = Field(description="tickets opened in the period whose SLA is breached")
    first_response: Times = Field(description="opening to first response, for tickets opened")
    resolution: Times = Field(description="opening to resolution, for tickets resolved")
    ratings: Ratings = Field(description="ratings given in the period")

    @classmethod
    def of(
        cls, counts: Counts | None, first: Durations | None, resolution: Durations | None
    ) -> Figures:
        return cls(
            created=counts.created if counts else 0,
            resolved=counts.resolved if counts else 0,
            canceled=counts.canceled if counts else 0,
            breaches=counts.breaches if counts else 0,
            first_response=Times.of(first),
            resolution=Times.of(resolution),
            ratings=Ratings(
                count=counts.ratings if counts else 0,
                average=counts.average_rating if counts else None,
            ),
        )


class AssigneeFigures(Figures):
    assignee_id: int | None = Field(description="the tickets' current assignee; null: nobody")


class SummaryOut(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    overall: Figures
    by_assignee: list[AssigneeFigures]
