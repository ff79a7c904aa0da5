"""When people are at work: ``BUSINESS_HOURS`` in ``BUSINESS_TIMEZONE``.

The setting is a list of day ranges and hours separated by ``;``, for example
``mon-fri 08:00-18:00; sat 09:00-13:00``. Days are ``mon`` … ``sun``; hours are
local time in ``BUSINESS_TIMEZONE`` (default ``America/Sao_Paulo``). Empty
means always open.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PART = re.compile(r"^\s*(?P<d1>[a-z]{3})(?:\s*-\s*(?P<d2>[a-z]{3}))?\s+"
                   r"(?P<h1>\d{1,2}):(?P<m1>\d{2})\s*-\s*(?P<h2>\d{1,2}):(?P<m2>\d{2})\s*$")


class BadSchedule(ValueError):
    """The BUSINESS_HOURS setting cannot be read."""


@dataclass(frozen=True)
class Schedule:
    # weekday (0 = Monday) -> list of (opens, closes) local times
    hours: dict[int, tuple[tuple[time, time], ...]]
    zone: ZoneInfo

    @property
    def always_open(self) -> bool:
        return not self.hours

    def is_open(self, when: datetime) -> bool:
        if self.always_open:
            return True
        local = when.astimezone(self.zone)
        return any(opens <= local.time() < closes for opens, closes in self.hours.get(local.weekday(), ()))

    def next_opening(self, when: datetime) -> datetime | None:
        """The next moment people are at work (``when`` itself if open now),
        in local time; None when the schedule is always open."""
        if self.always_open:
            return None
        local = when.astimezone(self.zone)
        if self.is_open(local):
            return local
        for days_ahead in range(8):
            day = (local + timedelta(days=days_ahead)).date()
            for opens, _ in sorted(self.hours.get(day.weekday(), ())):
                start = datetime.combine(day, opens, tzinfo=self.zone)
                if start > local:
                    return start
        return None


def parse(spec: str | None, timezone: str = "America/Sao_Paulo") -> Schedule:
    try:
        zone = ZoneInfo(timezone or "America/Sao_Paulo")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadSchedule(f"unknown time zone {timezone!r}") from exc
    hours: dict[int, list[tuple[time, time]]] = {}
    for part in filter(None, (p.strip() for p in (spec or "").lower().split(";"))):
        match = _PART.match(part)
        if not match or match["d1"] not in DAYS or (match["d2"] and match["d2"] not in DAYS):
            raise BadSchedule(f"cannot read {part!r}: write for example 'mon-fri 08:00-18:00'")
        try:
            opens = time(int(match["h1"]), int(match["m1"]))
            closes = time(int(match["h2"]), int(match["m2"])) if match["h2"] != "24" else time.max
        except ValueError as exc:
            raise BadSchedule(f"cannot read the hours in {part!r}") from exc
        if closes <= opens:
            raise BadSchedule(f"in {part!r} the closing time must come after the opening time")
        first = DAYS.index(match["d1"])
        last = DAYS.index(match["d2"] or match["d1"])
        day = first
        while True:
            hours.setdefault(day, []).append((opens, closes))
            if day == last:
                break
            day = (day + 1) % 7
    return Schedule({day: tuple(spans) for day, spans in hours.items()}, zone)


def from_config(config) -> Schedule:
    return parse(config.get("BUSINESS_HOURS", ""), config.get("BUSINESS_TIMEZONE", "America/Sao_Paulo"))
