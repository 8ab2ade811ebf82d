"""Dates written out in words the way the active language writes them.

Django's named formats (DATE_FORMAT, …) have no "weekday, day month year, time" pattern, so
these filters carry one per language: "Thursday 3 December 2026, 12:00", "jeudi 3 décembre
2026, 12:00", "Donnerstag, 3. Dezember 2026, 12:00". Like ``date``, they show an aware
datetime in the current time zone (``{% timezone %}`` included).
"""

from django import template
from django.utils.formats import date_format
from django.utils.translation import get_language

register = template.Library()

PATTERNS = {
    # name: (default, {language: pattern})
    "long": ("l j F Y, H:i", {"de": "l, j. F Y, H:i"}),
    "long_no_year": ("l j F, H:i", {"de": "l, j. F, H:i"}),
    "day_month_time": ("j F H:i", {"de": "j. F H:i"}),
}


def _format(value, name: str) -> str:
    if value in (None, ""):
        return ""
    default, by_language = PATTERNS[name]
    language = (get_language() or "").split("-")[0]
    return date_format(value, by_language.get(language, default))


@register.filter(expects_localtime=True)
def long_datetime(value) -> str:
    return _format(value, "long")


@register.filter(expects_localtime=True)
def long_datetime_no_year(value) -> str:
    return _format(value, "long_no_year")


@register.filter(expects_localtime=True)
def day_month_time(value) -> str:
    return _format(value, "day_month_time")
