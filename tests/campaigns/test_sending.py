"""Sending over a real SMTP server on loopback: structure, exactly once, failures."""

import pytest

from campaigns import services
from campaigns.models import Campaign, Delivery
from campaigns.tasks import campaign_send_task

pytestmark = pytest.mark.django_db(transaction=True)


def test_smoke(invitation, smtp):
    services.campaign_launch(campaign=invitation)
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.SENT
    counts = smtp.recorder.count_by_address()
    assert counts == {
        "anne@bibliotheque-morges.ch": 1,
        "luc@bibliotheque-nyon.ch": 1,
        "jonas@bibliothek-avenches.ch": 1,
    }
    message = smtp.recorder.to("jonas@bibliothek-avenches.ch")[0]
    print(message.as_string())
    assert set(Delivery.objects.values_list("state", flat=True)) == {"sent"}
    campaign_send_task.delay(invitation.pk)
    assert sum(smtp.recorder.count_by_address().values()) == 3
