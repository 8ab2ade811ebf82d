"""The host library's kit: a poster and texts in the series' language, with the next dates."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape
from pypdf import PdfReader
from qrcode.constants import ERROR_CORRECT_M

from meetings.kit import SOCIAL_LIMIT, announcement_texts, poster_pdf, poster_qr, public_url
from meetings.services import meeting_cancel, meetings_materialise
from tests.factories import LibraryFactory, MeetupSeriesFactory, UserFactory

pytestmark = pytest.mark.django_db

# Every first Thursday at noon, seen from 10 February 2027: 4 March, 1 April, 6 May…
NOW = datetime(2027, 2, 10, 9, 0, tzinfo=UTC)


def _series(**fields):
    library_fields = {
        key.removeprefix("library_"): fields.pop(key)
        for key in list(fields)
        if key.startswith("library_")
    }
    library = LibraryFactory(
        **{
            "name": "Bibliothèque de la Cité",
            "city": "Genève",
            "address": "Place des Trois-Perdrix 5, 1204 Genève",
            **library_fields,
        }
    )
    series = MeetupSeriesFactory(
        **{
            "title": "Wikipermanence de la Cité",
            "slug": "wikipermanence-de-la-cite",
            "host_library": library,
            "language": "fr",
            "venue": "Salle de conférence, 2e étage",
            **fields,
        }
    )
    meetings_materialise(series=series, now=NOW, horizon=timedelta(days=300))
    return series


def _pdf_text(pdf: bytes) -> str:
    """The words of the PDF as pypdf reads them, one space between words (lines wrap)."""
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def test_the_poster_is_one_a4_page_with_the_series_in_french():
    series = _series(audience="Tout le monde, débutants bienvenus", what_to_bring="Un portable")
    pdf = poster_pdf(series, now=NOW)
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points
    fonts = reader.pages[0]["/Resources"]["/Font"].values()
    # Only the fonts the application ships, embedded: a print shop needs nothing else.
    assert {font.get_object()["/BaseFont"].split("+")[-1] for font in fonts} == {
        "DejaVuSans",
        "DejaVuSans-Bold",
    }
    text = _pdf_text(pdf)
    assert "Wikipermanence de la Cité" in text
    assert "Chaque premier jeudi du mois à 12:00" in text
    assert "Bibliothèque de la Cité" in text
    assert "Place des Trois-Perdrix 5 1204 Genève" in text  # one line each on the poster
    assert "Salle de conférence, 2e étage" in text
    assert "jeudi 4 mars 2027" in text
    assert "jeudi 1er avril 2027" in text  # French writes the first of the month "1er"
    assert "12:00–14:00" in text
    assert "Tout le monde, débutants bienvenus" in text
    assert "Un portable" in text
    assert "sans inscription" in text
    assert public_url(series) in text
    assert public_url(series) == "http://127.0.0.1:8000/meetups/wikipermanence-de-la-cite/"


def test_the_poster_lists_six_dates_at_most_and_no_cancelled_one():
    series = _series()
    march = series.meetings.order_by("start").first()
    meeting_cancel(meeting=march, reason="Bibliothèque fermée")
    text = _pdf_text(poster_pdf(series, now=NOW))
    assert "4 mars 2027" not in text
    dates = ["1er avril", "6 mai", "3 juin", "1er juillet", "5 août", "2 septembre"]
    assert all(f"jeudi {date} 2027" in text for date in dates)
    assert series.meetings.filter(start__gt=NOW).count() > 7
    assert "7 octobre 2027" not in text  # the seventh


def test_a_german_series_has_a_german_poster():
    series = _series(
        language="de",
        title="Wikipermanence Höngg",
        library_name="Quartierbibliothek Höngg",
        library_city="Zürich",
        library_address="Ackersteinstrasse 190, 8049 Zürich",
        venue="Raum „Über“, 1. Stock",
    )
    text = _pdf_text(poster_pdf(series, now=NOW))
    assert "Donnerstag, 4. März 2027" in text  # Django names German dates
    # The sentences are German once the interface speaks it; until then, English ones
    # rather than a mix of both.
    assert "Donnerstag of the month" not in text
    assert "Donnerstag of the month" not in announcement_texts(series, now=NOW)["newsletter"]
    assert "Quartierbibliothek Höngg" in text
    assert "8049 Zürich" in text
    assert "Raum „Über“, 1. Stock" in text


def test_the_poster_carries_the_qr_code_of_the_public_page():
    series = _series()
    page = PdfReader(io.BytesIO(poster_pdf(series, now=NOW))).pages[0]
    xobjects = page["/Resources"]["/XObject"]
    images = [xobjects[name] for name in xobjects if xobjects[name]["/Subtype"] == "/Image"]
    assert len(images) == 1
    code = poster_qr(public_url(series))
    assert b"".join(segment.data for segment in code.data_list) == public_url(series).encode()
    assert code.error_correction == ERROR_CORRECT_M  # survives a fold or a scratch


def test_the_texts_are_in_the_series_language_with_the_link_and_the_dates():
    series = _series()
    with translation.override("en"):  # the coordinator reads English; the library, French
        texts = announcement_texts(series, now=NOW)
    url = public_url(series)
    assert set(texts) == {"newsletter", "website", "social"}
    newsletter = texts["newsletter"]
    assert newsletter.startswith("Wikipermanence de la Cité\n\n")
    assert "Bibliothèque de la Cité accueille une Wikipermanence" in newsletter
    assert "chaque premier jeudi du mois à 12:00" in newsletter
    assert "Place des Trois-Perdrix 5, 1204 Genève" in newsletter
    assert "– jeudi 4 mars 2027, 12:00–14:00" in newsletter
    assert url in newsletter
    assert "<" not in newsletter  # plain text, ready to paste anywhere
    assert "jeudi 4 mars 2027" in texts["website"]
    assert url in texts["website"]
    assert "\n" not in texts["website"]
    social = texts["social"]
    assert url in social and "#Wikipedia" in social
    assert "jeudi 4 mars 2027" in social
    assert len(social) <= SOCIAL_LIMIT


def test_the_social_text_stays_within_280_characters_with_long_names():
    series = _series(
        title="Wikipermanence " + "très longue " * 15, library_name="Bibliothèque " * 15
    )
    social = announcement_texts(series, now=NOW)["social"]
    assert len(social) <= SOCIAL_LIMIT
    assert social.startswith("Wikipermanence très longue")
    assert "…" in social
    assert public_url(series) in social
    assert social.endswith("#Wikipedia #Wikipermanence")


def test_a_series_with_seats_to_book_asks_to_sign_up():
    series = _series(capacity=12)
    texts = announcement_texts(series, now=NOW)
    assert "Places limitées\u00a0: inscrivez-vous en ligne." in texts["newsletter"]
    assert "inscrivez-vous en ligne" in _pdf_text(poster_pdf(series, now=NOW))


def test_a_series_without_dates_still_makes_a_poster():
    series = _series(status="draft")  # a draft is not materialised
    text = _pdf_text(poster_pdf(series, now=NOW))
    assert "Aucune date prévue pour l’instant." in text


# Pages --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["kit:series-kit", "kit:series-poster"])
def test_the_kit_needs_a_login(client, name):
    series = _series()
    url = reverse(name, args=[series.slug])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("name", ["kit:series-kit", "kit:series-poster"])
def test_the_kit_needs_the_permission_to_see_series(client, name):
    series = _series()
    client.force_login(UserFactory())
    assert client.get(reverse(name, args=[series.slug])).status_code == 403


@pytest.mark.parametrize("name", ["kit:series-kit", "kit:series-poster"])
def test_an_unknown_series_has_no_kit(coordinator_client, name):
    assert coordinator_client.get(reverse(name, args=["no-such-series"])).status_code == 404


def test_a_coordinator_sees_the_three_texts_and_the_poster_link(coordinator_client):
    series = _series()
    meetings_materialise(series=series)  # dates from today's point of view
    response = coordinator_client.get(reverse("kit:series-kit", args=[series.slug]))
    assert response.status_code == 200
    assert "meetings/series_kit.html" in [t.name for t in response.templates]
    page = response.content.decode()
    texts = announcement_texts(series)
    assert "jeudi" in texts["website"]  # dates from today's point of view, in French
    for key in ("newsletter", "website", "social"):
        assert f'id="kit-{key}"' in page
        assert f'data-copy="kit-{key}"' in page
    for text in texts.values():
        assert escape(text) in page
    assert 'lang="fr"' in page and "readonly" in page
    assert reverse("kit:series-poster", args=[series.slug]) in page
    assert public_url(series) in page


def test_the_poster_downloads_as_a_pdf_named_after_the_series(coordinator_client):
    series = _series()
    response = coordinator_client.get(reverse("kit:series-poster", args=[series.slug]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert (
        response["Content-Disposition"]
        == 'attachment; filename="wikipermanence-de-la-cite-poster.pdf"'
    )
    assert response.content.startswith(b"%PDF")
    assert "Wikipermanence de la Cité" in _pdf_text(response.content)


def test_the_kit_page_says_when_the_sentences_cannot_be_in_the_series_language(
    coordinator_client,
):
    series = _series(language="it")
    page = coordinator_client.get(reverse("kit:series-kit", args=[series.slug])).content.decode()
    assert "is not translated into the language of the series yet (Italian)" in page
    assert 'lang="en"' in page.split("<main", 1)[1]  # the textareas say what they hold
