"""Demo campaigns on top of the demo network (see libraries.demo): the invitation that went
to the libraries of Vaud (through their list and to their librarians) with the answers that
came back, a shortlist of the most active librarians, and the follow-up ready to send.

Idempotent like the rest of the demo: a campaign found by its title is left as it is.
"""

from __future__ import annotations

from datetime import timedelta
from email.utils import make_msgid

from django.db.models import Count, Q

from libraries.demo import DemoContext
from libraries.models import Library, MailingList

from .models import Campaign, Delivery, Message
from .services import campaign_follow_up_create, deliveries_create

INVITATION = "Wikipermanences dans les bibliothèques vaudoises"
SUBJECT = "Une Wikipermanence gratuite à {{ library }} ?"
BODY = """Bonjour {{ recipient }},

Wikimédia propose aux bibliothèques de Suisse romande des Wikipermanences : une rencontre \
mensuelle gratuite, dans votre bibliothèque, où des bénévoles de Wikipédia accueillent le \
public et les bibliothécaires pour apprendre à contribuer à Wikipédia et à Wikimedia Commons.

Vous n'avez qu'à prêter une salle et annoncer la date ; nous apportons le reste : \
bénévoles, affiche, textes d'annonce et suivi.

{{ answer_links }}

Avec nos meilleures salutations,
L'équipe bibliothèques de Wikimédia
"""
BODY_DE = """Guten Tag {{ recipient }},

Wikimedia bietet Bibliotheken eine kostenlose monatliche Wikipermanence an: Freiwillige \
der Wikipedia empfangen in Ihrer Bibliothek Publikum und Bibliothekarinnen und zeigen, \
wie man zu Wikipedia und Wikimedia Commons beiträgt.

Sie stellen einen Raum zur Verfügung, wir bringen den Rest mit.

{{ answer_links }}

Freundliche Grüsse
Das Bibliotheksteam von Wikimedia
"""
SHORTLIST_SIZE = 12


def load(ctx: DemoContext) -> None:
    _invitation_load(ctx)


def _invitation_load(ctx: DemoContext) -> None:
    if Campaign.objects.filter(title=INVITATION).exists():
        return
    vaud = ctx.regions.get("vaud")
    vaud_list = MailingList.objects.filter(name="Biblio-Vaud").first()
    if vaud is None or vaud_list is None:
        return
    sent_at = ctx.now - timedelta(days=42)
    invitation = Campaign.objects.create(
        title=INVITATION,
        kind=Campaign.Kind.INVITATION,
        status=Campaign.Status.SENDING,
        default_language="fr",
        filter_librarians=True,
        started_at=sent_at,
    )
    invitation.mailing_lists.add(vaud_list)
    invitation.regions.add(vaud)
    Message.objects.create(campaign=invitation, language="fr", subject=SUBJECT, body=BODY)
    Message.objects.create(
        campaign=invitation,
        language="de",
        subject="Eine kostenlose Wikipermanence in {{ library }}?",
        body=BODY_DE,
    )
    deliveries_create(campaign=invitation)
    _history(ctx, invitation, sent_at)
    ctx.created["campaigns"] += 1
    ctx.created["deliveries"] += invitation.deliveries.count()
    _shortlist(ctx, vaud)
    campaign_follow_up_create(campaign=invitation)
    ctx.created["campaigns"] += 1


def _history(ctx: DemoContext, invitation: Campaign, sent_at) -> None:
    """Everything sent six weeks ago; the libraries that moved on since answered."""
    rng = ctx.rng("campaign", invitation.title)
    deliveries = list(invitation.deliveries.select_related("library"))
    for n, delivery in enumerate(deliveries):
        delivery.state = Delivery.State.SENT
        delivery.attempts = 1
        delivery.sent_at = sent_at + timedelta(seconds=n * 2)
        delivery.message_id = make_msgid(domain="outreach.example.org")
        if delivery.mailing_list_id:
            delivery.moderation = Delivery.Moderation.APPROVED
        status = delivery.library.status if delivery.library else None
        answer = {
            Library.Status.INTERESTED: Delivery.Answer.YES,
            Library.Status.PARTNER: Delivery.Answer.YES,
            Library.Status.DORMANT: Delivery.Answer.NO,
        }.get(status)
        if answer is None and status == Library.Status.CONTACTED and rng.random() < 0.3:
            answer = Delivery.Answer.MAYBE
        if answer:
            delivery.answer = answer
            delivery.answered_at = delivery.sent_at + timedelta(hours=rng.randint(2, 200))
            if answer == Delivery.Answer.NO:
                delivery.answer_comment = "Pas de salle disponible cette année."
    # The first deliveries of a library answer for it; its colleagues stay silent.
    answered: set[int] = set()
    for delivery in deliveries:
        if delivery.answer and delivery.library_id in answered:
            delivery.answer, delivery.answered_at, delivery.answer_comment = "", None, ""
        elif delivery.answer:
            answered.add(delivery.library_id)
    Delivery.objects.bulk_update(
        deliveries,
        [
            "state",
            "attempts",
            "sent_at",
            "message_id",
            "moderation",
            "answer",
            "answered_at",
            "answer_comment",
        ],
    )
    invitation.status = Campaign.Status.SENT
    invitation.finished_at = sent_at + timedelta(minutes=15)
    invitation.save(update_fields=["status", "finished_at", "updated_at"])


def _shortlist(ctx: DemoContext, region) -> None:
    """The most active librarians of the region (by their libraries' signals), ranked."""
    libraries = (
        Library.objects.filter(region=region)
        .annotate(
            n=Count("signals", filter=Q(signals__occurred_at__gte=ctx.now - timedelta(days=365)))
        )
        .order_by("-n", "name")
    )
    rank = 0
    for library in libraries:
        librarian = library.librarians.filter(unsubscribed_at=None, shortlist_rank=None).first()
        if librarian is None:
            continue
        rank += 1
        librarian.shortlist_rank = rank
        librarian.save(update_fields=["shortlist_rank", "updated_at"])
        if rank == SHORTLIST_SIZE:
            break
