"""The coordinator dashboard: the pipeline, coming meetings, new answers, campaigns, the top of
the shortlist and the #1lib1ref activity — scoped to the user's regions, in constant queries."""

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Delivery
from drives.models import Drive
from drives.services import contribution_tallies_refresh
from libraries.models import Library, LibraryStatusChange
from meetings.models import RSVP, Meeting
from outreach.models import DashboardVisit
from outreach.selectors import ACTIVITY_WEEKS, dashboard_build
from tests.factories import LibrarianFactory, LibraryFactory, RegionFactory, drive_contribution

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("dashboard")


def _meeting(library, *, title="Wikipermanence", days=7, capacity=None, **fields):
    start = timezone.now() + timedelta(days=days)
    return Meeting.objects.create(
        host_library=library,
        title=title,
        start=start,
        end=start + timedelta(hours=2),
        capacity=capacity,
        **fields,
    )


def _rsvp(meeting, name, *, answer="yes", role="attendee", guests=0, **fields):
    email = f"{name.lower().replace(' ', '.')}@example.org"
    return RSVP.objects.create(
        meeting=meeting, name=name, email=email, answer=answer, role=role, guests=guests, **fields
    )


def _campaign(title, *, region, status=Campaign.Status.SENDING, **fields):
    campaign = Campaign.objects.create(title=title, status=status, **fields)
    campaign.regions.add(region)
    return campaign


def _drive(title, *, region):
    drive = Drive.objects.create(title=title, hashtags="#1lib1ref", wikis="frwiki")
    drive.regions.add(region)
    return drive


def _delivery(campaign, librarian, *, state="sent", answer="", answered_at=None):
    return Delivery.objects.create(
        campaign=campaign,
        email=librarian.email,
        language="fr",
        librarian=librarian,
        library=librarian.library,
        state=state,
        answer=answer,
        answered_at=answered_at,
    )


def _contribution(drive, librarian, *, revid, when, references=1, tagged=True, **fields):
    return drive_contribution(
        drive,
        tagged=tagged,
        librarian=librarian,
        library=librarian.library,
        wiki="frwiki",
        revid=revid,
        page=f"Page {revid}",
        username=librarian.name,
        timestamp=when,
        references_added=references,
        **fields,
    )


def _json_script(response, element_id):
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert match, element_id
    return json.loads(match.group(1))


# Pipeline -------------------------------------------------------------------------------------


def test_the_funnel_counts_libraries_per_status_and_links_to_the_filtered_list(
    coordinator_client, vaud
):
    for status, count in [("prospect", 3), ("contacted", 2), ("partner", 1)]:
        LibraryFactory.create_batch(count, region=vaud, status=status)

    response = coordinator_client.get(DASHBOARD)

    assert response.status_code == 200
    assert response.templates[0].name == "outreach/dashboard.html"
    pipeline = response.context["dashboard"].pipeline
    assert [(s.value, s.libraries) for s in pipeline.statuses] == [
        ("prospect", 3),
        ("contacted", 2),
        ("interested", 0),
        ("partner", 1),
        ("dormant", 0),
    ]
    assert pipeline.total == 6
    page = response.content.decode()
    assert f'href="{reverse("libraries:library-list")}?status=contacted"' in page


def test_the_region_table_and_chart_count_libraries_per_region_and_status(
    coordinator_client, vaud, geneve
):
    RegionFactory(name="Jura", slug="jura")  # no library yet: still a row of zeros
    LibraryFactory.create_batch(2, region=vaud, status="prospect")
    LibraryFactory(region=vaud, status="partner")
    LibraryFactory(region=geneve, status="interested")

    response = coordinator_client.get(DASHBOARD)

    rows = {row.region.name: row.counts for row in response.context["dashboard"].pipeline.regions}
    assert rows == {
        "Genève": [0, 0, 1, 0, 0],
        "Jura": [0, 0, 0, 0, 0],
        "Vaud": [2, 0, 0, 1, 0],
    }
    chart = _json_script(response, "dashboard-regions-data")
    assert chart["labels"] == ["Genève", "Jura", "Vaud"]
    assert {d["status"]: d["data"] for d in chart["datasets"]}["prospect"] == [0, 0, 2]
    # The same numbers as a table, for screen readers, and as a CSV file.
    table = response.content.decode().split('id="dashboard-regions-table"')[1].split("</table>")[0]
    assert "<caption>" in table and 'scope="row"' in table
    assert re.search(r"Vaud</th>\s*<td[^>]*>2</td>", table)
    assert 'role="img"' in response.content.decode()
    export = coordinator_client.get(reverse("dashboard-export", args=["regions"]))
    assert export["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert lines[0] == [
        "Region",
        "Prospect",
        "Contacted",
        "Interested",
        "Partner",
        "Dormant",
        "Total",
    ]
    assert ["Vaud", "2", "0", "0", "1", "0", "3"] in lines


