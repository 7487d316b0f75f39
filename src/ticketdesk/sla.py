"""Service levels: when a ticket's first response and its resolution are due.

It knows nothing else of ticketdesk (settings parse its values with it).
Targets are hours per priority, counted on a 24/7 clock, or in business hours only when a
calendar such as `Mon-Fri 09:00-17:00 Europe/Berlin` is set. A ticket is breached once a
due time has passed unmet, or was met late. Nothing pauses the clock: a ticket waiting on
its customer (`unresolved`) keeps counting toward its resolution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Priority = Literal["low", "normal", "high", "urgent"]
PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high", "urgent")
"""A ticket's priorities in rank order (0 to 3): the targets are set per priority, so the
names live with the calendar; `tickets/policy.py` re-exports them. Urgent sorts first."""
PRIORITY_NAMES = PRIORITIES

DEFAULT_FIRST_RESPONSE_HOURS = "urgent=1,high=4,normal=8,low=24"
DEFAULT_RESOLUTION_HOURS = "urgent=4,high=24,normal=48,low=120"
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

FIRST_RESPONSE_WAIVED = "canceled"
"""A ticket canceled before anyone answered owes no first response."""
NOTHING_DUE = frozenset({"resolved", FIRST_RESPONSE_WAIVED})
"""Statuses in which no resolution is due: the ticket is resolved, or its customer gave up."""


def parse_hours(text: str) -> dict[int, float]:
    """`urgent=1,high=4,normal=8,low=24` as hours by priority rank; every priority named."""
    hours: dict[int, float] = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        name = name.strip().lower()
        if name not in PRIORITY_NAMES:
            raise ValueError(f"{name!r} is not a priority ({', '.join(PRIORITY_NAMES)})")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{value.strip()!r} is not a number of hours") from None
        if not 0 < number <= 24 * 365:
            raise ValueError(f"{number} hours is out of range (more than 0, at most a year)")
        hours[PRIORITY_NAMES.index(name)] = number
    missing = [name for rank, name in enumerate(PRIORITY_NAMES) if rank not in hours]
    if missing:
        raise ValueError(f"no hours for {', '.join(missing)}")
    return hours


_CALENDAR = re.compile(
    r"\s*(?P<days>[A-Za-z,\- ]+?)\s+(?P<opens>\d{1,2}:\d{2})\s*-\s*(?P<closes>\d{1,2}:\d{2})"
    r"\s+(?P<zone>\S+)\s*"
)


@dataclass(frozen=True)
class BusinessHours:
    """Open on `days` (0 = Monday) from `opens` to `closes`, in the time zone `zone`."""

    days: frozenset[int]
    opens: time
    closes: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str) -> BusinessHours:
        match = _CALENDAR.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is not a calendar like 'Mon-Fri 09:00-17:00 Europe/Berlin'")
        try:
            zone = ZoneInfo(match["zone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{match['zone']!r} is not a time zone") from None
        opens, closes = time.fromisoformat(match["opens"]), time.fromisoformat(match["closes"])
        if opens >= closes:
            raise ValueError("business hours must close after they open, on the same day")
        return cls(_days(match["days"]), opens, closes, zone)

    def add(self, start: datetime, hours: float) -> datetime:
        """`start` plus `hours` of business time (wall-clock hours on open days)."""
        remaining = timedelta(hours=hours)
        moment = start.astimezone(self.zone)
        day = moment.date()
        while True:
            if day.weekday() in self.days:
                opens = datetime.combine(day, self.opens, self.zone)
                closes = datetime.combine(day, self.closes, self.zone)
                begin = max(opens, moment)
                if begin < closes:
                    if remaining <= closes - begin:
                        return (begin + remaining).astimezone(UTC)
                    remaining -= closes - begin
            day += timedelta(days=1)
            moment = datetime.combine(day, time(), self.zone)


def _days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first[:3] not in DAY_NAMES or (last and last[:3] not in DAY_NAMES):
            raise ValueError(f"{part!r} is not a day or a range of days like Mon-Fri")
        start = DAY_NAMES.index(first[:3])
        end = DAY_NAMES.index(last[:3]) if last else start
        day = start
        while True:
            days.add(day)
            if day == end:
                break
            day = (day + 1) % 7
    return frozenset(days)


class DueTimes(NamedTuple):
    first_response_due_at: datetime
    resolution_due_at: datetime


@dataclass(frozen=True)
class Policy:
    """The targets, and the clock they are counted on (None: around the clock)."""

    first_response_hours: dict[int, float]
    resolution_hours: dict[int, float]
    business_hours: BusinessHours | None = None

    @classmethod
    def default(cls) -> Policy:
        return cls(parse_hours(DEFAULT_FIRST_RESPONSE_HOURS), parse_hours(DEFAULT_RESOLUTION_HOURS))

    def _after(self, start: datetime, hours: float) -> datetime:
        if self.business_hours is None:
            return start + timedelta(hours=hours)
        return self.business_hours.add(start, hours)

    def due(self, created_at: datetime, priority: int) -> DueTimes:
        """When a ticket created then with this priority is due: both times count from creation."""
        return DueTimes(
            self._after(created_at, self.first_response_hours[priority]),
            self._after(created_at, self.resolution_hours[priority]),
        )


class SlaState(NamedTuple):
    """What the breach of a ticket depends on."""

    status: str
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None


def breached(ticket: SlaState, now: datetime) -> bool:
    """A due time passed unmet, or was met late (the same test as the list's `breached`)."""
    first_due, resolution_due = ticket.first_response_due_at, ticket.resolution_due_at
    if first_due is not None:
        if ticket.first_response_at is None:
            if ticket.status != FIRST_RESPONSE_WAIVED and now > first_due:
                return True
        elif ticket.first_response_at > first_due:
            return True
    if resolution_due is not None:
        if ticket.status not in NOTHING_DUE and now > resolution_due:
            return True
        if ticket.resolved_at is not None and ticket.resolved_at > resolution_due:
            return True
    return False


def next_due(ticket: SlaState) -> datetime | None:
    """The next time due: the first response until it came, then the resolution."""
    if ticket.status in NOTHING_DUE:
        return None
    if ticket.first_response_at is None:
        return ticket.first_response_due_at
    return ticket.resolution_due_at


FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)
"""Where tickets with nothing due sort, after every real due time."""
