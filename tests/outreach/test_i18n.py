"""The interface speaks English and French (complete) and German (started), chosen by the
browser or the language switcher."""

from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.urls import reverse

from tests.factories import LibraryFactory

ROOT = Path(__file__).resolve().parents[2]


def test_every_interface_language_has_a_compiled_catalogue_without_guesses():
    for code, _name in settings.LANGUAGES:
        if code == settings.LANGUAGE_CODE:
            continue
        po = ROOT / "locale" / code / "LC_MESSAGES" / "django.po"
        assert po.with_suffix(".mo").is_file(), f"{code}: run `make messages`"
        entries = po.read_text(encoding="utf-8").split("\n\n")[1:]  # after the header
        fuzzy = [
            e
            for e in entries
            if any(line.startswith("#,") and "fuzzy" in line for line in e.splitlines())
        ]
        assert not fuzzy, f"{code}: fuzzy entries: {fuzzy[:3]}"


def test_the_complete_languages_have_every_message_translated():
    for code in settings.COMPLETE_LANGUAGES:
        if code == settings.LANGUAGE_CODE:
            continue
        with open(ROOT / "locale" / code / "LC_MESSAGES" / "django.po", "rb") as po:
            catalog = read_po(po)
        untranslated = [
            message.id
            for message in catalog
            if message.id
            and not all(message.string if isinstance(message.string, tuple) else [message.string])
        ]
        assert not untranslated, f"{code}: untranslated: {untranslated[:5]}"


def test_a_french_browser_gets_the_french_login_page(client, db):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="fr-CH,fr;q=0.9,en;q=0.5")
    page = response.content.decode()
    assert '<html lang="fr">' in page
    assert "Se connecter" in page


@pytest.mark.django_db
def test_the_language_switcher_turns_the_pages_into_french(coordinator_client):
    LibraryFactory(name="Bibliothèque de Morges", status="prospect")
    response = coordinator_client.post(
        reverse("set_language"),
        {"language": "fr", "next": reverse("libraries:library-list")},
        follow=True,
    )
    page = response.content.decode()
    assert '<html lang="fr">' in page
    assert '<h1 class="h3 mb-0">Bibliothèques</h1>' in page
    assert "À contacter" in page  # the status, from the model's choices
    # And back to English.
    english = coordinator_client.post(
        reverse("set_language"), {"language": "en", "next": "/libraries/"}, follow=True
    )
    assert '<h1 class="h3 mb-0">Libraries</h1>' in english.content.decode()


@pytest.mark.django_db
def test_a_german_browser_gets_the_main_screens_in_german(client, coordinator):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="de-CH,de;q=0.9")
    assert '<html lang="de">' in response.content.decode()
    assert "Anmelden" in response.content.decode()
    client.force_login(coordinator)
    page = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="de-CH,de;q=0.9")
    text = page.content.decode()
    assert "Bibliotheken" in text
    assert "Abmelden" in text
