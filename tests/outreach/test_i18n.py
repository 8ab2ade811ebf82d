"""The interface speaks English and French, chosen by the browser or the language switcher."""

import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import LibraryFactory

ROOT = Path(__file__).resolve().parents[2]


def test_every_interface_language_has_a_complete_compiled_catalogue():
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
        untranslated = subprocess.run(
            ["msgattrib", "--untranslated", str(po)], capture_output=True, text=True
        )
        if untranslated.returncode == 0:  # GNU gettext is installed: check precisely
            assert "msgid" not in untranslated.stdout, f"{code}: untranslated entries"


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
