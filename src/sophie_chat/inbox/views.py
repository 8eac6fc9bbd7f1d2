"""The inbox page at ``chat/inbox/``: the frame the inbox's script fills in live.

For users with ``sophie_chat.handle_conversation`` (superusers have it):
anonymous visitors are sent to the site's ``LOGIN_URL`` when it set one,
else to the admin's login page; anyone else gets 403. Everything it shows comes over its
staff WebSocket (:mod:`sophie_chat.inbox.consumers`); the page itself holds
only the layout, the UI strings as inert JSON and external assets, so it
works under a strict Content-Security-Policy.
"""

from __future__ import annotations

from django.conf import global_settings, settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sophie_chat import conf
from sophie_chat.dashboard import _login_url
from sophie_chat.inbox import may_handle
from sophie_chat.templatetags.sophie_chat import csp_nonce

#: Where the inbox's consumer is routed (sophie_chat.routing).
WS_PATH = "/ws/chat/inbox/"


@never_cache
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path(), login_url())
    if not may_handle(user):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": _("Inbox"),
        "ws_path": WS_PATH,
        "strings": ui_strings(),
        "handoff_enabled": conf.get("HANDOFF")["ENABLED"],
    }
    context["nonce"] = csp_nonce(context | {"request": request})
    return render(request, "sophie_chat/inbox/inbox.html", context)


def login_url() -> str | None:
    """The site's own ``LOGIN_URL`` when it set one (agents need not be staff), else the
    admin's login page (staff only), else Django's default."""
    if settings.LOGIN_URL != global_settings.LOGIN_URL:
        return None  # redirect_to_login reads settings.LOGIN_URL
    return _login_url()


def ui_strings() -> dict[str, str]:
    """The inbox script's text in the active language (``%(...)s`` filled in by the script)."""
    return {
        "title": _("Inbox"),
        "waiting": _("Waiting"),
        "active": _("In progress"),
        "recent": _("Recent"),
        "empty": _("No conversation here."),
        "waited": _("waiting for %(time)s"),
        "since": _("since %(time)s"),
        "unread": _("%(count)s unread"),
        "visitor": _("Visitor"),
        "anonymous": _("Anonymous visitor"),
        "you": _("you"),
        "agent_of": _("Held by %(name)s"),
        "claim": _("Claim"),
        "transfer": _("Transfer"),
        "transfer_to": _("Transfer to"),
        "end": _("End conversation"),
        "reply": _("Reply to the visitor"),
        "send": _("Send"),
        "canned": _("Canned reply"),
        "canned_none": _("Insert a canned reply…"),
        "notes": _("Internal notes"),
        "notes_hint": _("Only agents see these notes; the visitor never does."),
        "add_note": _("Add note"),
        "note": _("New note"),
        "transcript": _("Conversation"),
        "context": _("About the visitor"),
        "leads": _("Messages left"),
        "sources": _("Sources"),
        "role_user": _("Visitor"),
        "role_assistant": conf.get("ASSISTANT_NAME"),
        "role_agent": _("Agent"),
        "role_system": _("System"),
        "visitor_typing": _("The visitor is typing…"),
        "agents": _("Agents"),
        "online": _("Online"),
        "away": _("Away"),
        "offline": _("Offline"),
        "connecting": _("Connecting…"),
        "connected": _("Connected"),
        "reconnecting": _("Connection lost; reconnecting…"),
        "sound": _("Sound alert for new conversations"),
        "new_waiting": _("New conversation waiting: %(name)s"),
        "choose": _("Choose a conversation on the left."),
        "state_waiting": _("Waiting"),
        "state_active": _("In progress"),
        "state_ended": _("Ended"),
        "state_unavailable": _("Left a message"),
        "state_cancelled": _("Cancelled"),
        "state_abandoned": _("Abandoned"),
        "claim_first": _("Claim this conversation to reply."),
        "claimed": _("You took this conversation."),
        "ended": _("The conversation has ended; Sophie answers again."),
        "transferred": _("Conversation transferred."),
        "error": _("Something went wrong. Please try again."),
    }
