"""HTTP views."""

from __future__ import annotations

from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sophie_chat import __version__, backends, conf
from sophie_chat import metrics as metrics_module
from sophie_chat.connections import registry
from sophie_chat.protocol import PROTOCOL_VERSION


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness for load balancers: 200 when the database answers, else 503.

    Anyone gets ``{"status": "ok"}`` (or ``"unavailable"``) and the status
    code, nothing more. Logged-in staff, or everyone when
    ``SOPHIE_CHAT["HEALTH_DETAILS"]`` is True, also get the package and
    protocol versions, the database's state, this process's open chat
    connections and the model backend's class and model name (never a
    secret).
    """
    database_ok = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        database_ok = False
    payload: dict[str, object] = {"status": "ok" if database_ok else "unavailable"}
    if conf.get("HEALTH_DETAILS") or _is_staff(request):
        payload.update(
            {
                "version": __version__,
                "protocol": PROTOCOL_VERSION,
                "database": "ok" if database_ok else "unavailable",
                "connections": registry.total,
                "llm": backends.llm().describe(),
            }
        )
    return JsonResponse(payload, status=200 if database_ok else 503)


def _is_staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, when ``SOPHIE_CHAT["METRICS"]["ENDPOINT"]`` is on (404 otherwise).

    For a scraper sending ``Authorization: Bearer <METRICS["TOKEN"]>``, or a
    logged-in staff user; anyone else gets 403. In multi-process mode
    (``PROMETHEUS_MULTIPROC_DIR``) it reports the sum over all processes.
    """
    settings = conf.get("METRICS")
    if not settings.get("ENDPOINT") or not metrics_module.available():
        raise Http404("Metrics are not enabled.")
    token = settings.get("TOKEN")
    bearer = request.headers.get("Authorization", "")
    user = getattr(request, "user", None)
    allowed = bool(token) and constant_time_compare(bearer, f"Bearer {token}")
    if not allowed and not (user is not None and user.is_active and user.is_staff):
        return HttpResponse("Forbidden", status=403, content_type="text/plain")
    body, content_type = metrics_module.exposition()
    return HttpResponse(body, content_type=content_type)
