"""The signed links meetup emails carry: a sign-up's manage link, and a librarian's answer to
a meetup from a campaign email.

Each names one person and one meeting; the signing itself is ``core.links``. The purposes
are part of every link already sent: they never change.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from core.links import LinkError, link_load, link_token
from libraries.models import Librarian

from .models import RSVP, Meeting

RSVP_LINK_PURPOSE = "rsvp"
RSVP_LINK_MAX_AGE = timedelta(days=400)
LIBRARIAN_LINK_PURPOSE = "meeting-answer"
LIBRARIAN_LINK_MAX_AGE = timedelta(days=180)


def rsvp_link_token(rsvp: RSVP) -> str:
    return link_token(
        purpose=RSVP_LINK_PURPOSE,
        payload={"rsvp": rsvp.pk, "meeting": rsvp.meeting_id, "email": rsvp.email.lower()},
    )


def rsvp_from_token(token: str) -> RSVP:
    """The RSVP a manage link names; LinkError if the link is altered, expired or stale."""
    payload = link_load(purpose=RSVP_LINK_PURPOSE, token=token, max_age=RSVP_LINK_MAX_AGE)
    rsvp = (
        RSVP.objects.select_related("meeting", "meeting__series", "meeting__host_library")
        .filter(pk=payload.get("rsvp"), meeting_id=payload.get("meeting"))
        .first()
    )
    if rsvp is None or rsvp.email.lower() != payload.get("email"):
        raise LinkError(expired=False)
    return rsvp


def librarian_answer_token(*, librarian: Librarian, meeting: Meeting) -> str:
    """The token of a librarian's answer link: one person, one meeting."""
    return link_token(
        purpose=LIBRARIAN_LINK_PURPOSE,
        payload={"librarian": librarian.pk, "meeting": meeting.pk},
    )


def librarian_answer_load(token: str) -> tuple[Librarian, Meeting]:
    """The librarian and meeting a link names; LinkError if altered, expired or past."""
    payload = link_load(purpose=LIBRARIAN_LINK_PURPOSE, token=token, max_age=LIBRARIAN_LINK_MAX_AGE)
    librarian = Librarian.objects.select_related("library").filter(pk=payload.get("librarian"))
    meeting = Meeting.objects.select_related("series", "host_library").filter(
        pk=payload.get("meeting")
    )
    librarian, meeting = librarian.first(), meeting.first()
    if librarian is None or meeting is None:
        raise LinkError(expired=False)
    if meeting.end <= timezone.now():
        raise LinkError(expired=True)
    return librarian, meeting
