"""Public pages and feeds are cached, and the cache never leaks one visitor's page to another."""

import gzip

import pytest
from django.urls import reverse
from django.utils import timezone

from meetings.services import meetings_materialise
from tests.factories import MeetupSeriesFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def real_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "caching-tests",
        }
    }
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def series(db):
    series = MeetupSeriesFactory(title="Wikipermanence de Morges", start_date=timezone.localdate())
    meetings_materialise(series=series)
    return series


def _csrf(page: str) -> str:
    return page.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]


def test_an_anonymous_page_is_served_from_the_cache_with_each_visitors_own_token(
    client, series, django_assert_num_queries
):
    url = reverse("meetings:series-public", args=[series.slug])
    first = client.get(url).content.decode()
    series.title = "Renamed"
    series.save()
    from django.test import Client

    with django_assert_num_queries(0):
        second = Client().get(url).content.decode()
    assert "Wikipermanence de Morges" in second  # cached for a minute
    assert "placeholder" not in second
    assert _csrf(first) != _csrf(second)


def test_a_coordinator_with_a_session_never_gets_a_cached_page(coordinator_client, client, series):
    url = reverse("meetings:series-public", args=[series.slug])
    client.get(url)
    series.title = "Renamed"
    series.save()
    assert "Renamed" in coordinator_client.get(url).content.decode()


def test_anonymous_visitors_can_switch_the_language_of_public_pages(client, series):
    response = client.post(
        reverse("set_language"),
        {"language": "fr", "next": reverse("meetings:public-list")},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("meetings:public-list")
    assert "Prochaines rencontres Wikipédia" in response.content.decode()


def test_the_feed_is_built_once_per_version_and_sent_gzipped_when_asked(client, series):
    url = reverse("calendar:all")
    plain = client.get(url)
    zipped = client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert zipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == plain.content
    assert zipped["ETag"] == f"W/{plain['ETag']}"
    assert "Accept-Encoding" in zipped["Vary"]
    again = client.get(url, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=zipped["ETag"])
    assert again.status_code == 304


def test_a_feed_is_built_once_per_version_and_rebuilt_when_a_series_changes(
    client, series, django_assert_num_queries
):
    url = reverse("calendar:series", args=[series.slug])
    first = client.get(url)
    with django_assert_num_queries(1):  # the series; its validators and file from the cache
        again = client.get(url)
    assert again.content == first.content
    series.title = "Wikipermanence renamed"
    series.save()
    from django.core.cache import cache

    cache.clear()  # the validators are kept a minute; the file itself follows the ETag
    changed = client.get(url)
    assert changed["ETag"] != first["ETag"]
    assert b"Wikipermanence renamed" in changed.content
