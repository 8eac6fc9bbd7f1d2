"""Who is connecting: resume tokens for anonymous visitors and the client's IP."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core import signing

from sophie_chat import conf

RESUME_TOKEN_SALT = "sophie_chat.resume"  # noqa: S105 - a salt, not a secret

# What looks like a credential in text that is about to be logged.
_CREDENTIALS = re.compile(
    r"(?i)(\bsk-[A-Za-z0-9_\-]{8,}"
    r"|\bbearer\s+\S+"
    r"|\b(?:api[_-]?key|authorization|password|secret|token|x-api-key)\b[\"']?\s*[:=]\s*(?:bearer\s+)?\S+)"
)
REDACTED = "[redacted]"


def redact(text: str, *secrets: str, limit: int = 300) -> str:
    """``text`` fit for a log line: ``secrets`` and credential-like parts removed, cut short.

    For text from outside (a provider's error message); anything that may
    echo a request (a response body) is better not logged at all.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _CREDENTIALS.sub(REDACTED, text)
    return text if len(text) <= limit else text[:limit] + "…"


def make_resume_token(session_id: str) -> str:
    """A token that proves ownership of an anonymous session (signed, bound to its id)."""
    return signing.dumps({"s": str(session_id)}, salt=RESUME_TOKEN_SALT, compress=False)


def session_id_from_token(token: str) -> str | None:
    """The session id a resume token was issued for; None when it is not genuine, or
    older than ``RESUME_TOKEN_MAX_AGE_HOURS``."""
    hours = conf.get("RESUME_TOKEN_MAX_AGE_HOURS")
    try:
        data = signing.loads(
            token, salt=RESUME_TOKEN_SALT, max_age=hours * 3600 if hours is not None else None
        )
    except signing.BadSignature:  # SignatureExpired too
        return None
    if not isinstance(data, dict) or not isinstance(data.get("s"), str):
        return None
    return data["s"]


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def parse_origin(origin: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin such as ``https://example.com:8443``.

    None for anything that is not exactly an origin (a path, a query, user
    info, an unknown scheme): such an entry of ``ALLOWED_ORIGINS`` is E050.
    """
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if (
        scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        return None
    return scheme, parts.hostname.lower().rstrip("."), port or _DEFAULT_PORTS[scheme]


def origin_allowed(scope: Mapping[str, Any]) -> bool:
    """Whether the page that opened this WebSocket may use the chat (``ALLOWED_ORIGINS``).

    With ``ALLOWED_ORIGINS`` None, True: the host's ``AllowedHostsOriginValidator``
    decides, by host name. Otherwise the ``Origin`` header's scheme, host and
    port must be one of the list; a connection without one is refused.
    """
    allowed = conf.get("ALLOWED_ORIGINS")
    if allowed is None:
        return True
    origin = None
    for name, value in scope.get("headers") or ():
        if name.lower() == b"origin":
            origin = parse_origin(value.decode("latin-1"))
    return origin is not None and origin in {parse_origin(entry) for entry in allowed}


def _networks(entries: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # reported by the E005 check
    return networks


def client_ip(scope: Mapping[str, Any]) -> str | None:
    """The visitor's IP address for limits and caps.

    The socket peer (``scope["client"]``), unless that peer is one of
    ``TRUSTED_PROXIES``: then the right-most address of ``X-Forwarded-For``
    that is not itself a trusted proxy. A forwarded header from anyone else
    is ignored, so it cannot be spoofed to dodge limits.
    """
    peer = (scope.get("client") or (None,))[0]
    trusted = _networks(conf.get("TRUSTED_PROXIES"))
    if not peer or not trusted or not _is_in(peer, trusted):
        return peer
    forwarded = ""
    for name, value in scope.get("headers") or ():
        if name.lower() == b"x-forwarded-for":
            forwarded = (
                f"{forwarded},{value.decode('latin-1')}" if forwarded else value.decode("latin-1")
            )
    for candidate in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        if not _is_in(candidate, trusted):
            return candidate if _valid_ip(candidate) else peer
    return peer


def _valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_in(address: str, networks: list[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
