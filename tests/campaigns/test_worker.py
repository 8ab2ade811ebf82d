"""A real Celery worker process against Redis and PostgreSQL, killed with SIGKILL mid-campaign.

The campaign must still be finished by the next worker: nobody lost, and at most the messages
in flight at the moment of the kill (one per worker process) sent twice.
"""

import signal
import uuid

import pytest
from django.conf import settings
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Delivery, Message
from tests.factories import LibrarianFactory, LibraryFactory, RegionFactory
from tests.worker import start_worker, stop_worker, wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.broker,
    pytest.mark.django_db(transaction=True),
]

RECIPIENTS = 60
CONCURRENCY = 2
# 20 messages a second in batches of 5: about three seconds for the campaign.
PACE = {
    "CAMPAIGNS_RATE_PER_SECOND": "20",
    "CAMPAIGNS_BATCH_SIZE": "5",
    "CAMPAIGNS_WORKER_CHAINS": str(CONCURRENCY),
    "CAMPAIGNS_CLAIM_LEASE_SECONDS": "4",
}


def test_a_worker_killed_mid_campaign_leaves_nobody_out(smtp, monkeypatch):
    region = RegionFactory(name="Vaud", slug="vaud")
    libraries = [LibraryFactory(region=region) for _ in range(10)]
    addresses = [f"librarian{n}@bibliotheque.example.org" for n in range(RECIPIENTS)]
    for n, address in enumerate(addresses):
        LibrarianFactory(email=address, library=libraries[n % 10])
    campaign = Campaign.objects.create(title="Invitation", filter_librarians=True)
    Message.objects.create(
        campaign=campaign, language="fr", subject="Wikipédia", body="Bonjour {{ recipient }}"
    )
    # Launch without enqueuing anything from here: the worker picks up the campaign being
    # sent as it starts, as it would after a crash.
    monkeypatch.setattr(services, "_dispatch_after_commit", lambda campaign: None)
    services.campaign_launch(campaign=campaign)
    assert Delivery.objects.filter(state="queued").count() == RECIPIENTS

    queue = f"test-kill-{uuid.uuid4().hex[:8]}"
    first = start_worker(queue, smtp.port, concurrency=CONCURRENCY, **PACE)
    try:
        wait_for(
            lambda: sum(smtp.recorder.count_by_address().values()) >= RECIPIENTS // 4,
            timeout=60,
            what="the first worker to send a quarter of the campaign",
        )
        stop_worker(first, signal.SIGKILL)
        received_at_kill = sum(smtp.recorder.count_by_address().values())
        assert received_at_kill < RECIPIENTS, "the worker finished before it could be killed"
        assert Delivery.objects.filter(state="sending").exists()  # it died holding claims

        second = start_worker(queue, smtp.port, concurrency=CONCURRENCY, **PACE)
        try:
            wait_for(
                lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT,
                timeout=90,
                what="the second worker to finish the campaign",
            )
        finally:
            stop_worker(second)
    finally:
        stop_worker(first, signal.SIGKILL)
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)

    counts = smtp.recorder.count_by_address()
    lost = [address for address in addresses if counts[address] == 0]
    twice = {address: n for address, n in counts.items() if n > 1}
    assert lost == []
    assert sum(n - 1 for n in twice.values()) <= CONCURRENCY, twice
    assert set(Delivery.objects.values_list("state", flat=True)) == {"sent"}
    assert Campaign.objects.get(pk=campaign.pk).finished_at <= timezone.now()
