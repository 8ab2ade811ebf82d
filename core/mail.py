"""The one place email leaves the application.

An email is three templates: ``emails/<name>.subject.txt``, ``<name>.txt`` and ``<name>.html``,
rendered in the recipient's language and sent as multipart/alternative (text + HTML). A
worker sending a batch passes one SMTP ``connection`` to reuse it.
"""

from __future__ import annotations

import re
from email.utils import make_msgid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation


def site_url(path: str) -> str:
    """An absolute link for an email: emails are read outside any request."""
    return f"{settings.SITE_URL}{path}"


def mail_render(name: str, context: dict, *, language: str) -> tuple[str, str, str]:
    """Subject, text and HTML of the email ``name`` in ``language``."""
    with translation.override(language):
        context = {"SITE_NAME": settings.SITE_NAME, "SITE_URL": settings.SITE_URL, **context}
        subject = render_to_string(f"emails/{name}.subject.txt", context)
        text = render_to_string(f"emails/{name}.txt", context)
        html = render_to_string(f"emails/{name}.html", context)
    # A subject is one line: a template's line breaks must not become header breaks. Only
    # line breaks are collapsed; no-break spaces (French typography) stay.
    return re.sub(r"\s*[\r\n]+\s*", " ", subject).strip(), text, html


def mail_send(
    *,
    to: str,
    name: str,
    context: dict,
    language: str,
    headers: dict[str, str] | None = None,
    from_email: str | None = None,
    connection=None,
) -> str:
    """Render and send one email; return its Message-ID (on the site's own domain).

    Errors of the SMTP server are raised (smtplib's exceptions, OSError): the caller decides
    what is transient. Header values must be one line; Django refuses the rest.
    """
    subject, text, html = mail_render(name, context, language=language)
    message_id = make_msgid(domain=urlsplit(settings.SITE_URL).hostname or "localhost")
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=from_email or settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"Message-ID": message_id, **(headers or {})},
        connection=connection,
    )
    message.attach_alternative(html, "text/html")
    message.send()
    return message_id
