"""What the score refresh must count again when a signal changes (libraries.scoring).

The nightly refresh adds the signals that arrived since the last one; a signal edited or
deleted afterwards would be counted as it was. So editing or deleting one marks its library
and librarian, before and after the change, for a recount from all their signals
(``ScoreRecount``), in the same transaction as the change. ``QuerySet.delete()`` sends
``post_delete`` for every row (Django fetches them when a receiver listens); a bulk
``QuerySet.update()`` of signals sends nothing and must call ``signals_recount`` itself.
"""

from django.db.models.signals import post_delete, pre_save
from django.dispatch import receiver

from .models import ActivitySignal, ScoreRecount

SCORED_FIELDS = ("library_id", "librarian_id", "kind", "occurred_at")


def signals_recount(pairs) -> None:
    """Mark each (library_id, librarian_id) of ``pairs`` for a recount at the next refresh."""
    ScoreRecount.objects.bulk_create(
        ScoreRecount(library_id=library_id, librarian_id=librarian_id)
        for library_id, librarian_id in set(pairs)
    )


@receiver(pre_save, sender=ActivitySignal, dispatch_uid="libraries.signal_edited")
def signal_edited(sender, instance: ActivitySignal, raw: bool = False, **kwargs) -> None:
    if raw or instance._state.adding or instance.pk is None:
        return
    before = ActivitySignal.objects.filter(pk=instance.pk).values_list(*SCORED_FIELDS).first()
    after = tuple(getattr(instance, field) for field in SCORED_FIELDS)
    if before is None or before == after:
        return
    signals_recount([before[:2], after[:2]])


@receiver(post_delete, sender=ActivitySignal, dispatch_uid="libraries.signal_deleted")
def signal_deleted(sender, instance: ActivitySignal, **kwargs) -> None:
    signals_recount([(instance.library_id, instance.librarian_id)])
