"""Every URL of the project is classified here, so that a new view cannot ship unprotected.

The sweep walks the URL resolver: a named pattern missing from COORDINATOR_PAGES and
PUBLIC_PAGES fails the test until someone decides who may see it.
"""

from collections import defaultdict

import pytest
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.factories import (
    RegionFactory,
    UserFactory,
    score_basis_ensure,
)
from tests.outreach.sample import outreach_objects

# url name -> (kwargs builder, status a coordinator gets on GET)
COORDINATOR_PAGES = {
    "dashboard": (lambda o: {}, 200),
    "dashboard-export": (lambda o: {"table": "regions"}, 200),
    "search": (lambda o: {}, 200),
    "libraries:library-list": (lambda o: {}, 200),
    "libraries:library-create": (lambda o: {}, 200),
    "libraries:library-export": (lambda o: {}, 200),
    "libraries:library-import": (lambda o: {}, 200),
    "libraries:library-import-confirm": (lambda o: {}, 405),
    "libraries:library-import-example": (lambda o: {}, 200),
    "libraries:library-detail": (lambda o: {"slug": o["library"].slug}, 200),
    "libraries:library-update": (lambda o: {"slug": o["library"].slug}, 200),
    "libraries:library-status": (lambda o: {"slug": o["library"].slug}, 405),
    "libraries:signal-create": (lambda o: {"slug": o["library"].slug}, 405),
    "libraries:librarian-list": (lambda o: {}, 200),
    "libraries:librarian-create": (lambda o: {}, 200),
    "libraries:librarian-update": (lambda o: {"pk": o["librarian"].pk}, 200),
    "libraries:mailinglist-list": (lambda o: {}, 200),
    "libraries:mailinglist-create": (lambda o: {}, 200),
    "libraries:mailinglist-detail": (lambda o: {"slug": o["mailing_list"].slug}, 200),
    "libraries:mailinglist-update": (lambda o: {"slug": o["mailing_list"].slug}, 200),
    "libraries:shortlist": (lambda o: {}, 200),
    "libraries:shortlist-export": (lambda o: {}, 200),
    "libraries:shortlist-ranks": (lambda o: {}, 405),
    "campaigns:shortlist-campaign": (lambda o: {}, 405),
    "libraries:scores-refresh": (lambda o: {}, 405),
    "meetings:series-list": (lambda o: {}, 200),
    "meetings:series-create": (lambda o: {}, 200),
    "meetings:series-detail": (lambda o: {"slug": o["series"].slug}, 200),
    "meetings:series-update": (lambda o: {"slug": o["series"].slug}, 200),
    "meetings:meeting-create": (lambda o: {}, 200),
    "kit:series-kit": (lambda o: {"slug": o["series"].slug}, 200),
    "kit:series-poster": (lambda o: {"slug": o["series"].slug}, 200),
    "meetings:meeting-cancel": (lambda o: {"pk": o["meeting"].pk}, 405),
    "meetings:meeting-move": (lambda o: {"pk": o["meeting"].pk}, 200),
    "meetings:meeting-attendance": (lambda o: {"pk": o["meeting"].pk}, 200),
    "campaigns:campaign-list": (lambda o: {}, 200),
    "campaigns:campaign-create": (lambda o: {}, 200),
    "campaigns:campaign-detail": (lambda o: {"pk": o["campaign"].pk}, 200),
    "campaigns:campaign-update": (lambda o: {"pk": o["campaign"].pk}, 200),
    "campaigns:campaign-stats": (lambda o: {"pk": o["campaign"].pk}, 200),
    "campaigns:campaign-audience": (lambda o: {"pk": o["campaign"].pk}, 200),
    "campaigns:campaign-preview": (lambda o: {"pk": o["campaign"].pk}, 200),
    "campaigns:campaign-test-send": (lambda o: {"pk": o["campaign"].pk}, 405),
    "campaigns:message-create": (lambda o: {"pk": o["campaign"].pk}, 200),
    "campaigns:message-update": (lambda o: {"pk": o["campaign"].pk, "language": "fr"}, 200),
    "campaigns:campaign-launch": (lambda o: {"pk": o["campaign"].pk}, 405),
    "campaigns:campaign-pause": (lambda o: {"pk": o["campaign"].pk}, 405),
    "campaigns:campaign-resume": (lambda o: {"pk": o["campaign"].pk}, 405),
    "campaigns:campaign-cancel": (lambda o: {"pk": o["campaign"].pk}, 200),
    "campaigns:campaign-follow-up": (lambda o: {"pk": o["campaign"].pk}, 405),
    "campaigns:delivery-list": (lambda o: {"pk": o["campaign"].pk}, 200),
    "campaigns:delivery-moderation": (lambda o: {"pk": o["delivery"].pk}, 405),
    "drives:drive-list": (lambda o: {}, 200),
    "drives:drive-create": (lambda o: {}, 200),
    "drives:drive-detail": (lambda o: {"pk": o["drive"].pk}, 200),
    "drives:drive-update": (lambda o: {"pk": o["drive"].pk}, 200),
    "drives:drive-runs": (lambda o: {"pk": o["drive"].pk}, 200),
    "drives:drive-pull": (lambda o: {"pk": o["drive"].pk}, 405),
    "drives:contribution-count-in": (lambda o: {"pk": o["contribution"].pk}, 405),
    "drives:lead-list": (lambda o: {}, 200),
    "drives:lead-detail": (lambda o: {"pk": o["lead"].pk}, 200),
    "drives:lead-link": (lambda o: {"pk": o["lead"].pk}, 405),
    "drives:lead-librarian-create": (lambda o: {"pk": o["lead"].pk}, 405),
    "drives:lead-dismiss": (lambda o: {"pk": o["lead"].pk}, 405),
}
PUBLIC_PAGES = {
    "healthz",
    "login",
    "logout",
    "set_language",
    "meetings:public-list",
    "meetings:series-public",
    "meetings:meeting-public",
    "meetings:rsvp-manage",
    "meetings:librarian-answer",
    "calendar:all",
    "calendar:series",
    "calendar:library",
    "calendar:region",
    "calendar:meeting",
    # Signed links in campaign emails (campaigns.public_views).
    "campaigns:answer",
    "campaigns:unsubscribe",
    "campaigns:preferences",
    # A drive's leaderboard, library names only, when the drive opted in.
    "drives:drive-leaderboard-public",
}
# The admin has its own login and staff check; it is not swept here.
SKIPPED_NAMESPACES = {"admin"}


