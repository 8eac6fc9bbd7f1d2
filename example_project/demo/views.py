"""Casa Pronta's pages: home, services, the help center, log in and the account page."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import get_language

from demo.accounts import DEMO_ACCOUNTS, DEMO_PASSWORD, user_type
from demo.content import HELP_TOPICS, JOBS, SERVICES, SITE
from demo.models import Booking
from sophie_chat.models import KnowledgeBaseEntry


def _language() -> str:
    return "pt-br" if (get_language() or "").lower().startswith("pt") else "en"


def _service(slug: str, language: str) -> dict[str, Any]:
    service = SERVICES[slug]
    return {"slug": slug, "price": service["price"], **service[language]}


def _services(language: str) -> list[dict[str, Any]]:
    return [_service(slug, language) for slug in SERVICES]


def site_text(request: HttpRequest) -> dict[str, Any]:
    """Context processor: the site's copy in the visitor's language, and who is logged in."""
    language = _language()
    user = getattr(request, "user", None)
    kind = user_type(user) if user is not None else "anonymous"
    return {
        "site": SITE[language],
        "visitor_type": kind,
        "visitor_type_label": SITE[language].get(kind, ""),
    }


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "demo/home.html", {"services": _services(_language())})


def services(request: HttpRequest) -> HttpResponse:
    return render(request, "demo/services.html", {"services": _services(_language())})


def service(request: HttpRequest, slug: str) -> HttpResponse:
    if slug not in SERVICES:
        raise Http404("No such service.")
    return render(request, "demo/service.html", {"service": _service(slug, _language())})


def help_center(request: HttpRequest) -> HttpResponse:
    language = _language()
    topics = [{"url": url, "title": titles[language]} for url, titles in HELP_TOPICS.items()]
    return render(request, "demo/help.html", {"topics": topics})


def topic(request: HttpRequest) -> HttpResponse:
    """A help page: the knowledge entries whose ``url`` is this page, in the visitor's language.

    Sophie lists these pages as the sources of her answers, so the page says
    what she said.
    """
    language = _language()
    titles = HELP_TOPICS.get(request.path)
    if titles is None:
        raise Http404("No such help page.")
    entries = KnowledgeBaseEntry.objects.filter(url=request.path, active=True)
    in_language = [entry for entry in entries if entry.locale == language]
    return render(
        request,
        "demo/topic.html",
        {"title": titles[language], "entries": in_language or list(entries)},
    )


class DemoLoginView(LoginView):
    """Django's login view, with the demo accounts and their password on the page."""

    template_name = "demo/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        text = SITE[_language()]
        context["demo_accounts"] = [
            {
                "username": account.username,
                "title": text[f"demo_{account.user_type}"],
                "text": text[f"demo_{account.user_type}_text"],
                "button": text["login_as"] % {"name": account.first_name},
            }
            for account in DEMO_ACCOUNTS
        ]
        context["demo_password"] = DEMO_PASSWORD
        return context


def _bookings(user: Any) -> list[tuple[str, str, str, str]]:
    # The same bookings Sophie is told about (demo/chat_context.py).
    return [
        (
            booking.service,
            date_format(timezone.localtime(booking.starts_at), "DATETIME_FORMAT"),
            booking.get_status_display(),
            booking.provider_name,
        )
        for booking in Booking.objects.filter(client=user).exclude(status=Booking.Status.CANCELLED)
    ]


@login_required
def account(request: HttpRequest) -> HttpResponse:
    language = _language()
    is_provider = user_type(request.user) == "provider"
    return render(
        request,
        "demo/account.html",
        {
            "greeting": SITE[language]["hello"]
            % {"name": request.user.first_name or request.user.get_username()},
            "is_provider": is_provider,
            # The support agent's way to the staff inbox (demo/accounts.py).
            "is_agent": request.user.has_perm("sophie_chat.handle_conversation"),
            "items": JOBS[language] if is_provider else _bookings(request.user),
        },
    )