def test_moves_this_month_count_libraries_per_status_reached_not_creations(coordinator, vaud):
    now = timezone.now()
    month_start = timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    moved, other = LibraryFactory.create_batch(2, region=vaud)
    for library, from_status, to_status, when in [
        (moved, "", "prospect", now),  # created this month: added, not moved
        (moved, "prospect", "contacted", now),
        (moved, "contacted", "interested", now),
        (other, "prospect", "contacted", now),
        (other, "contacted", "interested", month_start - timedelta(days=2)),  # last month
    ]:
        LibraryStatusChange.objects.create(
            library=library, from_status=from_status, to_status=to_status, changed_at=when
        )

    pipeline = dashboard_build(user=coordinator, now=now).pipeline

    assert {s.value: s.moved_in for s in pipeline.statuses} == {
        "prospect": 0,
        "contacted": 2,
        "interested": 1,
        "partner": 0,
        "dormant": 0,
    }
    assert pipeline.moves_this_month == 3
    assert pipeline.added_this_month == 1
    # The latest moves leave creations out, newest first.
    assert [(c.library, c.to_status) for c in pipeline.latest_changes] == [
        (other, "contacted"),
        (moved, "interested"),
        (moved, "contacted"),
        (other, "interested"),
    ]


def test_the_latest_moves_are_listed_with_their_library(coordinator_client, vaud):
    library = LibraryFactory(region=vaud, name="Bibliothèque de Morges")
    LibraryStatusChange.objects.create(
        library=library,
        from_status="contacted",
        to_status="partner",
        changed_at=timezone.now(),
        reason="Convention signée",
    )

    page = coordinator_client.get(DASHBOARD).content.decode()

    moves = page.split('id="changes-heading"')[1]
    assert "Bibliothèque de Morges" in moves and "Convention signée" in moves


# Meetings -------------------------------------------------------------------------------------


def test_coming_meetings_show_seats_against_capacity_and_the_helpers(coordinator_client, vaud):
    library = LibraryFactory(region=vaud)
    meeting = _meeting(library, title="Wikipermanence de Morges", capacity=10)
    _rsvp(meeting, "Anne", guests=2)  # three seats
    _rsvp(meeting, "Bruno")
    _rsvp(meeting, "Chloé", answer="maybe")
    _rsvp(meeting, "Denis", answer="no")
    _rsvp(meeting, "Emma", waitlisted_at=timezone.now())
    _rsvp(meeting, "Félix", role="host")
    _rsvp(meeting, "Gaëlle", role="mentor")
    _rsvp(meeting, "Hugo", role="greeter", answer="maybe")  # not signed up yet
    _meeting(library, title="Cancelled one", cancelled_at=timezone.now())
    _meeting(library, title="Past one", days=-7)
    _meeting(library, title="Nobody helps", days=14)

    response = coordinator_client.get(DASHBOARD)

    rows = response.context["dashboard"].meetings
    assert [row.meeting.title for row in rows] == ["Wikipermanence de Morges", "Nobody helps"]
    first = rows[0]
    assert (first.seats, first.capacity, first.waitlisted) == (4, 10, 1)
    assert first.seats == meeting.rsvps.seats()  # the sign-up's own count
    assert (first.hosts, first.mentors, first.greeters, first.helpers) == (1, 1, 0, 2)
    assert first.fill_step == 8  # 40 %
    page = response.content.decode()
    assert "4 of 10" in page
    assert "1 on the waiting list" in page
    assert "no helper yet" in page  # the second meeting
    assert reverse("meetings:meeting-attendance", args=[meeting.pk]) in page


def test_only_the_next_eight_meetings_are_shown(coordinator_client, vaud):
    library = LibraryFactory(region=vaud)
    for day in range(1, 12):
        _meeting(library, title=f"Meeting {day:02d}", days=day)

    rows = coordinator_client.get(DASHBOARD).context["dashboard"].meetings

    assert [row.meeting.title for row in rows] == [f"Meeting {day:02d}" for day in range(1, 9)]


# Answers since the last visit -----------------------------------------------------------------