def _named_patterns(patterns=None, namespace=""):
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            if entry.namespace in SKIPPED_NAMESPACES:
                continue
            yield from _named_patterns(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}"


@pytest.fixture
def objects(db):
    return outreach_objects()


def test_every_url_is_classified_as_coordinator_or_public():
    unclassified = set(_named_patterns()) - set(COORDINATOR_PAGES) - PUBLIC_PAGES
    assert not unclassified, f"Decide who may see these URLs: {sorted(unclassified)}"


@pytest.mark.parametrize("name", sorted(COORDINATOR_PAGES))
def test_anonymous_visitors_are_sent_to_the_login_page(client, objects, name):
    build, _ = COORDINATOR_PAGES[name]
    url = reverse(name, kwargs=build(objects))
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code == 302, (method, url)
        assert response["Location"].startswith(reverse("login")), url


@pytest.mark.parametrize("name", sorted(COORDINATOR_PAGES))
def test_logged_in_users_without_the_coordinator_role_are_refused(client, objects, name):
    client.force_login(UserFactory(username="someone"))
    build, _ = COORDINATOR_PAGES[name]
    url = reverse(name, kwargs=build(objects))
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403


@pytest.mark.parametrize("name", sorted(COORDINATOR_PAGES))
def test_coordinators_reach_every_coordinator_page(coordinator_client, objects, name):
    build, expected = COORDINATOR_PAGES[name]
    response = coordinator_client.get(reverse(name, kwargs=build(objects)))
    assert response.status_code == expected


# Ambassadors ---------------------------------------------------------------------------------
# The objects above are all in one region. Its ambassador works on them as a coordinator does;
# the ambassador of another region meets a 404 on every page of one of them, as if it did not
# exist, and finds none of them on the pages that list or count.


class _AnyObject:
    pk, slug = 1, "any"


# The pages of one object: their URL names a primary key or a slug.
OBJECT_PAGES = sorted(
    name
    for name, (build, _) in COORDINATOR_PAGES.items()
    if {"pk", "slug"} & set(build(defaultdict(_AnyObject)))
)


@pytest.mark.parametrize("name", sorted(COORDINATOR_PAGES))
def test_ambassadors_reach_every_coordinator_page_in_their_region(
    client, objects, make_ambassador, name
):
    client.force_login(make_ambassador(objects["region"]))
    build, expected = COORDINATOR_PAGES[name]
    assert client.get(reverse(name, kwargs=build(objects))).status_code == expected


