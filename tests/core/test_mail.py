"""The email seam: three templates, one line of subject, French typography kept."""

import pytest
from django.core import mail

from core.mail import mail_render, mail_send


def test_a_subject_is_one_line_and_keeps_no_break_spaces(tmp_path, settings):
    (tmp_path / "emails").mkdir()
    (tmp_path / "emails" / "t.subject.txt").write_text("Demain\u00a0:\n  {{ title }}\n")
    (tmp_path / "emails" / "t.txt").write_text("Texte {{ title }}")
    (tmp_path / "emails" / "t.html").write_text("<p>{{ title }}</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    subject, text, html = mail_render("t", {"title": "Atelier"}, language="fr")
    assert subject == "Demain\u00a0: Atelier"
    assert (text, html) == ("Texte Atelier", "<p>Atelier</p>")


def test_mail_is_multipart_with_a_message_id_on_the_sites_domain(tmp_path, settings):
    (tmp_path / "emails").mkdir()
    for suffix, body in [("subject.txt", "Hello"), ("txt", "Hi"), ("html", "<p>Hi</p>")]:
        (tmp_path / "emails" / f"t.{suffix}").write_text(body)
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    settings.SITE_URL = "https://outreach.example.org"
    message_id = mail_send(to="lea@example.org", name="t", context={}, language="en")
    (message,) = mail.outbox
    assert message_id.endswith("@outreach.example.org>")
    assert message.extra_headers["Message-ID"] == message_id
    assert message.alternatives == [("<p>Hi</p>", "text/html")]


def test_every_email_template_has_its_three_parts():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates" / "emails"
    names = {
        str(p.relative_to(root)).removesuffix(".subject.txt") for p in root.rglob("*.subject.txt")
    }
    assert names, "no email templates found"
    for name in names:
        for suffix in (".subject.txt", ".txt", ".html"):
            assert (root / f"{name}{suffix}").is_file(), f"{name}{suffix} is missing"


# A batch writes the bytes itself: the very bytes Django's EmailMultiAlternatives writes. ------

LONG_LINE = "Ligne " + "très " * 250  # over 998 bytes: quoted-printable, as Django does


def _templates(tmp_path, settings, *, subject, text, html):
    (tmp_path / "emails").mkdir(exist_ok=True)
    for suffix, body in [("subject.txt", subject), ("txt", text), ("html", html)]:
        (tmp_path / "emails" / f"t.{suffix}").write_text(body)
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]


def _handed_to_smtplib(monkeypatch) -> list[tuple]:
    """What is handed to smtplib (sender, recipients, bytes), on its way to the server."""
    import smtplib

    handed, sendmail = [], smtplib.SMTP.sendmail

    def recording(self, from_addr, to_addrs, msg, *args, **kwargs):
        handed.append((from_addr, to_addrs, msg))
        return sendmail(self, from_addr, to_addrs, msg, *args, **kwargs)

    monkeypatch.setattr(smtplib.SMTP, "sendmail", recording)
    return handed


def _normalised(content: bytes) -> bytes:
    """The message without what differs at each writing: its boundary and its date."""
    import re

    boundary = re.search(rb'boundary="([^"]+)"', content).group(1)
    content = content.replace(boundary, b"BOUNDARY")
    return re.sub(rb"\r\nDate: [^\r]+\r\n", b"\r\nDate: DATE\r\n", content)


