"""Lead capture: the built-in tool that takes a visitor's request for the staff.

List it with the host's own tools::

    SOPHIE_CHAT = {
        "TOOLS": ["sophie_chat.tools.leads.capture_lead"],
        "LEADS": {"FIELDS": ["service", "name", "phone"], "NOTIFY": ["sales@example.com"]},
    }

The model collects what ``LEADS["FIELDS"]`` names (only those are in the
schema it sees), the visitor confirms the summary, and a
:class:`~sophie_chat.models.Lead` is stored for this conversation; then
:data:`sophie_chat.signals.lead_captured` is sent (for the host's CRM) and,
with ``NOTIFY``, the staff get an e-mail through Django's mail. While the
tool is configured and the model can call tools, it is also what Sophie
offers when she cannot answer (:func:`offer_lead_capture`).
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from sophie_chat import conf, offers
from sophie_chat.tools.base import (
    Tool,
    ToolArgumentsInvalid,
    ToolContext,
    ToolDefinition,
    display_value,
)

logger = logging.getLogger(__name__)

#: Every field a site may ask for, in the order a summary lists them.
LEAD_FIELDS = ("service", "neighbourhood", "preferred_date", "name", "phone", "email", "details")
#: A lead needs one of these: a way to reach the visitor.
CONTACT_FIELDS = ("phone", "email")
TEXT_LIMITS = {"service": 200, "neighbourhood": 200, "name": 200, "details": 1000}
#: Digits in a phone number: E.164 allows at most 15, and no real number has fewer than 8.
PHONE_DIGITS = (8, 15)
PHONE_PATTERN = re.compile(r"^\+?[0-9 ().\-]+$")
TOOL_PATH = "sophie_chat.tools.leads.capture_lead"


def field_labels() -> dict[str, str]:
    """Each field's name in the active language, for summaries and e-mails."""
    return {
        "service": _("Service"),
        "neighbourhood": _("Neighbourhood"),
        "preferred_date": _("Preferred date"),
        "name": _("Name"),
        "phone": _("Phone"),
        "email": _("E-mail"),
        "details": _("Details"),
    }


def configured_fields() -> list[str]:
    """``LEADS["FIELDS"]`` that exist, in their configured order."""
    return [name for name in conf.get("LEADS")["FIELDS"] if name in LEAD_FIELDS]


def required_fields() -> list[str]:
    fields = configured_fields()
    return [name for name in conf.get("LEADS")["REQUIRED"] if name in fields]


def _clean_text(name: str, value: str) -> str:
    value = " ".join(value.split()) if name != "details" else value.strip()
    if len(value) > TEXT_LIMITS[name]:
        raise ToolArgumentsInvalid(f"{name}: at most {TEXT_LIMITS[name]} characters")
    return value


def _clean_phone(value: str) -> str:
    value = " ".join(value.split())
    digits = sum(char.isdigit() for char in value)
    if not PHONE_PATTERN.match(value) or not PHONE_DIGITS[0] <= digits <= PHONE_DIGITS[1]:
        raise ToolArgumentsInvalid(
            "phone: not a phone number; ask for one with its area code (8 to 15 digits)"
        )
    return value


def _clean_email(value: str) -> str:
    value = value.strip()
    try:
        validate_email(value)
    except ValidationError:
        raise ToolArgumentsInvalid("email: not a valid e-mail address") from None
    return value


def _clean_date(value: datetime.date) -> datetime.date:
    if value < timezone.localdate():
        raise ToolArgumentsInvalid("preferred_date: in the past; ask for a date from today on")
    return value


