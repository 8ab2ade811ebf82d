"""Recurrence rules of meetup series: RFC 5545 RRULE strings, built from plain words.

A series stores its rule as an RRULE value ("FREQ=MONTHLY;BYDAY=+1TH") and its start as a
local date and time in an IANA time zone. Occurrences are computed in local wall-clock time
and only then made aware, so a noon meetup stays at 12:00 local across daylight-saving
changes (RFC 5545 §3.3.10: DTSTART with a TZID recurs in local time).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# RFC 5545 weekday codes, Monday first as in the standard's examples.
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
WEEKDAY_CHOICES = [
    ("MO", gettext_lazy("Monday")),
    ("TU", gettext_lazy("Tuesday")),
    ("WE", gettext_lazy("Wednesday")),
    ("TH", gettext_lazy("Thursday")),
    ("FR", gettext_lazy("Friday")),
    ("SA", gettext_lazy("Saturday")),
    ("SU", gettext_lazy("Sunday")),
]
ORDINAL_CHOICES = [
    (1, gettext_lazy("first")),
    (2, gettext_lazy("second")),
    (3, gettext_lazy("third")),
    (4, gettext_lazy("fourth")),
    (-1, gettext_lazy("last")),
]
PATTERN_CHOICES = [
    ("monthly", gettext_lazy("Every month, on a given weekday (first Thursday, last Friday…)")),
    ("weekly", gettext_lazy("Every week or every few weeks, on a given weekday")),
]


@dataclass(frozen=True)
class Rule:
    """A rule in the words a coordinator picks: what the series form edits."""

    pattern: str  # "monthly" or "weekly"
    weekday: str  # "MO" … "SU"
    ordinal: int = 1  # monthly: 1–4, or -1 for the last one
    interval: int = 1  # weekly: every N weeks

    def to_rrule(self) -> str:
        if self.weekday not in WEEKDAYS:
            raise ValueError(f"Unknown weekday {self.weekday!r}")
        if self.pattern == "monthly":
            if self.ordinal not in (1, 2, 3, 4, -1):
                raise ValueError(f"Unknown ordinal {self.ordinal!r}")
            return f"FREQ=MONTHLY;BYDAY={self.ordinal:+d}{self.weekday}"
        if self.pattern == "weekly":
            if not 1 <= self.interval <= 52:
                raise ValueError(f"Interval out of range: {self.interval!r}")
            interval = f";INTERVAL={self.interval}" if self.interval > 1 else ""
            return f"FREQ=WEEKLY{interval};BYDAY={self.weekday}"
        raise ValueError(f"Unknown pattern {self.pattern!r}")

    @classmethod
    def from_rrule(cls, value: str) -> Rule:
        """The plain-words form of an RRULE this module wrote."""
        parts = dict(part.split("=", 1) for part in value.upper().split(";") if "=" in part)
        byday = parts.get("BYDAY", "")
        weekday = byday[-2:]
        if parts.get("FREQ") == "MONTHLY":
            return cls("monthly", weekday, ordinal=int(byday[:-2] or 1))
        if parts.get("FREQ") == "WEEKLY":
            return cls("weekly", weekday, interval=int(parts.get("INTERVAL", 1)))
        raise ValueError(f"Unsupported rule {value!r}")

    def describe(self, at: time | None = None) -> str:
        """ "every first Thursday of the month at 12:00", in the active language."""
        weekday = dict(WEEKDAY_CHOICES)[self.weekday]
        if self.pattern == "monthly":
            # Translators: "every first Thursday of the month"; ordinal and weekday come from
            # the lists of ordinals and weekdays.
            text = _("every %(ordinal)s %(weekday)s of the month") % {
                "ordinal": dict(ORDINAL_CHOICES)[self.ordinal],
                "weekday": weekday,
            }
        elif self.interval == 1:
            text = _("every %(weekday)s") % {"weekday": weekday}
        else:
            text = _("every %(interval)d weeks on %(weekday)s") % {
                "interval": self.interval,
                "weekday": weekday,
            }
        if at is not None:
            text = _("%(rule)s at %(time)s") % {"rule": text, "time": at.strftime("%H:%M")}
        return text


def occurrences(
    *,
    rrule: str,
    start_date: date,
    start_time: time,
    time_zone: str,
    after: datetime,
    before: datetime,
) -> Iterator[datetime]:
    """The aware start of every occurrence in [after, before), computed in local time.

    The rule runs on naive local datetimes from ``start_date`` at ``start_time``; each
    occurrence is then placed in ``time_zone`` (zoneinfo picks the offset of that day).
    """
    zone = ZoneInfo(time_zone)
    dtstart = datetime.combine(start_date, start_time)
    rule = rrulestr(rrule, dtstart=dtstart)
    # Bounds in local wall-clock time, widened by a day so that offsets cannot drop an edge.
    local_after = after.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    local_before = before.astimezone(zone).replace(tzinfo=None) + timedelta(days=1)
    for local in rule.between(local_after, local_before, inc=True):
        aware = local.replace(tzinfo=zone)
        if after <= aware < before:
            yield aware
