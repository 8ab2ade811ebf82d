"""Meetup emails are rows with a state, sent over a real SMTP server on loopback: exactly once
per sign-up outcome, never twice for a task run twice or a worker that died, and never lost
to a server that was down."""

import signal
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from meetings import mailing
from meetings.models import RSVP, RSVPMail
from meetings.services import meetings_materialise, rsvp_cancel, rsvp_signup
from meetings.tasks import meeting_mails_task, rsvp_mail_send_task
from tests.factories import LibraryFactory, MeetupSeriesFactory
from tests.worker import start_worker, stop_worker, wait_for

pytestmark = pytest.mark.django_db

LEA, PAUL = "lea@example.org", "paul@example.org"


@pytest.fixture
def meeting(db):
    series = MeetupSeriesFactory(
        title="Wikipermanence de Morges",
        start_date=timezone.localdate(),
        capacity=1,
        host_library=LibraryFactory(name="Bibliothèque de Morges", city="Morges"),
    )
    meetings_materialise(series=series)
    return series.meetings.order_by("start").first()


@pytest.fixture
def sign_up(meeting, django_capture_on_commit_callbacks):
    """sign_up(name, email, …): a sign-up as the public page makes it, its emails sent after
    the commit (in-process, as `make run` does)."""

    def sign(name, email, **fields):
        with django_capture_on_commit_callbacks(execute=True):
            return rsvp_signup(
                meeting=meeting, name=name, email=email, **{"language": "en", **fields}
            )

    return sign


def _subjects(smtp, address):
    return [message["Subject"] for message in smtp.recorder.to(address)]


def test_a_sign_up_is_told_once_and_its_row_says_so(smtp, sign_up):
    rsvp = sign_up("Léa Martin", LEA, language="fr")
    [mail] = RSVPMail.objects.all()
    assert (mail.rsvp, mail.kind, mail.language, mail.state) == (
        rsvp,
        "rsvp_confirmed",
        "fr",
        "sent",
    )
    [message] = smtp.recorder.to(LEA)
    assert "Wikipermanence de Morges" in message["Subject"]
    assert message["Message-ID"] == mail.message_id
    # The task delivered again (acks_late after a lost acknowledgement): nothing more.
    assert rsvp_mail_send_task.delay(mail.pk).get() is False
    assert len(smtp.recorder.to(LEA)) == 1


def test_the_waiting_list_and_the_seat_are_each_told_once(smtp, sign_up, meeting):
    sign_up("Léa", LEA)
    paul = sign_up("Paul", PAUL)
    assert paul.waitlisted_at is not None
    assert "waiting list" in _subjects(smtp, PAUL)[0].lower()
    rsvp_cancel(rsvp=RSVP.objects.get(email=LEA), language="en")
    meeting_mails_task.apply()  # the on-commit task and the periodic one: still once
    [waitlisted, promoted] = _subjects(smtp, PAUL)
    assert "seat" in promoted.lower()
    kinds = list(RSVPMail.objects.filter(rsvp=paul).values_list("kind", "state"))
    assert kinds == [("rsvp_waitlisted", "sent"), ("rsvp_promoted", "sent")]


def test_an_email_claimed_by_a_worker_that_died_is_never_sent_twice(smtp, meeting):
    rsvp = RSVP.objects.create(meeting=meeting, name="Léa", email=LEA, answer="yes")
    now = timezone.now()
    # A worker claimed it (pending → sending was committed) and was killed mid-send: the
    # server may well have accepted the message already.
    mail = RSVPMail.objects.create(
        rsvp=rsvp, kind="rsvp_confirmed", language="en", state="sending", state_changed_at=now
    )
    assert rsvp_mail_send_task.delay(mail.pk).get() is False
    meeting_mails_task.apply()
    assert smtp.recorder.to(LEA) == []
    assert mailing.mails_sweep(RSVPMail, now=now + mailing.STUCK_SENDING + timedelta(seconds=1))
    mail.refresh_from_db()
    assert mail.state == "failed" and "not sent again" in mail.error
    meeting_mails_task.apply()
    assert smtp.recorder.to(LEA) == []


