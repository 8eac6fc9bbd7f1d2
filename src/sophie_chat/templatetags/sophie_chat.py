"""``{% sophie_chat_widget %}``: puts the chat widget on a page.

::

    {% load sophie_chat %}
    {% sophie_chat_widget %}
    {% sophie_chat_widget theme="dark" position="bottom-left" open=True %}
    {% sophie_chat_widget suggestions=my_list_of_questions %}

The tag renders only external assets and inert data, so it works under a
strict Content-Security-Policy (``script-src 'self'; style-src 'self'``): a
module ``<script src>`` (with the request's CSP nonce when there is one), the
``<sophie-chat>`` element configured by ``data-*`` attributes, and its
translated UI strings in an ``application/json`` block, which browsers never
execute. The widget loads its stylesheet inside its own shadow root.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django import template
from django.templatetags.static import static
from django.utils import translation
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from sophie_chat import conf

register = template.Library()

THEMES = ("auto", "light", "dark")
POSITIONS = ("bottom-right", "bottom-left")
DEFAULT_WS_PATH = "/ws/chat/"
WIDGET_TEMPLATE = "sophie_chat/widget.html"
STRINGS_ID = "sophie-chat-strings"
MAX_SUGGESTIONS = 4
MAX_SUGGESTION_LENGTH = 200

_TRUE = {"1", "true", "yes", "on"}


@register.simple_tag(takes_context=True)
def sophie_chat_widget(
    context: template.Context,
    *,
    ws_path: str = DEFAULT_WS_PATH,
    locale: str | None = None,
    theme: str = "auto",
    position: str = "bottom-right",
    name: str | None = None,
    avatar_url: str | None = None,
    greeting: str | None = None,
    suggestions: Iterable[str] | str | None = None,
    open: bool | str = False,
) -> SafeString:
    """Render the chat widget.

    Every option is optional: ``ws_path`` (the consumer's path, or a full
    ``ws://``/``wss://`` URL), ``locale`` (default: the active language),
    ``theme`` (``auto``, ``light`` or ``dark``), ``position``
    (``bottom-right`` or ``bottom-left``), ``name`` and ``avatar_url``
    (default: the ``ASSISTANT_NAME`` and ``ASSISTANT_AVATAR_URL`` settings),
    ``greeting`` (default: the server's greeting), ``suggestions`` (up to
    four questions offered as buttons under the greeting: a list, or one
    string separated by ``|``) and ``open`` (start with the panel open).
    Raises ``TemplateSyntaxError`` for an unknown theme or position.
    """
    if theme not in THEMES:
        raise template.TemplateSyntaxError(
            f"sophie_chat_widget: theme must be one of {', '.join(THEMES)}, not {theme!r}."
        )
    if position not in POSITIONS:
        raise template.TemplateSyntaxError(
            f"sophie_chat_widget: position must be one of {', '.join(POSITIONS)}, not {position!r}."
        )
    locale = _text(locale or translation.get_language() or "en")
    name = _text(name or conf.get("ASSISTANT_NAME"))
    avatar_url = _text(avatar_url or conf.get("ASSISTANT_AVATAR_URL") or "")
    with translation.override(locale):
        strings = ui_strings(name)
        greeting_text = _text(greeting) if greeting else default_greeting(name)

    request = context.get("request")
    widget_context = {
        "strings": strings,
        "strings_id": _strings_id(request),
        "ws_path": _text(ws_path or DEFAULT_WS_PATH),
        "locale": locale,
        "theme": theme,
        "position": position,
        "name": name,
        "avatar_url": avatar_url,
        "greeting": greeting_text,
        # An explicit greeting belongs to this page; otherwise the server's
        # welcome greeting (same setting, visitor's language) replaces it.
        "keep_greeting": bool(greeting),
        "suggestions": _suggestions_json(suggestions),
        "max_length": conf.get("MAX_MESSAGE_LENGTH"),
        "open": _as_bool(open),
        "script_url": static("sophie_chat/widget.js"),
        "stylesheet_url": static("sophie_chat/widget.css"),
        "nonce": csp_nonce(context),
    }
    # Always autoescaped, even inside a host's {% autoescape off %}.
    widget = context.template.engine.get_template(WIDGET_TEMPLATE)
    return widget.render(template.Context(widget_context, autoescape=True))


def default_greeting(name: str) -> str:
    """The ``GREETING`` setting, or the built-in greeting in the active language."""
    configured = conf.get("GREETING")
    if configured:
        return _text(configured)
    return _("Hi! I'm %(name)s. How can I help you today?") % {"name": name}


def ui_strings(name: str) -> dict[str, str]:
    """The widget's UI text in the active language.

    ``%(seconds)s``, ``%(score)s``, ``%(count)s``, ``%(max)s`` and
    ``%(summary)s`` are left for the widget to fill in.
    """
    return {
        "open": _("Chat with %(name)s") % {"name": name},
        "close": _("Close chat"),
        "dialog": _("Chat with %(name)s") % {"name": name},
        "log": _("Conversation"),
        "input": _("Your message"),
        "placeholder": _("Type your message…"),
        "send": _("Send"),
        "you": _("You"),
        "agent": _("Support agent"),
        "connecting": _("Connecting…"),
        "online": _("Online"),
        "reconnecting": _("Reconnecting…"),
        "offline": _("Offline"),
        "typing": _("%(name)s is typing…") % {"name": name},
        "agent_typing": _("A support agent is typing…"),
        "pending": _("Sending…"),
        "queued": _("Waiting for the connection…"),
        "failed": _("Not sent"),
        "retry": _("Try again"),
        "sources": _("Sources"),
        "retry_in": _("You can send again in %(seconds)s s."),
        "error": _("Something went wrong. Please try again."),
        "ended": _("This conversation has ended. Your next message starts a new one."),
        "new_session": _(
            "Your previous conversation could not be continued, so a new one has started."
        ),
        "refused": _("The chat is not available right now."),
        "helpful": _("Helpful"),
        "not_helpful": _("Not helpful"),
        "feedback_thanks": _("Thanks for your feedback."),
        "rate_title": _("How was your conversation with %(name)s?") % {"name": name},
        "rate_score": _("%(score)s out of 5"),
        "rate_low": _("Poor"),
        "rate_high": _("Excellent"),
        "rate_skip": _("Not now"),
        "rate_thanks": _("Thank you! Your rating helps us improve."),
        "limit_near": _("%(count)s characters left."),
        "limit_reached": _("You have reached the limit of %(max)s characters."),
        "unread": _("New message"),
        "suggestions": _("Suggested questions"),
        "new_tab": _("(opens in a new tab)"),
        "disclaimer": _("Answers are generated by AI and may contain mistakes."),
        "tool_running": _("Working on it…"),
        "confirm_title": _("Please confirm"),
        "confirm_prompt": _("%(name)s asks you to confirm: %(summary)s")
        % {"name": name, "summary": "%(summary)s"},
        "confirm_accept": _("Confirm"),
        "confirm_decline": _("Cancel"),
        "confirm_sending": _("Sending your answer…"),
        "confirm_accepted": _("Confirmed."),
        "confirm_declined": _("Cancelled. Nothing was changed."),
        "confirm_expired": _("This request expired. Nothing was changed."),
        "confirm_gone": _("This request is no longer open."),
        "handoff_request": _("Talk to a person"),
        "handoff_waiting": _("Waiting for a person from our team…"),
        "handoff_waiting_position": _(
            "Waiting for a person from our team… You are number %(position)s in line."
        ),
        "handoff_cancel": _("Stop waiting"),
        "handoff_active": _("You are talking with %(agent)s."),
        "handoff_ended": _("%(agent)s has left the conversation. %(name)s is back to help.")
        % {"agent": "%(agent)s", "name": name},
        "handoff_cancelled": _("You stopped waiting. %(name)s is here to help.") % {"name": name},
        "handoff_unavailable": _("Nobody from our team is available right now."),
        "handoff_unavailable_until": _(
            "Nobody from our team is available right now. They are back %(when)s."
        ),
        "leave_title": _("Leave a message and our team will get back to you."),
        "leave_name": _("Your name"),
        "leave_contact": _("E-mail or phone"),
        "leave_message": _("Message for the team"),
        "leave_send": _("Send message"),
        "leave_thanks": _("Thanks! Our team will get back to you."),
        "rate_agent_title": _("How was your conversation with %(agent)s?"),
        "handoff_offer": _("Would you rather talk to a person from our team?"),
    }


def csp_nonce(context: template.Context) -> str | None:
    """The request's CSP nonce, or None when the page has none.

    Django 6.0+ (``ContentSecurityPolicyMiddleware``) exposes it as the
    ``csp_nonce`` context variable and keeps it on the request; django-csp
    sets ``request.csp_nonce``. Both nonces are lazy: rendering one is what
    makes the middleware put it in the header, so test for None, never for
    truth.
    """
    nonce = context.get("csp_nonce")
    request = context.get("request")
    if nonce is None and request is not None:
        nonce = getattr(request, "csp_nonce", None)
        if nonce is None:
            nonce = _django_nonce(request)
    if nonce is None:
        return None
    return str(nonce) or None


def _django_nonce(request: Any) -> Any:
    try:
        from django.middleware.csp import get_nonce
    except ImportError:  # Django < 6.0
        return None
    return get_nonce(request)


def _strings_id(request: Any) -> str:
    # Unique per page when a template renders the widget more than once.
    if request is None:
        return STRINGS_ID
    count = getattr(request, "_sophie_chat_widgets", 0) + 1
    request._sophie_chat_widgets = count
    return STRINGS_ID if count == 1 else f"{STRINGS_ID}-{count}"


def _text(value: Any) -> str:
    # Template string literals (and mark_safe values) arrive marked safe; the
    # widget's options are plain text, so drop the mark and let them be escaped.
    return str.__str__(str(value))


def _suggestions_json(value: Iterable[str] | str | None) -> str:
    # JSON in a data-* attribute: the template escapes it like any attribute.
    if not value:
        return ""
    items = value.split("|") if isinstance(value, str) else list(value)
    texts = [_text(item).strip()[:MAX_SUGGESTION_LENGTH] for item in items]
    texts = [text for text in texts if text][:MAX_SUGGESTIONS]
    return json.dumps(texts, ensure_ascii=False) if texts else ""


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)
