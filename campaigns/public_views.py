"""Pages recipients reach from links in a campaign email: no login, a signed link instead.

GET never changes anything (mail scanners open links to check them); answers, unsubscribes
and preferences are recorded on POST. A link that was altered or has expired gets a plain
400 page. The one-click unsubscribe of RFC 8058 is a POST from the mail program itself,
without a CSRF token: the signed link is its proof.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from core.links import LinkError
from libraries.models import Librarian

from . import links, services
from .forms_public import InvitationAnswerForm, PreferencesForm
from .models import Delivery, Suppression, address_key


@method_decorator(login_not_required, name="dispatch")
class DeliveryLinkView(View):
    purpose: str

    def dispatch(self, request, token):
        try:
            self.delivery = links.delivery_from_token(token, purpose=self.purpose)
        except LinkError as error:
            return render(
                request, "campaigns/link_invalid.html", {"expired": error.expired}, status=400
            )
        return super().dispatch(request, token)


class InvitationAnswerView(DeliveryLinkView):
    """yes / maybe / no to an invitation: GET shows the answer pre-selected, POST records it."""

    purpose = links.ANSWER_PURPOSE
    template_name = "campaigns/invitation_answer.html"

    def render_page(self, request, form):
        return render(
            request,
            self.template_name,
            {"form": form, "delivery": self.delivery, "campaign": self.delivery.campaign},
        )

    def get(self, request, token):
        if not self.delivery.campaign.asks_for_answers:
            return render(request, "campaigns/link_invalid.html", {"expired": False}, status=400)
        answer = request.GET.get("answer") or self.delivery.answer
        initial = {"answer": answer} if answer in Delivery.Answer.values else {}
        initial["comment"] = self.delivery.answer_comment
        return self.render_page(request, InvitationAnswerForm(initial=initial))

    def post(self, request, token):
        if not self.delivery.campaign.asks_for_answers:
            return render(request, "campaigns/link_invalid.html", {"expired": False}, status=400)
        form = InvitationAnswerForm(request.POST)
        if not form.is_valid():
            return self.render_page(request, form)
        services.invitation_answer(
            delivery=self.delivery,
            answer=form.cleaned_data["answer"],
            comment=form.cleaned_data["comment"],
        )
        messages.success(request, _("Thank you: your answer is recorded."))
        return redirect("campaigns:answer", token=token)


@method_decorator(csrf_exempt, name="dispatch")
class UnsubscribeView(DeliveryLinkView):
    """GET asks to confirm; POST unsubscribes (from the page, or one-click from the mail
    program with ``List-Unsubscribe=One-Click`` in the body, RFC 8058)."""

    purpose = links.UNSUBSCRIBE_PURPOSE

    def get(self, request, token):
        return render(request, "campaigns/unsubscribe.html", self._context(token))

    def post(self, request, token):
        services.address_unsubscribe(email=self.delivery.email, detail=self._detail(request))
        if request.POST.get("List-Unsubscribe") == "One-Click":
            return HttpResponse(_("You are unsubscribed."), content_type="text/plain")
        return render(request, "campaigns/unsubscribe.html", self._context(token, done=True))

    def _detail(self, request) -> str:
        how = "one-click" if request.POST.get("List-Unsubscribe") == "One-Click" else "page"
        return f"{how}, campaign {self.delivery.campaign_id}"

    def _context(self, token, *, done=False):
        unsubscribed = Suppression.objects.filter(
            email=address_key(self.delivery.email),
            reason=Suppression.Reason.UNSUBSCRIBED,
        ).exists()
        return {
            "delivery": self.delivery,
            "unsubscribed": unsubscribed or done,
            "done": done,
            "preferences_token": links.delivery_token(
                self.delivery, purpose=links.PREFERENCES_PURPOSE
            ),
        }


class PreferencesView(DeliveryLinkView):
    """The recipient's language and whether they receive campaigns at all."""

    purpose = links.PREFERENCES_PURPOSE

    def get(self, request, token):
        key = address_key(self.delivery.email)
        librarian = Librarian.objects.filter(email__iexact=key).first()
        subscribed = not Suppression.objects.filter(
            email=key, reason=Suppression.Reason.UNSUBSCRIBED
        ).exists()
        form = PreferencesForm(
            initial={
                "language": librarian.language if librarian else self.delivery.language,
                "subscribed": subscribed,
            }
        )
        return self._render(request, form)

    def post(self, request, token):
        form = PreferencesForm(request.POST)
        if not form.is_valid():
            return self._render(request, form)
        services.preferences_update(delivery=self.delivery, **form.cleaned_data)
        messages.success(request, _("Your preferences are saved."))
        return redirect("campaigns:preferences", token=token)

    def _render(self, request, form):
        return render(
            request, "campaigns/preferences.html", {"form": form, "delivery": self.delivery}
        )