def test_a_server_that_is_down_delays_the_email_and_loses_nothing(smtp, sign_up, monkeypatch):
    smtp.stop()
    rsvp = sign_up("Léa", LEA)
    # The sign-up is kept; its email waits for its next attempt.
    [mail] = RSVPMail.objects.all()
    assert (mail.state, mail.attempts) == ("pending", 1) and mail.error
    assert mail.next_attempt_at - mail.state_changed_at == timedelta(minutes=1)
    assert RSVP.objects.get() == rsvp
    smtp.start()
    meeting_mails_task.apply()  # not due yet
    assert smtp.recorder.to(LEA) == []
    later = mail.next_attempt_at + timedelta(seconds=1)
    monkeypatch.setattr("meetings.mailing.timezone.now", lambda: later)
    meeting_mails_task.apply()
    assert len(smtp.recorder.to(LEA)) == 1
    mail.refresh_from_db()
    assert (mail.state, mail.attempts, mail.error) == ("sent", 2, "")


def test_a_permanent_refusal_fails_the_email_at_once(smtp, sign_up):
    smtp.recorder.refuse[LEA] = "550 5.1.1 No such user"
    sign_up("Léa", LEA)
    mail = RSVPMail.objects.get()
    assert mail.state == "failed" and mail.error.startswith("{'lea@example.org': (550")
    assert mailing.mails_due(RSVPMail) == []


def test_a_change_before_the_email_left_is_told_by_that_one_email(smtp, meeting):
    smtp.stop()  # nothing leaves yet
    rsvp_signup(meeting=meeting, name="Léa", email=LEA, guests=0, language="en")
    rsvp_signup(meeting=meeting, name="Léa M.", email=LEA, role="mentor", language="fr")
    [mail] = RSVPMail.objects.filter(state="pending")
    assert (mail.kind, mail.language) == ("rsvp_confirmed", "fr")
    smtp.start()
    meeting_mails_task.apply()
    [message] = smtp.recorder.to(LEA)
    assert "Léa M." in message.get_body(("plain",)).get_content()


def test_an_email_the_sign_up_no_longer_means_is_not_sent(smtp, meeting):
    smtp.stop()
    rsvp_signup(meeting=meeting, name="Léa", email=LEA, language="en")
    rsvp_signup(meeting=meeting, name="Paul", email=PAUL, language="en")  # waiting list
    rsvp_cancel(rsvp=RSVP.objects.get(email=LEA), language="en")  # seated before being told
    states = dict(RSVPMail.objects.filter(rsvp__email=PAUL).values_list("kind", "state"))
    assert states == {"rsvp_waitlisted": "failed", "rsvp_promoted": "pending"}
    smtp.start()
    meeting_mails_task.apply()
    [message] = smtp.recorder.to(PAUL)
    assert "seat" in message["Subject"].lower()


def test_a_sign_up_cancelled_before_its_confirmation_left_is_not_confirmed(smtp, meeting):
    smtp.stop()
    rsvp = rsvp_signup(meeting=meeting, name="Léa", email=LEA, language="en")
    rsvp_cancel(rsvp=rsvp, language="en")
    smtp.start()
    meeting_mails_task.apply()
    assert smtp.recorder.to(LEA) == []
    mail = RSVPMail.objects.get()
    assert mail.state == "failed" and "cancelled" in mail.error


@pytest.mark.postgres
@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_a_sign_up_once_though_its_task_comes_twice(smtp, meeting, monkeypatch):
    from outreach.celery import app

    app.conf.task_always_eager = False  # through the broker (celery_tasks_in_process restores it)
    queue = f"test-rsvp-{uuid.uuid4().hex[:8]}"
    # The sign-up's own task goes to this test's queue, like the one delivered a second time.
    monkeypatch.setattr(
        rsvp_mail_send_task,
        "delay",
        lambda *args: rsvp_mail_send_task.apply_async(args, queue=queue),
    )
    rsvp = rsvp_signup(meeting=meeting, name="Léa", email=LEA)  # committed: enqueued once
    mail = RSVPMail.objects.get(rsvp=rsvp)
    rsvp_mail_send_task.apply_async((mail.pk,), queue=queue)  # and delivered a second time
    worker = start_worker(queue, smtp.port, concurrency=2)
    try:
        wait_for(
            lambda: RSVPMail.objects.get(pk=mail.pk).state == "sent",
            timeout=60,
            what="the worker to send the confirmation",
        )
        meeting_mails_task.apply()
    finally:
        stop_worker(worker, signal.SIGTERM)
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)
    assert len(smtp.recorder.to(LEA)) == 1
