"""factory_boy factories for the domain: realistic defaults, unique where the model says so."""

import datetime

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from libraries.models import ActivitySignal, Librarian, Library, MailingList, Region, ScoreBasis
from meetings.models import MeetupSeries


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password("correct horse battery staple")


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Region {n}")
    slug = factory.Sequence(lambda n: f"region-{n}")
    language = "fr"
    time_zone = "Europe/Zurich"


class LibraryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Library
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Bibliothèque {n}")
    slug = factory.Sequence(lambda n: f"bibliotheque-{n}")
    region = factory.SubFactory(RegionFactory)
    city = "Lausanne"
    address = "Place de la Riponne 6"
    website = "https://library.example.org"
    languages = "fr"
    status = Library.Status.PROSPECT

    class Params:
        # A score as the last refresh left it: the stored sum at a basis of scale 1, which is
        # made when there is none (with no weights, so that the next refresh counts again).
        score = None

    score_base = factory.LazyAttribute(lambda library: library.score)

    @factory.post_generation
    def basis(library, create, extracted, **kwargs):
        if create and library.score_base is not None:
            score_basis_ensure()


def score_basis_ensure() -> ScoreBasis:
    now = timezone.now()
    basis, _ = ScoreBasis.objects.get_or_create(
        defaults={
            "epoch": now,
            "as_of": now,
            "scale": 1.0,
            "half_life_days": 0.0,
            "weights": {},
            "recounted_at": now,
        }
    )
    return basis


class LibrarianFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Librarian

    library = factory.SubFactory(LibraryFactory)
    name = factory.Sequence(lambda n: f"Librarian {n}")
    email = factory.Sequence(lambda n: f"librarian{n}@library.example.org")
    role = "Librarian"
    language = "fr"


class MailingListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MailingList

    name = factory.Sequence(lambda n: f"Liste {n}")
    slug = factory.Sequence(lambda n: f"liste-{n}")
    posting_address = factory.Sequence(lambda n: f"liste{n}@lists.example.org")
    language = "fr"


class ActivitySignalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActivitySignal

    library = factory.SubFactory(LibraryFactory)
    kind = ActivitySignal.Kind.LIST_REPLY
    occurred_at = factory.LazyFunction(timezone.now)
    source = "test"


class MeetupSeriesFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MeetupSeries

    title = factory.Sequence(lambda n: f"Wikipermanence {n}")
    slug = factory.Sequence(lambda n: f"wikipermanence-{n}")
    host_library = factory.SubFactory(LibraryFactory)
    rrule = "FREQ=MONTHLY;BYDAY=+1TH"
    start_date = datetime.date(2026, 1, 1)
    start_time = datetime.time(12, 0)
    time_zone = "Europe/Zurich"


def drive_contribution(drive, *, tagged: bool = True, counted_in: bool = False, **fields):
    """An edit stored once and kept by ``drive`` (tagged with its hashtags, or kept apart),
    as a pull stores it: a Contribution and its DriveContribution. Returns the link."""
    from drives.models import Contribution, DriveContribution

    fields.setdefault("timestamp", timezone.now())
    contribution = Contribution.objects.create(**fields)
    return DriveContribution.objects.create(
        drive=drive, contribution=contribution, tagged=tagged, counted_in=counted_in
    )
