"""The Celery application, and every periodic schedule in one place.

Each schedule entry says when it runs and why. Periodic jobs tolerate running late, twice,
or once not at all: the rows they work on carry their own state.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings")

app = Celery("outreach")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Entries are added by the capabilities that need them (reminders, materialising meetup
    # occurrences, the nightly contributions pull, score refresh).
}
