"""One of everything a coordinator page shows, in one region: the permission and query sweeps
call it once to have something to look at, and again to have more of it."""

import itertools

from django.utils import timezone

from campaigns.models import Campaign, Delivery, Message
from drives.models import Drive, DriveContribution, Lead
from libraries.models import ActivitySignal, LibraryStatusChange, Region
from meetings.models import RSVP
from meetings.services import meetings_materialise
from tests.factories import (
    LibrarianFactory,
    LibraryFactory,
    MailingListFactory,
    MeetupSeriesFactory,
    drive_contribution,
)

_revids = itertools.count(1)


def _contribution(drive, library, librarian, *, page: str, tagged: bool) -> DriveContribution:
    return drive_contribution(
        drive,
        tagged=tagged,
        library=library,
        librarian=librarian,
        wiki="frwiki",
        revid=next(_revids),
        page=page,
        username="Demo",
    )


def outreach_objects(*, region: Region | None = None) -> dict:
    library = LibraryFactory(region=region) if region else LibraryFactory()
    region = library.region
    librarian = LibrarianFactory(library=library)
    mailing_list = MailingListFactory(region=region)
    mailing_list.members.add(library)
    series = MeetupSeriesFactory(host_library=library)
    meetings_materialise(series=series)
    meeting = series.meetings.order_by("start").first()
    RSVP.objects.create(
        meeting=meeting,
        librarian=librarian,
        name=librarian.name,
        email=librarian.email,
        answer="yes",
    )
    ActivitySignal.objects.create(
        library=library, librarian=librarian, kind="attended", occurred_at=timezone.now()
    )
    LibraryStatusChange.objects.create(
        library=library, from_status="prospect", to_status="contacted", changed_at=timezone.now()
    )
    campaign = Campaign.objects.create(title=f"Wikipermanences {library.name}")
    Message.objects.create(campaign=campaign, language="fr", subject="Bonjour", body="Bonjour")
    campaign.mailing_lists.add(mailing_list)
    campaign.regions.add(region)
    delivery = Delivery.objects.create(
        campaign=campaign, email=mailing_list.posting_address, mailing_list=mailing_list
    )
    Delivery.objects.create(
        campaign=campaign, email=librarian.email, librarian=librarian, library=library
    )
    drive = Drive.objects.create(
        title=f"#1lib1ref {library.name}",
        hashtags="#1lib1ref",
        wikis="frwiki",
    )
    drive.regions.add(region)
    contribution = _contribution(drive, library, librarian, page="Lausanne", tagged=False)
    _contribution(drive, library, librarian, page="Morges", tagged=True)
    # A participant who was not in the directory, since linked to the librarian.
    lead = Lead.objects.create(
        wiki="frwiki",
        username=f"Participant {library.pk}",
        language="fr",
        status=Lead.Status.LINKED,
        librarian=librarian,
    )
    return {
        "region": region,
        "campaign": campaign,
        "delivery": delivery,
        "drive": drive,
        "contribution": contribution,
        "lead": lead,
        "library": library,
        "librarian": librarian,
        "mailing_list": mailing_list,
        "series": series,
        "meeting": meeting,
    }


def outreach_objects_grow(objects: dict) -> None:
    """More rows hanging from the same objects: librarians at the library, signals, list
    members, RSVPs to the meeting, deliveries of the campaign, contributions to the drive."""
    extra = outreach_objects(region=objects["region"])
    library, librarian = objects["library"], LibrarianFactory(library=objects["library"])
    ActivitySignal.objects.create(
        library=library, librarian=librarian, kind="tagged_edit", occurred_at=timezone.now()
    )
    objects["mailing_list"].members.add(extra["library"])
    RSVP.objects.create(
        meeting=objects["meeting"],
        librarian=librarian,
        name=librarian.name,
        email=librarian.email,
        answer="yes",
    )
    objects["campaign"].librarians.add(librarian)
    Delivery.objects.create(
        campaign=objects["campaign"], email=librarian.email, librarian=librarian, library=library
    )
    for tagged in (True, False):
        _contribution(objects["drive"], library, librarian, page="Morges", tagged=tagged)
