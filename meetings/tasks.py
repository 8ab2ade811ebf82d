"""Background work on meetups: thin adapters around meetings.services and meetings.mailing.

Every email is a row (meetings.mailing): a task sends one row, and when the server asked to
wait it hands over to a later run of itself; the periodic ``meeting_mails_task`` plans the
reminders, sweeps what a dead worker left and enqueues every pending row again, so running
late, twice or once not at all sends nothing twice and loses nothing.
"""

from celery import shared_task

from . import mailing, reminders
from .models import MeetupSeries, Reminder, RSVPMail
from .services import meetings_materialise


@shared_task(acks_late=True)
def meetings_materialise_task() -> int:
    """Materialise every active series; idempotent, so running late or twice is harmless."""
    return sum(
        meetings_materialise(series=series)
        for series in MeetupSeries.objects.filter(status=MeetupSeries.Status.ACTIVE)
    )


def _again_later(task, row_id: int, outcome: mailing.Outcome) -> bool:
    if outcome.retry_at is not None and not task.app.conf.task_always_eager:
        # In-process (no broker) the periodic task is the retry: nothing waits in a request.
        task.apply_async((row_id,), eta=outcome.retry_at)
    return outcome.sent


@shared_task(acks_late=True)
def rsvp_mail_send_task(mail_id: int) -> bool:
    """Send one sign-up email (confirmed, waiting list, seated) with its manage link."""
    return _again_later(rsvp_mail_send_task, mail_id, mailing.rsvp_mail_send(mail_id=mail_id))


@shared_task(acks_late=True)
def reminder_send_task(reminder_id: int) -> bool:
    return _again_later(
        reminder_send_task, reminder_id, mailing.reminder_send(reminder_id=reminder_id)
    )


@shared_task(acks_late=True)
def meeting_mails_task() -> int:
    """Plan due reminders, sweep stuck emails, and enqueue every pending one that is due."""
    reminders.reminders_plan()
    enqueued = 0
    for model, task in ((RSVPMail, rsvp_mail_send_task), (Reminder, reminder_send_task)):
        mailing.mails_sweep(model)
        for row_id in mailing.mails_due(model):
            task.delay(row_id)
            enqueued += 1
    return enqueued
