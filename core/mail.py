"""The one place email leaves the application.

An email is three templates: ``emails/<name>.subject.txt``, ``<name>.txt`` and ``<name>.html``,
rendered in the recipient's language and sent as multipart/alternative (text + HTML). A
worker sending a batch passes one SMTP ``connection`` to reuse it, or keeps a ``MailBatch``:
the templates loaded once, and each message written out as the bytes Django would write.
"""

from __future__ import annotations

import random
import re
import sys
from email.policy import compat32
from email.utils import formatdate, make_msgid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import (
    RFC5322_EMAIL_LINE_LENGTH_LIMIT,
    SafeMIMEText,
    forbid_multi_line_headers,
    sanitize_address,
)
from django.template.loader import get_template
from django.utils import translation


def site_url(path: str) -> str:
    """An absolute link for an email: emails are read outside any request."""
    return f"{settings.SITE_URL}{path}"


def mail_templates(name: str) -> tuple:
    """The subject, text and HTML templates of the email ``name``, loaded (compiled)."""
    return tuple(get_template(f"emails/{name}.{part}") for part in ("subject.txt", "txt", "html"))


def mail_render(
    name: str, context: dict, *, language: str, templates: tuple | None = None
) -> tuple[str, str, str]:
    """Subject, text and HTML of the email ``name`` in ``language`` (with its ``templates``
    already loaded, if given)."""
    with translation.override(language):
        context = {"SITE_NAME": settings.SITE_NAME, "SITE_URL": settings.SITE_URL, **context}
        subject, text, html = (
            template.render(context) for template in templates or mail_templates(name)
        )
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
    return MailBatch(name, connection=connection).send(
        to=to, context=context, language=language, headers=headers, from_email=from_email
    )


class MailBatch:
    """Emails of one template sent one after another over one connection (a worker's batch).

    What the messages share is done once: the three templates are loaded once, and the
    sender's header and envelope address made once. Over Django's SMTP backend, its
    connection open, each message is then written straight to bytes and handed to smtplib:
    the same bytes as Django's ``EmailMultiAlternatives`` (tests/core/test_mail.py compares
    them), without the email package's tree of objects that Django builds, then flattens,
    for every message. A part with a line too long for 8bit is quoted-printable, written by
    the email package as Django has it written. With any other backend (the tests' outbox,
    the console) or another DEFAULT_CHARSET, the message goes through Django as it is.
    """

    def __init__(self, name: str, *, connection=None) -> None:
        self.name = name
        self.connection = connection
        self.templates = mail_templates(name)
        # from_email → (the envelope's sender, the From header's bytes)
        self._senders: dict[str, tuple[str, bytes]] = {}
        # A subject → its header's bytes: RFC 2047 makes the email package encode a subject
        # that is not ASCII character by character, and the messages of a batch mostly share
        # theirs (one for all, or one per library).
        self._subjects: dict[str, bytes] = {}

    def render(self, context: dict, *, language: str) -> tuple[str, str, str]:
        return mail_render(self.name, context, language=language, templates=self.templates)

    def send(
        self,
        *,
        to: str,
        context: dict,
        language: str,
        headers: dict[str, str] | None = None,
        from_email: str | None = None,
    ) -> str:
        """Render and send one email as ``mail_send`` does; return its Message-ID."""
        subject, text, html = self.render(context, language=language)
        message_id = make_msgid(domain=urlsplit(settings.SITE_URL).hostname or "localhost")
        headers = {"Message-ID": message_id, **(headers or {})}
        from_email = from_email or settings.DEFAULT_FROM_EMAIL
        smtp = self._smtp()
        if smtp is None or not to:
            message = EmailMultiAlternatives(
                subject=subject,
                body=text,
                from_email=from_email,
                to=[to],
                headers=headers,
                connection=self.connection,
            )
            message.attach_alternative(html, "text/html")
            message.send()
            return message_id
        sender, from_header = self._sender(from_email)
        subject_header = self._subjects.get(subject)
        if subject_header is None:
            subject_header = self._subjects[subject] = _header("Subject", subject)
        content = _message_bytes(
            subject_header=subject_header,
            text=text,
            html=html,
            from_header=from_header,
            to=to,
            headers=headers,
        )
        # What Django's SMTP backend does with a message (its _send), minus the object tree.
        smtp.sendmail(sender, [_address(to)], content)
        return message_id

    def _smtp(self):
        """smtplib's open connection of Django's SMTP backend, if that is the connection."""
        connection = self.connection
        if (
            isinstance(connection, SMTPBackend)
            and connection.connection is not None
            and not connection.fail_silently
            and settings.DEFAULT_CHARSET == "utf-8"
        ):
            return connection.connection
        return None

    def _sender(self, from_email: str) -> tuple[str, bytes]:
        sender = self._senders.get(from_email)
        if sender is None:
            sender = self._senders[from_email] = (
                _address(from_email),
                _header("From", from_email),
            )
        return sender


