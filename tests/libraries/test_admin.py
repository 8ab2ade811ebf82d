import pytest
from django.contrib import admin
from django.urls import reverse

from libraries.models import ActivitySignal, Librarian, Library, LibraryStatusChange, MailingList
from libraries.services import library_status_change
from tests.factories import ActivitySignalFactory, LibrarianFactory, MailingListFactory

pytestmark = pytest.mark.django_db

DOMAIN = [Library, LibraryStatusChange, MailingList, Librarian, ActivitySignal]


def test_every_model_of_the_domain_is_in_the_admin():
    assert all(admin.site.is_registered(model) for model in DOMAIN)


@pytest.mark.parametrize("model", DOMAIN, ids=lambda m: m.__name__)
def test_the_admin_lists_and_opens_every_model(admin_client, model):
    librarian = LibrarianFactory()
    MailingListFactory().members.add(librarian.library)
    ActivitySignalFactory(library=librarian.library, librarian=librarian)
    library_status_change(library=librarian.library, status="contacted", reason="test")
    opts = model._meta
    changelist = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == 200
    obj = model.objects.first()
    change = admin_client.get(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    )
    assert change.status_code == 200
