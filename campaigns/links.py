"""The signed links a campaign email carries: answer an invitation, unsubscribe, preferences.

Each names one delivery (one person, one campaign) and one purpose; the signing itself is
``core.links``. The purposes are part of every link already sent: they never change.
"""

from __future__ import annotations

from datetime import timedelta

from core.links import LinkError, link_load, link_token

from .models import Delivery

ANSWER_PURPOSE = "campaign-answer"
UNSUBSCRIBE_PURPOSE = "campaign-unsubscribe"
PREFERENCES_PURPOSE = "campaign-preferences"
ANSWER_MAX_AGE = timedelta(days=180)
# An unsubscribe link must keep working as long as anyone may keep the email.
UNSUBSCRIBE_MAX_AGE = timedelta(days=3 * 365)


def delivery_token(delivery: Delivery, *, purpose: str) -> str:
    return link_token(purpose=purpose, payload={"d": delivery.pk or 0})


def delivery_from_token(token: str, *, purpose: str) -> Delivery:
    """The delivery a link names; LinkError if altered, expired or unknown."""
    max_age = ANSWER_MAX_AGE if purpose == ANSWER_PURPOSE else UNSUBSCRIBE_MAX_AGE
    payload = link_load(purpose=purpose, token=token, max_age=max_age)
    delivery = (
        Delivery.objects.select_related("campaign", "library", "librarian")
        .filter(pk=payload.get("d"))
        .first()
    )
    if delivery is None:
        raise LinkError(expired=False)
    return delivery