# The bytes of a message, as Django's EmailMultiAlternatives writes them ---------------------

# How BytesGenerator folds headers (the compat32 policy, 78 characters), in SMTP's line ends.
_POLICY = compat32.clone(linesep="\r\n")
_PLAIN_HEADER = re.compile(r"[!-~]+(?: [!-~]+)*")
# The headers Django's message() sets itself rather than from the extra headers.
_OWN_HEADERS = {"from", "to", "cc", "reply-to"}
_NEWLINES = re.compile(r"\r\n|\r|\n")
_PART = (
    b'Content-Type: text/%s; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
    b"Content-Transfer-Encoding: %s\r\n\r\n"
)


def _header(name: str, value: str) -> bytes:
    """One header line as Django checks and encodes it (a line break raises BadHeaderError,
    RFC 2047 for what is not ASCII) and BytesGenerator folds it."""
    name, value = forbid_multi_line_headers(name, value, "utf-8")
    if len(name) + 2 + len(value) <= 78 and _PLAIN_HEADER.fullmatch(value):
        # Short, plain ASCII: folding leaves it as it is (and costs more than the rest).
        return f"{name}: {value}\r\n".encode("ascii")
    return _POLICY.fold_binary(name, value)


# An address sanitize_address() gives back as it is: a dot-atom without the characters an
# address's local part is quoted for (RFC 5322 3.2.3 and 3.4.1), at an ASCII domain.
_ATOM = r"[A-Za-z0-9!#$%&'*+^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")


def _address(address: str) -> str:
    """An address as Django's SMTP backend gives it to smtplib (sanitize_address)."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return address  # what sanitize_address returns for it, without parsing it
    return sanitize_address(address, "utf-8")


def _part(content: str, subtype: str) -> bytes | None:
    """A text part: 8bit (7bit when ASCII), or None when Django would quote it (a line too
    long for SMTP, RFC 5322 2.1.1)."""
    if any(
        len(line.encode(errors="surrogateescape")) > RFC5322_EMAIL_LINE_LENGTH_LIMIT
        for line in content.splitlines()
    ):
        return None
    body = _NEWLINES.sub("\r\n", content).encode()
    return _PART % (subtype.encode(), b"7bit" if body.isascii() else b"8bit") + body


def _message_bytes(
    *, subject_header: bytes, text: str, html: str, from_header: bytes, to: str, headers: dict
) -> bytes:
    """multipart/alternative of ``text`` and ``html``, headers in Django's order."""
    parts = []
    for content, subtype in ((text, "plain"), (html, "html")):
        if subtype == "plain" and not content:
            continue  # Django leaves an empty body out
        part = _part(content, subtype)
        if part is None:
            # Quoted-printable, as Django writes it: by the email package itself.
            part = SafeMIMEText(content, subtype, "utf-8").as_bytes(linesep="\r\n")
        parts.append(part)
    boundary = _boundary(parts)
    lines = [
        b'Content-Type: multipart/alternative;\r\n boundary="%s"\r\n' % boundary,
        b"MIME-Version: 1.0\r\n",
        subject_header,
        _header("From", headers["From"]) if "From" in headers else from_header,
        _header("To", headers.get("To", to)),
        *(_header(name, headers[name]) for name in ("Cc", "Reply-To") if name in headers),
    ]
    if "date" not in {name.lower() for name in headers}:
        lines.append(_header("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)))
    lines.extend(
        _header(name, value) for name, value in headers.items() if name.lower() not in _OWN_HEADERS
    )
    delimiter = b"\r\n--%s\r\n" % boundary
    body = b"--%s\r\n%s\r\n--%s--\r\n" % (boundary, delimiter.join(parts), boundary)
    return b"".join(lines) + b"\r\n" + body


def _boundary(parts: list[bytes]) -> bytes:
    """A boundary shaped as the email package makes them, found in none of the parts."""
    while True:
        boundary = b"===============%019d==" % random.randrange(sys.maxsize)
        if not any(boundary in part for part in parts):
            return boundary