@pytest.mark.parametrize(
    "subject, text, html, from_email, to",
    [
        (
            "Wikipédia à {{ library }}\u00a0: un atelier gratuit pour vous et vos lecteurs ?",
            "Bonjour {{ name }},\n\nVoici l'atelier : https://example.org/a\n",
            "<p>Bonjour {{ name }},</p>\n<p>Voici l'atelier</p>\n",
            "Wikimedia CH <outreach@example.org>",
            "anne@bibliotheque-morges.ch",
        ),
        (
            "An ASCII subject long enough to be folded by the email package: {{ library }} here",
            "Hello {{ name }},\r\nplain ASCII only.\n.\nA line of one dot.",
            "<p>Hello {{ name }}</p>",
            "Wikimédia Suisse <outreach@example.org>",
            "Jonas.Meier@Bibliothek-Avenches.ch",
        ),
        (
            "Long lines",
            LONG_LINE + "\n{{ name }}\n",
            "<p>" + LONG_LINE + "</p>",
            "outreach@example.org",
            "luc@bibliotheque-nyon.ch",
        ),
    ],
)
def test_a_batch_sends_the_bytes_django_would(
    tmp_path, settings, smtp, monkeypatch, subject, text, html, from_email, to
):
    from django.core.mail import EmailMultiAlternatives, get_connection

    from core.mail import MailBatch

    _templates(tmp_path, settings, subject=subject, text=text, html=html)
    settings.SITE_URL = "https://outreach.example.org"
    handed = _handed_to_smtplib(monkeypatch)
    # Two messages of one batch: what the batch keeps from one is not in the other.
    messages = [
        ({"name": "Anne Dubois", "library": "Bibliothèque de Morges"}, to),
        ({"name": "Luc Martin", "library": "Bibliothèque de Nyon"}, "luc@example.org"),
    ]
    headers = {
        "List-Unsubscribe": "<mailto:outreach@example.org?subject=unsubscribe%20eyJkIjoxfQ:1x"
        "ZYBq:XgsQmQPR5KmBVRZCaAodlPQTseNsnw0xcQWGM0PR7ME>, <https://outreach.example.org/"
        "email/unsubscribe/eyJkIjoxfQ:1xZYBq:XgsQmQPR5KmBVRZCaAodlPQTseNsnw0xcQWGM0PR7ME/>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    connection = get_connection()
    connection.open()
    try:
        batch = MailBatch("t", connection=connection)
        with monkeypatch.context() as patch:
            # The batch writes the bytes itself: Django's message is not built.
            patch.setattr(EmailMultiAlternatives, "message", None)
            message_ids = [
                batch.send(
                    to=address,
                    context=context,
                    language="fr",
                    headers=headers,
                    from_email=from_email,
                )
                for context, address in messages
            ]
    finally:
        connection.close()

    assert len(handed) == len(smtp.recorder.received) == 2
    for (context, address), message_id, (_sender, _recipients, content), received in zip(
        messages, message_ids, handed, smtp.recorder.received, strict=True
    ):
        subject, text, html = batch.render(context, language="fr")
        django_message = EmailMultiAlternatives(
            subject=subject,
            body=text,
            from_email=from_email,
            to=[address],
            headers={"Message-ID": message_id, **headers},
        )
        django_message.attach_alternative(html, "text/html")
        assert _normalised(content) == _normalised(
            django_message.message().as_bytes(linesep="\r\n")
        )
        # What the server received, from the envelope on.
        assert received.sender == from_email.split("<")[-1].strip(">")
        assert received.recipients == [address]
        assert received.message["Message-ID"] == message_id
        # (A long subject that is not ASCII starts on a line of its own, as Django writes it:
        # "Subject: \r\n =?utf-8?q?…". The parser reads a space before it.)
        assert received.message["Subject"].lstrip() == subject
        received_text = received.message.get_body(("plain",)).get_content()
        assert received_text.replace("\r\n", "\n").strip() == text.replace("\r\n", "\n").strip()
        assert context["name"] in received_text


def test_a_line_break_in_a_header_is_refused_as_django_refuses_it(tmp_path, settings, smtp):
    from django.core.mail import BadHeaderError, get_connection

    from core.mail import MailBatch

    _templates(tmp_path, settings, subject="Hello", text="Hi", html="<p>Hi</p>")
    connection = get_connection()
    connection.open()
    try:
        with pytest.raises(BadHeaderError):
            MailBatch("t", connection=connection).send(
                to="lea@example.org",
                context={},
                language="en",
                headers={"List-Unsubscribe": "<https://example.org/>\r\nBcc: everyone@example.org"},
            )
    finally:
        connection.close()
    assert smtp.recorder.received == []


def test_short_plain_headers_are_written_as_the_email_package_folds_them():
    import random
    from email.policy import compat32

    from django.core.mail.message import forbid_multi_line_headers

    from core.mail import _header

    rng = random.Random(13)
    alphabet = "abcXYZ019 <>@.,;:\"'()=?_-!~\t"
    values = ["Wikimedia CH <outreach@example.org>", "1.0", "a" * 66, "a" * 67, "x  y", " x"]
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 90))) for _ in range(500)]
    policy = compat32.clone(linesep="\r\n")
    for value in values:
        name, encoded = forbid_multi_line_headers("X-Test", value, "utf-8")
        assert _header(name, value) == policy.fold_binary(name, encoded), repr(value)


def test_plain_addresses_are_given_to_smtplib_as_django_gives_them():
    import random

    from django.core.mail.message import sanitize_address

    from core.mail import _address

    rng = random.Random(13)
    alphabet = "abcXYZ019.-_+'=/?!#~@ \"<>()[],;:é"
    addresses = [
        "anne.keller.1183@bibliothek-winterthur-183.example.ch",
        "Jonas.Meier@Bibliothek-Avenches.CH",
        "o'brien+lists@example.org",
        "a/b@example.org",
        "a=b@example.org",
        "a..b@example.org",
        ".a@example.org",
        "a@-example.org",
        "a@" + "x" * 63 + ".org",
        "Wikimedia CH <outreach@example.org>",
        "chloé@example.org",
        "anne@bücherei.example",
    ]
    addresses += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        + "@"
        + "".join(rng.choice("ab-.9X") for _ in range(rng.randint(1, 12)))
        for _ in range(1000)
    ]
    for address in addresses:
        try:
            expected = sanitize_address(address, "utf-8")
        except Exception:  # noqa: BLE001  whatever Django raises for it, so does the batch
            with pytest.raises(Exception):  # noqa: B017
                _address(address)
        else:
            assert _address(address) == expected, address
