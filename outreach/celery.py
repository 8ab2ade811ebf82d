"""The Celery application, and every periodic schedule in one place.

Each schedule entry says when it runs and why. Periodic jobs tolerate running late, twice,
or once not at all: the rows they work on carry their own state.
"""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings")

app = Celery("outreach")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Every night: create the meetings of each active series for the coming months
    # (MEETUPS_HORIZON_DAYS). Idempotent; a missed night is made up by the next one.
    "meetings-materialise": {
        "task": "meetings.tasks.meetings_materialise_task",
        "schedule": crontab(hour=3, minute=15),
    },
    # Every 15 minutes: reminders 7 days and 1 day before each meeting (MEETUPS_REMINDER_DAYS),
    # and any meetup email a lost task, a broker that was down or an SMTP failure left
    # pending. Each email is a row claimed before sending: overlapping runs send nothing twice.
    "meetings-mails": {
        "task": "meetings.tasks.meeting_mails_task",
        "schedule": crontab(minute="*/15"),
    },
    # Every minute: start scheduled campaigns that are due, and pick up again a campaign
    # whose workers stopped without finishing it. Sending itself is driven by the campaign's
    # own task chains; this is the safety net.
    "campaigns-tick": {
        "task": "campaigns.tasks.campaigns_tick_task",
        "schedule": crontab(minute="*"),
    },
    # Every hour at :30: pull the edits of #1lib1ref drives whose window is open; at
    # 02:30 also those that ended in the last week. Each pull resumes where the last stopped.
    "drives-contributions-pull": {
        "task": "drives.tasks.contributions_pull_due_task",
        "schedule": crontab(minute=30),
    },
    # Every night at 04:30, after the night's pull of contributions (02:30) has recorded its
    # signals: carry every library's activity score forward with the day's signals (scores
    # decay with age, so they move even without new ones), write the day's snapshots for the
    # trend, and once a week check the scores against a full count. Idempotent: a second run
    # the same day adds nothing twice; a missed night is made up by the next.
    "libraries-scores-refresh": {
        "task": "libraries.tasks.scores_refresh_task",
        "schedule": crontab(hour=4, minute=30),
    },
    # Every night at 04:45: rebuild the dashboard's tallies of #1lib1ref edits per region and
    # week, so that the year they cover moves on with the calendar (pulls and count-ins
    # rebuild them as well). Idempotent; a missed night leaves the year a day behind.
    "drives-contribution-tallies": {
        "task": "drives.tasks.contribution_tallies_refresh_task",
        "schedule": crontab(hour=4, minute=45),
    },
}