@pytest.fixture
def answers(vaud):
    librarian = LibrarianFactory(library__region=vaud, name="Ana Chappuis")
    campaign = _campaign("Wikipermanences vaudoises", region=vaud)
    now = timezone.now()
    _delivery(campaign, librarian, answer="yes", answered_at=now - timedelta(hours=1))
    old = LibrarianFactory(library__region=vaud, name="Old Answer")
    _delivery(campaign, old, answer="no", answered_at=now - timedelta(days=8))
    meeting = _meeting(librarian.library, title="Wikipermanence de Morges")
    rsvp = _rsvp(meeting, "Camille Rey", role="mentor")
    RSVP.objects.filter(pk=rsvp.pk).update(created_at=now - timedelta(hours=1))
    return {"campaign": campaign, "meeting": meeting}


def _shift_last_visit(user, delta):
    """As if the last visit had happened ``delta`` earlier."""
    visit = DashboardVisit.objects.get(user=user)
    DashboardVisit.objects.filter(user=user).update(seen_at=visit.seen_at - delta)


def test_the_first_visit_shows_the_answers_of_the_last_week(coordinator_client, answers):
    response = coordinator_client.get(DASHBOARD)

    new = response.context["dashboard"].answers
    assert [d.librarian.name for d in new.invitations] == ["Ana Chappuis"]
    assert new.invitation_counts == {"total": 1, "yes": 1, "maybe": 0, "no": 0}
    assert [r.name for r in new.rsvps] == ["Camille Rey"]
    assert new.rsvp_counts["yes"] == 1
    page = response.content.decode()
    assert "Ana Chappuis" in page and "Camille Rey" in page
    assert "Old Answer" not in page


def test_answers_seen_on_a_visit_are_not_new_on_the_next_one(
    coordinator, coordinator_client, answers
):
    coordinator_client.get(DASHBOARD)
    # A reload in the same sitting still lists them.
    assert coordinator_client.get(DASHBOARD).context["dashboard"].answers.total == 2
    # Forty minutes later (a new visit), only what arrived since the last look is new.
    _shift_last_visit(coordinator, timedelta(minutes=40))
    librarian = LibrarianFactory(library__region=answers["campaign"].regions.get())
    _delivery(
        answers["campaign"],
        librarian,
        answer="maybe",
        answered_at=timezone.now() - timedelta(minutes=10),
    )

    response = coordinator_client.get(DASHBOARD)

    new = response.context["dashboard"].answers
    assert [d.librarian for d in new.invitations] == [librarian]
    assert new.rsvps == []
    page = response.content.decode()
    assert "Ana Chappuis" not in page and "Camille Rey" not in page.split("answers-heading")[1]


def test_the_last_visit_is_kept_per_user_across_sessions(coordinator, client, answers):
    client.force_login(coordinator)
    client.get(DASHBOARD)
    client.logout()
    _shift_last_visit(coordinator, timedelta(minutes=40))
    client.force_login(coordinator)

    assert client.get(DASHBOARD).context["dashboard"].answers.total == 0
    assert DashboardVisit.objects.filter(user=coordinator).count() == 1


# Campaigns -------------------------------------------------------------------------------------


def test_campaigns_in_progress_show_their_progress_and_answer_rate(coordinator_client, vaud):
    librarians = LibrarianFactory.create_batch(4, library__region=vaud)
    sending = _campaign("Invitation vaudoise", region=vaud)
    now = timezone.now()
    _delivery(sending, librarians[0], answer="yes", answered_at=now)
    _delivery(sending, librarians[1], answer="no", answered_at=now)
    _delivery(sending, librarians[2])
    _delivery(sending, librarians[3], state="queued")
    _campaign("Sent last week", region=vaud, status="sent", finished_at=now - timedelta(days=7))
    _campaign("Sent long ago", region=vaud, status="sent", finished_at=now - timedelta(days=40))
    _campaign("Still a draft", region=vaud, status="draft")
    _campaign("Scheduled", region=vaud, status="scheduled", scheduled_at=now + timedelta(days=1))

    response = coordinator_client.get(DASHBOARD)

    rows = response.context["dashboard"].campaigns
    assert [row.campaign.title for row in rows] == [
        "Invitation vaudoise",
        "Scheduled",
        "Sent last week",
    ]
    first = rows[0]
    assert (first.sent, first.total, first.answered) == (3, 4, 2)
    assert first.progress_step == 15  # 75 %
    assert round(first.answer_rate_percent) == 67
    page = response.content.decode()
    assert "3 of 4" in page and "67%" in page
    assert "Sent long ago" not in page and "Still a draft" not in page


