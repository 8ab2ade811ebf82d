"""Recurrence rules: plain words in, RFC 5545 out, occurrences in local time across DST."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from meetings.recurrence import Rule, occurrences

ZURICH = ZoneInfo("Europe/Zurich")


def _starts(rrule, after, before, at=time(12, 0), zone="Europe/Zurich"):
    return list(
        occurrences(
            rrule=rrule,
            start_date=date(2026, 1, 1),
            start_time=at,
            time_zone=zone,
            after=after,
            before=before,
        )
    )


@pytest.mark.parametrize(
    ("rule", "rrule"),
    [
        (Rule("monthly", "TH", ordinal=1), "FREQ=MONTHLY;BYDAY=+1TH"),
        (Rule("monthly", "FR", ordinal=-1), "FREQ=MONTHLY;BYDAY=-1FR"),
        (Rule("weekly", "WE"), "FREQ=WEEKLY;BYDAY=WE"),
        (Rule("weekly", "TU", interval=2), "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU"),
    ],
)
def test_plain_words_become_an_rfc5545_rule_and_back(rule, rrule):
    assert rule.to_rrule() == rrule
    assert Rule.from_rrule(rrule) == rule
    rrulestr(rrule, dtstart=datetime(2026, 1, 1))  # noqa: DTZ001 - RRULEs run on local time


def test_a_rule_is_described_in_plain_words():
    assert Rule("monthly", "TH", ordinal=1).describe(time(12, 0)) == (
        "every first Thursday of the month at 12:00"
    )
    assert Rule("weekly", "TU", interval=2).describe() == "every 2 weeks on Tuesday"


def test_nonsense_rules_are_refused():
    for rule in (Rule("monthly", "XX"), Rule("monthly", "TH", ordinal=7), Rule("daily", "TH")):
        with pytest.raises(ValueError):
            rule.to_rrule()


def test_a_noon_meetup_stays_at_noon_across_the_march_change():
    # 2027: summer time starts on 28 March. First Thursdays: 4 March (UTC+1), 1 April (UTC+2).
    starts = _starts(
        "FREQ=MONTHLY;BYDAY=+1TH",
        datetime(2027, 3, 1, tzinfo=UTC),
        datetime(2027, 4, 30, tzinfo=UTC),
    )
    assert [s.astimezone(ZURICH).strftime("%Y-%m-%d %H:%M") for s in starts] == [
        "2027-03-04 12:00",
        "2027-04-01 12:00",
    ]
    assert [s.astimezone(UTC).hour for s in starts] == [11, 10]


def test_a_noon_meetup_stays_at_noon_across_the_october_change():
    # 2026: winter time starts on 25 October. Last Thursdays: 29 October is after it.
    starts = _starts(
        "FREQ=MONTHLY;BYDAY=-1TH",
        datetime(2026, 9, 1, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
    )
    assert [s.astimezone(ZURICH).strftime("%Y-%m-%d %H:%M") for s in starts] == [
        "2026-09-24 12:00",
        "2026-10-29 12:00",
    ]
    assert [s.astimezone(UTC).hour for s in starts] == [10, 11]


def test_every_two_weeks_counts_from_the_first_date():
    starts = _starts(
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TH",
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),
        at=time(18, 30),
    )
    assert [s.astimezone(ZURICH).day for s in starts] == [1, 15, 29]


def test_occurrences_respect_both_bounds_exactly():
    noon_march_5_2026 = datetime(2026, 3, 5, 11, 0, tzinfo=UTC)
    assert _starts("FREQ=MONTHLY;BYDAY=+1TH", noon_march_5_2026, noon_march_5_2026) == []
    starts = _starts(
        "FREQ=MONTHLY;BYDAY=+1TH", noon_march_5_2026, datetime(2026, 4, 2, 10, 0, tzinfo=UTC)
    )
    assert starts == [noon_march_5_2026]


def test_a_series_in_another_time_zone_keeps_its_own_local_time():
    starts = _starts(
        "FREQ=MONTHLY;BYDAY=+1WE",
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 6, 1, tzinfo=UTC),
        at=time(9, 0),
        zone="Australia/Sydney",
    )
    sydney = ZoneInfo("Australia/Sydney")
    # Sydney leaves summer time on 5 April 2026: 9:00 local every time, 22:00 UTC before
    # the change and 23:00 UTC after it.
    local = [s.astimezone(sydney).strftime("%m-%d %H:%M") for s in starts]
    assert local == ["03-04 09:00", "04-01 09:00", "05-06 09:00"]
    assert [s.astimezone(UTC).hour for s in starts] == [22, 22, 23]
