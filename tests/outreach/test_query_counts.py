"""Every coordinator page reads a fixed number of SQL queries, whatever the number of rows.

The sweep opens each page that answers GET, counts its queries, adds three more of
everything in the same region (libraries, librarians, lists, series and their meetings,
RSVPs, signals, campaigns and deliveries, drives and contributions), and as many rows hanging
from the very objects the page shows, and counts again:
a query per row (N+1) would show as a difference. It does so as a coordinator and as the
region's ambassador, whose pages add the lookup of their regions.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.outreach.sample import outreach_objects, outreach_objects_grow
from tests.outreach.test_permissions import COORDINATOR_PAGES

GET_PAGES = sorted(name for name, (_, status) in COORDINATOR_PAGES.items() if status == 200)


def _count(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        if response.streaming:
            b"".join(response)
    assert response.status_code == 200, url
    return len(queries)


@pytest.mark.parametrize("name", GET_PAGES)
@pytest.mark.parametrize("role", ["coordinator", "ambassador"])
def test_a_page_reads_the_same_number_of_queries_with_more_rows(
    client, coordinator, make_ambassador, role, name
):
    objects = outreach_objects()
    user = coordinator if role == "coordinator" else make_ambassador(objects["region"])
    client.force_login(user)
    build, _ = COORDINATOR_PAGES[name]
    url = reverse(name, kwargs=build(objects))
    client.get(url)  # the first request of a session may read more (caches, language)
    before = _count(client, url)
    for _ in range(3):
        outreach_objects_grow(objects)
    assert _count(client, url) == before, url