# Shortlist -------------------------------------------------------------------------------------


def test_the_top_of_the_shortlist_is_the_five_best_scores(coordinator_client, vaud):
    for name, score in [("A", 5.0), ("B", 50.0), ("C", 12.5), ("D", 0.0), ("E", None)]:
        LibraryFactory(region=vaud, name=f"Bibliothèque {name}", score=score)
    for n in range(4):
        LibraryFactory(region=vaud, name=f"Médiathèque {n}", score=1.0 + n)

    response = coordinator_client.get(DASHBOARD)

    top = response.context["dashboard"].shortlist
    assert [library.name for library in top] == [
        "Bibliothèque B",
        "Bibliothèque C",
        "Bibliothèque A",
        "Médiathèque 3",
        "Médiathèque 2",
    ]
    page = response.content.decode()
    assert reverse("libraries:shortlist") in page
    assert "50.0" in page


# #1lib1ref activity ----------------------------------------------------------------------------


def test_the_activity_chart_counts_the_edits_that_count_per_week(coordinator_client, vaud):
    librarian = LibrarianFactory(library__region=vaud)
    drive = _drive("#1lib1ref 2026", region=vaud)
    now = timezone.now()
    _contribution(drive, librarian, revid=1, when=now, references=3)
    _contribution(drive, librarian, revid=2, when=now, references=2, tagged=False)  # apart
    _contribution(drive, librarian, revid=3, when=now, references=1, tagged=False, counted_in=True)
    _contribution(drive, librarian, revid=4, when=now - timedelta(weeks=3), references=4)
    _contribution(drive, librarian, revid=5, when=now - timedelta(weeks=ACTIVITY_WEEKS + 2))
    contribution_tallies_refresh()

    response = coordinator_client.get(DASHBOARD)

    chart = _json_script(response, "dashboard-activity-data")
    assert len(chart["labels"]) == len(chart["edits"]) == ACTIVITY_WEEKS
    assert chart["edits"][-1] == 2 and chart["references"][-1] == 4
    assert chart["edits"][-4] == 1 and chart["references"][-4] == 4
    assert sum(chart["edits"]) == 3
    activity = response.context["dashboard"].activity
    assert (activity.edits, activity.references, activity.librarians) == (3, 8, 1)
    assert activity.latest_drive == drive
    page = response.content.decode()
    assert 'id="dashboard-activity-chart"' in page and 'role="img"' in page
    table = page.split('id="dashboard-activity-table"')[1].split("</table>")[0]
    assert len(re.findall(r"<tr><th scope=\"row\"", table)) == 2  # the two active weeks
    assert reverse("drives:drive-detail", args=[drive.pk]) in page
    export = coordinator_client.get(reverse("dashboard-export", args=["contributions"]))
    lines = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert len(lines) == ACTIVITY_WEEKS + 1 and lines[-1][1:] == ["2", "4"]


def test_the_activity_waits_for_the_tallies_and_a_count_in_updates_them(coordinator_client, vaud):
    librarian = LibrarianFactory(library__region=vaud)
    drive = _drive("#1lib1ref 2026", region=vaud)
    untagged = _contribution(drive, librarian, revid=1, when=timezone.now(), tagged=False)
    page = coordinator_client.get(DASHBOARD).content.decode()
    assert "No edit counted yet" in page
    contribution_tallies_refresh()
    assert coordinator_client.get(DASHBOARD).context["dashboard"].activity.edits == 0

    # A coordinator counts the untagged edit in, from the drive's page.
    coordinator_client.post(
        reverse("drives:contribution-count-in", args=[untagged.pk]), {"counted": "1"}
    )

    activity = coordinator_client.get(DASHBOARD).context["dashboard"].activity
    assert (activity.edits, activity.librarians, activity.libraries) == (1, 1, 1)


def test_the_chart_script_is_deferred_and_the_page_has_no_inline_script(coordinator_client):
    page = coordinator_client.get(DASHBOARD).content.decode()

    assert re.search(r'<script src="[^"]*js/dashboard-charts\.js" defer>', page)
    assert re.search(r'<script src="[^"]*chart\.umd\.min\.js" defer>', page)
    inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", page)
    assert inline == []


def test_an_unknown_export_is_not_found(coordinator_client):
    response = coordinator_client.get(reverse("dashboard-export", args=["librarians"]))
    assert response.status_code == 404


# Region scoping --------------------------------------------------------------------------------


