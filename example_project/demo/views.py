from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import get_language

from demo.content import SERVICES, SITE


def _language() -> str:
    return "pt-br" if (get_language() or "").lower().startswith("pt") else "en"


def _service(slug: str, language: str) -> dict[str, Any]:
    service = SERVICES[slug]
    return {"slug": slug, "price": service["price"], **service[language]}


def site_text(request: HttpRequest) -> dict[str, Any]:
    """Context processor: the site's copy in the visitor's language."""
    return {"site": SITE[_language()]}


def home(request: HttpRequest) -> HttpResponse:
    language = _language()
    services = [_service(slug, language) for slug in SERVICES]
    return render(request, "demo/home.html", {"services": services})


def service(request: HttpRequest, slug: str) -> HttpResponse:
    if slug not in SERVICES:
        raise Http404("No such service.")
    return render(request, "demo/service.html", {"service": _service(slug, _language())})
