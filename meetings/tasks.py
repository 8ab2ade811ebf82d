"""Background work on meetups: keeping series materialised, and the emails of sign-ups."""

from smtplib import SMTPException

from celery import shared_task
from django.urls import reverse

from core.mail import mail_send, site_url

from . import reminders
from .links import rsvp_link_token
from .models import RSVP, MeetupSeries
from .services import meetings_materialise


@shared_task(acks_late=True)
def meetings_materialise_task() -> int:
    """Materialise every active series; idempotent, so running late or twice is harmless."""
    return sum(
        meetings_materialise(series=series)
        for series in MeetupSeries.objects.filter(status=MeetupSeries.Status.ACTIVE)
    )


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def rsvp_mail_task(rsvp_id: int, kind: str, language: str) -> None:
    """Email a sign-up's outcome (confirmed, waiting list, promoted) with its manage link."""
    rsvp = RSVP.objects.select_related("meeting", "meeting__series", "meeting__host_library").get(
        pk=rsvp_id
    )
    meeting = rsvp.meeting
    mail_send(
        to=rsvp.email,
        name=f"meetings/{kind}",
        context={
            "rsvp": rsvp,
            "meeting": meeting,
            "manage_url": site_url(reverse("meetings:rsvp-manage", args=[rsvp_link_token(rsvp)])),
            "meeting_url": site_url(reverse("meetings:meeting-public", args=[meeting.pk])),
        },
        language=language,
    )


@shared_task(acks_late=True)
def reminders_task() -> int:
    """Plan due reminders, sweep stuck ones, and enqueue every pending one."""
    reminders.reminders_plan()
    reminders.reminders_sweep()
    pending = reminders.reminders_pending()
    for reminder_id in pending:
        reminder_send_task.delay(reminder_id)
    return len(pending)


@shared_task(
    acks_late=True,
    autoretry_for=(OSError, SMTPException),
    retry_backoff=60,
    retry_backoff_max=3600,
    max_retries=8,
)
def reminder_send_task(reminder_id: int) -> bool:
    return reminders.reminder_send(reminder_id=reminder_id)
