"""Text rules every app applies the same way: slugs that no row uses yet, email addresses,
wiki usernames."""

import re
import unicodedata

from django.utils.text import slugify


def unique_slug(model: type, text: str, *, max_length: int = 200) -> str:
    """A slug for ``text`` that no row of ``model`` uses yet ("bcu-lausanne", "…-2", …)."""
    base = slugify(text)[:max_length] or "item"
    slug, n = base, 1
    while model.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def normalize_email(email: str) -> str:
    """Trim and lower-case the domain; the local part keeps its case (RFC 5321 §2.4)."""
    email = email.strip()
    local, sep, domain = email.rpartition("@")
    return f"{local}{sep}{domain.lower()}" if sep else email


def normalize_wiki_username(name: str) -> str:
    """A wiki username as MediaWiki reads it, but for the case of its first letter (which
    depends on the wiki, see drives.wiki): Unicode NFC (MediaWiki normalises every request
    to it), underscores as spaces, runs of spaces as one, no space around."""
    return re.sub(r"[ _]+", " ", unicodedata.normalize("NFC", name)).strip()