def test_an_ambassador_sees_nothing_of_another_region(client, make_ambassador, vaud, geneve):
    now = timezone.now()
    for revid, (region, name) in enumerate([(vaud, "Vaudoise"), (geneve, "Genevoise")], 1):
        librarian = LibrarianFactory(
            library__region=region,
            library__name=f"Bibliothèque {name}",
            library__score=10.0,
            name=f"Librarian {name}",
        )
        library = librarian.library
        LibraryStatusChange.objects.create(
            library=library, from_status="prospect", to_status="contacted", changed_at=now
        )
        meeting = _meeting(library, title=f"Meetup {name}")
        _rsvp(meeting, f"Visitor {name}")
        campaign = _campaign(f"Campaign {name}", region=region)
        _delivery(campaign, librarian, answer="yes", answered_at=now)
        drive = _drive(f"Drive {name}", region=region)
        _contribution(drive, librarian, revid=revid, when=now)
    contribution_tallies_refresh()
    client.force_login(make_ambassador(vaud))

    response = client.get(DASHBOARD)

    page = response.content.decode()
    for text in ["Vaudoise", "Meetup Vaudoise", "Visitor Vaudoise", "Campaign Vaudoise"]:
        assert text in page
    assert "Genevoise" not in page and "Genève" not in page
    dashboard = response.context["dashboard"]
    assert [row.region for row in dashboard.pipeline.regions] == [vaud]
    assert dashboard.pipeline.total == 1
    assert dashboard.answers.total == 2
    assert dashboard.activity.edits == 1
    assert not dashboard.sees_every_region
    export = client.get(reverse("dashboard-export", args=["regions"])).content.decode("utf-8-sig")
    assert "Vaud" in export and "Genève" not in export


def test_a_user_without_any_region_sees_an_empty_dashboard(client, make_ambassador, vaud):
    LibraryFactory(region=vaud, name="Bibliothèque de Morges", score=3.0)
    client.force_login(make_ambassador())

    response = client.get(DASHBOARD)

    assert response.status_code == 200
    assert "Bibliothèque de Morges" not in response.content.decode()
    assert response.context["dashboard"].pipeline.total == 0


# Queries ---------------------------------------------------------------------------------------


def _populate(region, n, *, offset=0):
    """n of everything the dashboard shows, in ``region``."""
    now = timezone.now()
    drive = _drive(f"Drive {offset}", region=region)
    campaign = _campaign(f"Campaign {offset}", region=region)
    for i in range(offset, offset + n):
        librarian = LibrarianFactory(library__region=region, library__score=float(i + 1))
        library = librarian.library
        LibraryStatusChange.objects.create(
            library=library, from_status="prospect", to_status="contacted", changed_at=now
        )
        meeting = _meeting(library, title=f"Meetup {i}", days=i + 1, capacity=10)
        _rsvp(meeting, f"Visitor {i}", guests=1)
        _rsvp(meeting, f"Helper {i}", role="host")
        _delivery(campaign, librarian, answer="yes", answered_at=now)
        _contribution(drive, librarian, revid=i + 1, when=now - timedelta(weeks=i))
    contribution_tallies_refresh()


def _dashboard_queries(client):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(DASHBOARD).status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["coordinator", "ambassador"])
def test_the_dashboard_costs_the_same_queries_for_three_times_the_rows(
    client, coordinator, make_ambassador, vaud, who
):
    user = coordinator if who == "coordinator" else make_ambassador(vaud)
    client.force_login(user)
    _populate(vaud, 3)
    client.get(DASHBOARD)  # the first visit inserts its row; the next ones update it
    small = _dashboard_queries(client)

    _populate(vaud, 6, offset=3)
    large = _dashboard_queries(client)

    assert large == small
    assert len(client.get(DASHBOARD).context["dashboard"].meetings) == 8


def test_building_the_dashboard_takes_the_queries_its_docstring_gives(
    coordinator, vaud, django_assert_num_queries
):
    _populate(vaud, 2)
    dashboard_build(user=coordinator)
    coordinator.has_perm("libraries.view_library")  # loaded by the view's permission check

    with django_assert_num_queries(16):
        dashboard_build(user=coordinator)


def test_libraries_of_every_status_appear_in_the_funnel(coordinator_client, vaud):
    for status in Library.Status.values:
        LibraryFactory(region=vaud, status=status)

    statuses = coordinator_client.get(DASHBOARD).context["dashboard"].pipeline.statuses

    assert [s.libraries for s in statuses] == [1] * len(Library.Status.values)
