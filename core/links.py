"""Signed links in emails: scoped to one purpose and one person, tamper-evident, expiring.

A token carries a small JSON payload signed with SECRET_KEY and a salt naming its purpose,
so a link made to manage one RSVP cannot be replayed to answer an invitation or to manage
somebody else's RSVP. Loading a token that was altered, cut, or is too old raises LinkError,
which views turn into a plain 400 page.
"""

from __future__ import annotations

from datetime import timedelta

from django.core import signing


class LinkError(Exception):
    """The link is not valid (tampered, malformed) or has expired; ``expired`` says which."""

    def __init__(self, *, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def _salt(purpose: str) -> str:
    # The salt named the module's first home: every link already sent was signed with it,
    # so it stays byte for byte (tests/core/test_links_compat.py).
    return f"outreach.links.{purpose}"


def link_token(*, purpose: str, payload: dict) -> str:
    return signing.dumps(payload, salt=_salt(purpose), compress=True)


def link_load(*, purpose: str, token: str, max_age: timedelta) -> dict:
    try:
        payload = signing.loads(token, salt=_salt(purpose), max_age=max_age)
    except signing.SignatureExpired:
        raise LinkError(expired=True) from None
    except (signing.BadSignature, ValueError, UnicodeError):
        raise LinkError(expired=False) from None
    if not isinstance(payload, dict):
        raise LinkError(expired=False)
    return payload
