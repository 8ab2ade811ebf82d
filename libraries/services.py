"""Writes to the libraries domain.

A library enters the pipeline through ``library_create`` (which opens its status history)
and moves through it only by ``library_status_change``, so that every step says who or what
moved it and why. Observed facts are recorded with ``signal_record``, by the other apps as
they happen and by coordinators by hand; scores are made of them (``libraries.scoring``).

The shortlist page writes through ``shortlist_ranks_save`` (the hand ranks the campaign filter
"shortlisted librarians only" reads); its "campaign to the librarians shown" is a write of
campaigns (``campaigns.services.shortlist_campaign_create``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Case, Value, When
from django.utils import timezone

from core.text import unique_slug

from .models import ActivitySignal, Librarian, Library, LibraryStatusChange, normalize_languages


@transaction.atomic
def library_create(
    *,
    source: str = "manual",
    created_by: AbstractBaseUser | None = None,
    **fields: Any,
) -> Library:
    """Create a library with a unique slug and open its status history with its first status."""
    library = Library(**fields)
    if not library.slug:
        library.slug = unique_slug(Library, f"{library.name} {library.city}")
    library.languages = normalize_languages(library.languages)
    library.status_changed_at = timezone.now()
    library.full_clean()
    library.save()
    LibraryStatusChange.objects.create(
        library=library,
        from_status="",
        to_status=library.status,
        changed_at=library.status_changed_at,
        changed_by=created_by,
        source=source,
    )
    return library


@transaction.atomic
def library_status_change(
    *,
    library: Library,
    status: str,
    reason: str = "",
    changed_by: AbstractBaseUser | None = None,
    source: str = "manual",
) -> LibraryStatusChange | None:
    """Move ``library`` to ``status`` and record the step. Returns None if it was already there.

    The row is locked so that a coordinator's click and a worker recording an answer at the
    same moment leave a history that matches the final status.
    """
    locked = Library.objects.select_for_update().get(pk=library.pk)
    if locked.status == status:
        return None
    now = timezone.now()
    change = LibraryStatusChange.objects.create(
        library=locked,
        from_status=locked.status,
        to_status=status,
        changed_at=now,
        changed_by=changed_by,
        source=source,
        reason=reason,
    )
    locked.status, locked.status_changed_at = status, now
    locked.save(update_fields=["status", "status_changed_at", "updated_at"])
    library.status, library.status_changed_at = status, now
    return change


def signal_record(
    *,
    library: Library,
    kind: str,
    occurred_at: datetime | None = None,
    librarian: Librarian | None = None,
    source: str = "",
    note: str = "",
    recorded_by: AbstractBaseUser | None = None,
) -> ActivitySignal:
    """Record one observed fact about ``library`` (and optionally one of its librarians)."""
    if librarian is not None and librarian.library_id != library.pk:
        raise ValueError("The librarian does not work at this library.")
    return ActivitySignal.objects.create(
        library=library,
        librarian=librarian,
        kind=kind,
        occurred_at=occurred_at or timezone.now(),
        source=source,
        note=note,
        recorded_by=recorded_by,
    )


@transaction.atomic
def shortlist_ranks_save(*, librarians: list[Librarian], user=None) -> int:
    """Rank ``librarians`` 1, 2, … in the order given and take everyone else whom ``user``
    may see off the shortlist (an ambassador's ranks leave the other regions' alone).

    Two UPDATEs whatever the number of librarians. Returns how many are ranked.
    """
    ids = list(dict.fromkeys(librarian.pk for librarian in librarians))
    others = Librarian.objects.visible_to(user) if user is not None else Librarian.objects.all()
    others.filter(shortlist_rank__isnull=False).exclude(pk__in=ids).update(shortlist_rank=None)
    if ids:
        Librarian.objects.filter(pk__in=ids).update(
            shortlist_rank=Case(
                *(When(pk=pk, then=Value(rank)) for rank, pk in enumerate(ids, start=1))
            )
        )
    return len(ids)
