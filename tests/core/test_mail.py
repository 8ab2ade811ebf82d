"""The email seam: three templates, one line of subject, French typography kept."""

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
