import pytest

from campaigns.models import Campaign, Message
from tests.factories import LibrarianFactory, LibraryFactory, UserFactory

BODY = (
    "Hello {{ recipient }},\n\n"
    "Would {{ library }} welcome a free Wikipedia introduction? See https://example.org/offer\n\n"
    "{{ answer_links }}\n"
)


@pytest.fixture(autouse=True)
def fast_sending(settings):
    settings.CAMPAIGNS_RATE_PER_SECOND = 0
    settings.CAMPAIGNS_RETRY_BASE_SECONDS = 60
    settings.SITE_URL = "https://outreach.example.org"
    settings.DEFAULT_FROM_EMAIL = "Wikimedia CH <outreach@example.org>"


@pytest.fixture
def librarians(vaud):
    """Three librarians at three libraries of Vaud, one German-speaking."""
    return [
        LibrarianFactory(
            name="Anne Dubois",
            email="anne@bibliotheque-morges.ch",
            library=LibraryFactory(name="Bibliothèque de Morges", region=vaud),
        ),
        LibrarianFactory(
            name="Luc Martin",
            email="luc@bibliotheque-nyon.ch",
            library=LibraryFactory(name="Bibliothèque de Nyon", region=vaud),
        ),
        LibrarianFactory(
            name="Jonas Meier",
            email="jonas@bibliothek-avenches.ch",
            language="de",
            library=LibraryFactory(name="Bibliothek Avenches", region=vaud),
        ),
    ]


@pytest.fixture
def invitation(db, vaud, librarians):
    campaign = Campaign.objects.create(
        title="Wikipermanences in Vaud",
        kind=Campaign.Kind.INVITATION,
        default_language="fr",
        filter_librarians=True,
        created_by=UserFactory(),
    )
    campaign.regions.add(vaud)
    Message.objects.create(
        campaign=campaign, language="fr", subject="Wikipédia à {{ library }}", body=BODY
    )
    Message.objects.create(
        campaign=campaign, language="de", subject="Wikipedia in {{ library }}", body=BODY
    )
    return campaign
