"""Background work of campaigns: thin adapters around ``campaigns.sending`` and services.

A campaign is sent by chains of ``campaign_send_task``: each run sends batch after batch while
there is work at once, for about RUN_SECONDS, then enqueues the next run (right away, or when a
back-off or another worker's lease runs out). The database's state makes every run
idempotent, so a chain started twice, a task delivered twice (acks_late) or a worker killed
mid-batch costs nothing but a claim.
"""

import time
from datetime import timedelta

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.utils import timezone

from . import sending, services
from .models import Campaign

# The longest a chain sleeps before looking again (a back-off, a lease, a paused campaign).
LONGEST_WAIT = 300
# How long a run goes on claiming batches. What a run costs besides its batches (its trip
# through the broker; the database connection, which Celery closes after every task, and a new
# PostgreSQL session's cold caches) is then paid once for several batches (bench/mailing.py);
# each batch's claim still sees a pause or a cancel, and other campaigns get their turn.
RUN_SECONDS = 10


@shared_task(acks_late=True)
def campaign_dispatch_task(campaign_id: int) -> None:
    """Start the chains that send ``campaign_id`` (CAMPAIGNS_WORKER_CHAINS in parallel)."""
    for _ in range(settings.CAMPAIGNS_WORKER_CHAINS):
        campaign_send_task.delay(campaign_id)


@shared_task(acks_late=True)
def campaign_send_task(campaign_id: int) -> dict:
    """Send batches while there is work at once, then hand over to the next run of the chain.

    In-process (no broker), the run goes on until only waiting is left instead of recursing:
    the next tick (or launch) picks the campaign up again.
    """
    eager = campaign_send_task.app.conf.task_always_eager
    deadline = time.monotonic() + RUN_SECONDS
    done = {"sent": 0, "failed": 0, "retried": 0}
    while True:
        result = sending.batch_send(campaign_id=campaign_id)
        for outcome in done:
            done[outcome] += getattr(result, outcome)
        if result.next_at is None or result.next_at > timezone.now():
            break  # finished, or nothing to do before a back-off or a lease runs out
        if not eager and time.monotonic() >= deadline:
            break
    if not eager and result.next_at is not None:
        wait = (result.next_at - timezone.now()).total_seconds()
        campaign_send_task.apply_async((campaign_id,), countdown=min(max(wait, 0), LONGEST_WAIT))
    return done


@shared_task(acks_late=True)
def campaigns_tick_task() -> None:
    """Every minute: start the scheduled campaigns that are due, and pick up again campaigns
    whose chains stopped (a lost task, a worker that died with everything in its queue)."""
    services.campaigns_start_due()
    campaigns_resume_stalled(stalled_after=2 * settings.CAMPAIGNS_CLAIM_LEASE_SECONDS)


def campaigns_resume_stalled(*, stalled_after: float) -> list[int]:
    cutoff = timezone.now() - timedelta(seconds=stalled_after)
    stalled = list(
        Campaign.objects.filter(
            status=Campaign.Status.SENDING, heartbeat_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    for campaign_id in stalled:
        campaign_dispatch_task.delay(campaign_id)
    return stalled


@shared_task(acks_late=True)
def campaigns_resume_task() -> list[int]:
    """Restart the chains of every campaign being sent (a worker just started)."""
    return campaigns_resume_stalled(stalled_after=0)


@worker_ready.connect
def _resume_on_worker_start(sender=None, **kwargs) -> None:
    # A worker that starts after another was killed picks its campaigns up at once, without
    # waiting for the broker to redeliver the dead worker's unacknowledged tasks.
    campaigns_resume_task.delay()