@pytest.mark.parametrize("name", OBJECT_PAGES)
def test_ambassadors_of_another_region_cannot_reach_its_objects(
    client, objects, make_ambassador, name
):
    client.force_login(make_ambassador(RegionFactory(name="Elsewhere")))
    build, expected = COORDINATOR_PAGES[name]
    url = reverse(name, kwargs=build(objects))
    # The method the page answers meets a 404; the other one is not allowed anyway.
    get, post = client.get(url).status_code, client.post(url).status_code
    assert (get, post) in ((404, 404), (405, 404), (404, 405)), url
    assert (post if expected == 405 else get) == 404, url


LISTING_PAGES = [
    "dashboard",
    "search",
    "libraries:library-list",
    "libraries:library-export",
    "libraries:librarian-list",
    "libraries:mailinglist-list",
    "libraries:shortlist",
    "libraries:shortlist-export",
    "meetings:series-list",
    "meetings:meeting-create",
    "meetings:series-create",
    "libraries:librarian-create",
    "campaigns:campaign-list",
    "campaigns:campaign-create",
    "drives:drive-list",
    "drives:drive-create",
]


@pytest.mark.parametrize("name", LISTING_PAGES)
def test_pages_that_list_show_an_ambassador_nothing_of_another_region(
    client, objects, make_ambassador, name
):
    library = objects["library"]
    library.score_base = 5.0  # on the shortlist and the dashboard's top
    library.save(update_fields=["score_base"])
    score_basis_ensure()
    query = {"q": library.name[:6]} if name == "search" else {}
    client.force_login(make_ambassador(objects["region"], username="here"))
    here = client.get(reverse(name), query)
    assert here.status_code == 200
    client.force_login(make_ambassador(RegionFactory(name="Elsewhere"), username="there"))
    there = client.get(reverse(name), query)
    assert there.status_code == 200
    content = b"".join(there) if there.streaming else there.content
    for text in (
        library.name,
        objects["librarian"].email,
        objects["mailing_list"].name,
        objects["series"].title,
        objects["campaign"].title,
        objects["drive"].title,
    ):
        assert text.encode() not in content, (name, text)
    own = b"".join(here) if here.streaming else here.content
    assert library.name.encode() in own or name in {
        "meetings:series-list",
        "campaigns:campaign-list",
        "libraries:mailinglist-list",
        "campaigns:campaign-create",
        "drives:drive-list",
        "drives:drive-create",
    }, name


def test_an_ambassador_picks_only_their_regions_in_forms(client, objects, make_ambassador):
    elsewhere = RegionFactory(name="Elsewhere")
    client.force_login(make_ambassador(elsewhere))
    response = client.post(
        reverse("libraries:librarian-create"),
        {"library": objects["library"].pk, "name": "Intruder", "email": "intruder@example.org"},
    )
    assert response.status_code == 200
    assert "library" in response.context["form"].errors
    response = client.post(
        reverse("libraries:library-create"),
        {"name": "Bibliothèque", "city": "Ailleurs", "region": objects["region"].pk},
    )
    assert "region" in response.context["form"].errors


def test_a_user_with_only_the_view_permission_cannot_change_a_library(client, objects):
    user = UserFactory(username="reader")
    user.user_permissions.add(Permission.objects.get(codename="view_library"))
    client.force_login(user)
    library = objects["library"]
    # Without the permission to see every region, a user sees the regions they are an
    # ambassador of; none would be a 404.
    assert client.get(reverse("libraries:library-detail", args=[library.slug])).status_code == 404
    library.region.ambassadors.add(user)
    assert client.get(reverse("libraries:library-detail", args=[library.slug])).status_code == 200
    response = client.post(
        reverse("libraries:library-status", args=[library.slug]),
        {"status": "partner", "reason": "Signed"},
    )
    assert response.status_code == 403
    library.refresh_from_db()
    assert library.status == "prospect"


def test_public_meetup_pages_open_without_a_login(client, objects):
    series, meeting = objects["series"], objects["meeting"]
    for url in (
        reverse("meetings:public-list"),
        reverse("meetings:series-public", args=[series.slug]),
        reverse("meetings:meeting-public", args=[meeting.pk]),
    ):
        assert client.get(url).status_code == 200, url


def test_the_health_check_answers_without_a_login_or_the_database(client):
    response = client.get(reverse("healthz"))
    assert (response.status_code, response.content) == (200, b"ok")


def test_the_login_page_is_public(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert 'name="password"' in response.content.decode()


def test_logging_out_needs_a_post(coordinator_client):
    assert coordinator_client.get(reverse("logout")).status_code == 405
    response = coordinator_client.post(reverse("logout"))
    assert response.status_code == 302
    assert coordinator_client.get(reverse("dashboard")).status_code == 302
