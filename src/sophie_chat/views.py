"""HTTP views."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sophie_chat import __version__, backends
from sophie_chat.consumers import open_connections
from sophie_chat.protocol import PROTOCOL_VERSION


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness for load balancers: 200 when the database answers, else 503.

    Says nothing secret: versions, the model backend's class and model name,
    and this process's open chat connections.
    """
    database_ok = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        database_ok = False
    payload = {
        "status": "ok" if database_ok else "unavailable",
        "version": __version__,
        "protocol": PROTOCOL_VERSION,
        "database": "ok" if database_ok else "unavailable",
        "connections": open_connections(),
        "llm": backends.llm().describe(),
    }
    return JsonResponse(payload, status=200 if database_ok else 503)