class LeadTool(Tool):
    """A :class:`Tool` whose schema and checks follow ``LEADS`` at each call."""

    def definition(self) -> ToolDefinition:
        base = super().definition()
        fields = configured_fields()
        properties = base.parameters.get("properties", {})
        parameters = {
            **base.parameters,
            "properties": {name: properties[name] for name in fields if name in properties},
            "required": required_fields(),
        }
        return ToolDefinition(base.name, base.description, parameters)

    def validate(self, arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
        """The configured fields, cleaned; what is missing or malformed goes back to the model."""
        values = super().validate(arguments)
        fields = configured_fields()
        cleaned: dict[str, Any] = {}
        for name in fields:
            value = values.get(name)
            if isinstance(value, str):
                value = value.strip()
                if not value:
                    continue
                if name == "phone":
                    value = _clean_phone(value)
                elif name == "email":
                    value = _clean_email(value)
                else:
                    value = _clean_text(name, value)
            elif isinstance(value, datetime.date):
                value = _clean_date(value)
            if value is not None:
                cleaned[name] = value
        missing = [name for name in required_fields() if name not in cleaned]
        contacts = [name for name in CONTACT_FIELDS if name in fields]
        if contacts and not any(name in cleaned for name in contacts):
            missing.append(" or ".join(contacts))
        if missing:
            raise ToolArgumentsInvalid(
                f"missing: {', '.join(missing)}; ask the visitor, then call again"
            )
        return cleaned

    def summary_text(self, arguments: Mapping[str, Any]) -> str:
        """The request, field by field, as the visitor will confirm it."""
        labels = field_labels()
        lines = [str(self.summary)]
        for name in LEAD_FIELDS:
            value = arguments.get(name)
            if value in (None, ""):
                continue
            lines.append(f"{labels[name]}: {display_value(value)}")
        return "\n".join(lines)


def _capture_lead(
    service: str | None = None,
    neighbourhood: str | None = None,
    preferred_date: datetime.date | None = None,
    name: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    details: str | None = None,
    *,
    context: ToolContext,
) -> dict[str, Any]:
    """Pass the visitor's request and contact details to the staff, who will get in touch.

    Use it when the visitor wants a quote or a service you cannot book
    yourself, or when you cannot answer and they agree to be contacted.
    Collect the details in the conversation first; the visitor confirms them.

    Args:
        service: The service wanted, in the visitor's words (e.g. "paint two rooms").
        neighbourhood: Where the work is (neighbourhood or city).
        preferred_date: The date the visitor would like (YYYY-MM-DD), today or later.
        name: The visitor's name.
        phone: A phone number with area code.
        email: An e-mail address.
        details: Anything else the staff should know.
    """
    from sophie_chat.models import Lead
    from sophie_chat.signals import lead_captured

    lead = Lead.objects.create(
        session_id=context.session_id or None,
        user=context.user if context.is_authenticated else None,
        service=service or "",
        neighbourhood=neighbourhood or "",
        preferred_date=preferred_date,
        name=name or "",
        phone=phone or "",
        email=email or "",
        details=details or "",
        locale=context.locale[:16],
    )
    # Field names only: the values are personal data and stay out of logs.
    logger.info(
        "Lead captured",
        extra={"lead": lead.pk, "session_id": context.session_id, "fields": _given(lead)},
    )
    lead_captured.send(sender=Lead, lead=lead, context=context)
    notify_staff(lead)
    return {"saved": True, "reference": lead.pk}


def _given(lead: Any) -> list[str]:
    return [name for name in LEAD_FIELDS if getattr(lead, name) not in (None, "")]


def notify_staff(lead: Any) -> None:
    """E-mail ``LEADS["NOTIFY"]`` about ``lead`` (in the site's language); never raises."""
    recipients = list(conf.get("LEADS")["NOTIFY"])
    if not recipients:
        return
    from django.conf import settings

    with translation.override(settings.LANGUAGE_CODE):
        labels = field_labels()
        lines = [
            f"{labels[name]}: {getattr(lead, name)}"
            for name in LEAD_FIELDS
            if getattr(lead, name) not in (None, "")
        ]
        subject = _("New lead from the chat: %(service)s") % {"service": lead.service or "-"}
        body = "\n".join(lines)
    try:
        send_mail(subject, body, None, recipients)
    except Exception:
        # The lead is stored: a mail server down must not cost the visitor the answer.
        logger.exception("Lead notification e-mail failed", extra={"lead": lead.pk})


capture_lead = LeadTool(
    _capture_lead,
    name="capture_lead",
    confirm=True,
    summary=gettext_lazy("Send these details to our team so they can contact you:"),
    label=gettext_lazy("Passing your details to our team…"),
    redact=("name", "phone", "email", "details"),
)


def lead_capture_available() -> bool:
    """Whether ``capture_lead`` is in ``TOOLS`` and the model can call tools."""
    if TOOL_PATH not in conf.get("TOOLS"):
        return False
    from sophie_chat import backends

    try:
        return bool(backends.handler.backend_class("LLM").supports_tools)
    except Exception:
        return False


async def offer_lead_capture(context: offers.OfferContext) -> offers.Offer | None:
    """The offer made when Sophie cannot answer: leaving contact details for the team."""
    if not lead_capture_available():
        return None
    with translation.override(context.locale or None):
        return offers.Offer(
            "lead",
            _(
                "If you like, I can pass your request and contact details to our team, "
                "and they will get back to you."
            ),
        )
