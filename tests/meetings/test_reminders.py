"""Reminders 7 days and 1 day before: each at most once per person and meeting."""

from datetime import UTC, datetime, timedelta
from smtplib import SMTPServerDisconnected

import pytest
from django.core import mail

from meetings.mailing import STUCK_SENDING, mails_sweep, reminder_send
from meetings.models import RSVP, Meeting, Reminder
from meetings.reminders import reminders_plan
from meetings.tasks import meeting_mails_task
from tests.factories import MeetupSeriesFactory

pytestmark = pytest.mark.django_db

START = datetime(2027, 3, 4, 11, 0, tzinfo=UTC)  # first Thursday, 12:00 in Zurich


@pytest.fixture
def meeting(db):
    series = MeetupSeriesFactory(title="Wikipermanence de Nyon", language="en")
    return Meeting.objects.create(
        series=series,
        host_library=series.host_library,
        original_start=START,
        start=START,
        end=START + timedelta(hours=2),
        time_zone="Europe/Zurich",
    )


def _rsvp(meeting, email, signed_up=START - timedelta(days=20), **fields):
    fields = {"answer": "yes", **fields}
    rsvp = RSVP.objects.create(meeting=meeting, name=email.split("@")[0], email=email, **fields)
    RSVP.objects.filter(pk=rsvp.pk).update(created_at=signed_up)
    return rsvp


def _run(now, monkeypatch):
    monkeypatch.setattr("meetings.reminders.timezone.now", lambda: now)
    monkeypatch.setattr("meetings.mailing.timezone.now", lambda: now)
    return meeting_mails_task.apply().get()


def test_attendees_and_helpers_get_a_reminder_a_week_before_and_the_day_before(
    meeting, monkeypatch
):
    _rsvp(meeting, "lea@example.org")
    _rsvp(meeting, "mentor@example.org", role="mentor")
    _rsvp(meeting, "waiting@example.org", waitlisted_at=START - timedelta(days=10))
    _rsvp(meeting, "no@example.org", answer="no")

    _run(START - timedelta(days=7) + timedelta(hours=1), monkeypatch)
    assert sorted(m.to[0] for m in mail.outbox) == ["lea@example.org", "mentor@example.org"]
    assert all("In 7 days" in m.subject and "12:00" in m.body for m in mail.outbox)
    mail.outbox.clear()
    _run(START - timedelta(hours=20), monkeypatch)
    assert sorted(m.to[0] for m in mail.outbox) == ["lea@example.org", "mentor@example.org"]
    assert all(m.subject.startswith("Tomorrow") for m in mail.outbox)


def test_running_the_task_twice_sends_each_reminder_once(meeting, monkeypatch):
    _rsvp(meeting, "lea@example.org")
    now = START - timedelta(hours=10)
    _run(now, monkeypatch)
    _run(now + timedelta(minutes=15), monkeypatch)
    _run(now + timedelta(minutes=30), monkeypatch)
    assert len(mail.outbox) == 1
    assert Reminder.objects.get().state == "sent"


def test_a_reminder_claimed_by_a_worker_that_died_is_never_sent_twice(meeting, monkeypatch):
    rsvp = _rsvp(meeting, "lea@example.org")
    now = START - timedelta(hours=10)
    # A worker claimed it (pending → sending was committed) and was killed mid-send.
    Reminder.objects.create(rsvp=rsvp, days_before=1, state="sending", state_changed_at=now)
    _run(now + timedelta(minutes=15), monkeypatch)
    assert mail.outbox == []
    assert mails_sweep(Reminder, now=now + STUCK_SENDING + timedelta(minutes=1)) == 1
    reminder = Reminder.objects.get()
    assert reminder.state == "failed" and "not sent again" in reminder.error
    _run(now + timedelta(hours=1), monkeypatch)
    assert mail.outbox == []


def test_an_smtp_failure_leaves_the_reminder_pending_for_a_retry(meeting, monkeypatch):
    rsvp = _rsvp(meeting, "lea@example.org")
    reminder = Reminder.objects.create(rsvp=rsvp, days_before=1)

    def refuse(**kwargs):
        raise SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr("meetings.mailing.mail_send", refuse)
    failed = reminder_send(reminder_id=reminder.pk)
    reminder.refresh_from_db()
    assert not failed.sent and failed.retry_at == reminder.next_attempt_at
    assert reminder.state == "pending" and "closed" in reminder.error
    assert reminder.next_attempt_at - reminder.state_changed_at == timedelta(minutes=1)
    monkeypatch.undo()
    assert reminder_send(reminder_id=reminder.pk).sent is True
    assert len(mail.outbox) == 1
    assert reminder_send(reminder_id=reminder.pk).sent is False
    reminder.refresh_from_db()
    assert (reminder.state, reminder.attempts) == ("sent", 2)
    assert reminder.message_id == mail.outbox[0].extra_headers["Message-ID"]


def test_someone_who_signs_up_late_gets_only_the_reminders_still_ahead(meeting, monkeypatch):
    _rsvp(meeting, "late@example.org", signed_up=START - timedelta(days=3))
    _run(START - timedelta(days=7) + timedelta(hours=1), monkeypatch)
    _run(START - timedelta(days=3) + timedelta(hours=1), monkeypatch)
    assert mail.outbox == []
    _run(START - timedelta(hours=5), monkeypatch)
    assert [m.subject.split(":")[0] for m in mail.outbox] == ["Tomorrow"]


def test_a_cancelled_meeting_sends_no_reminder(meeting, monkeypatch):
    _rsvp(meeting, "lea@example.org")
    Meeting.objects.filter(pk=meeting.pk).update(cancelled_at=START - timedelta(days=9))
    _run(START - timedelta(hours=5), monkeypatch)
    assert mail.outbox == []
    assert reminders_plan(now=START - timedelta(hours=5)) == 0


def test_the_reminder_is_written_in_the_language_of_the_meetup(meeting, monkeypatch):
    meeting.series.language = "fr"
    meeting.series.save()
    _rsvp(meeting, "lea@example.org")
    _run(START - timedelta(hours=5), monkeypatch)
    (message,) = mail.outbox
    assert message.subject.replace("\u00a0", " ") == "Demain : Wikipermanence de Nyon"
    assert "jeudi 4 mars 2027, 12:00" in message.body
