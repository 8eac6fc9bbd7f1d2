"""The offer of a person, made when Sophie cannot answer (:mod:`sophie_chat.offers`)."""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext as _

from sophie_chat import offers
from sophie_chat.business_hours import is_open_now
from sophie_chat.handoff.service import enabled, someone_available


async def offer_a_person(context: offers.OfferContext) -> offers.Offer | None:
    """While handoff is on, the team is in (business hours) and someone is available
    (the registered availability checks), offer a person."""
    if not enabled() or not is_open_now()[0] or not await someone_available():
        return None
    with translation.override(context.locale):
        # The words match sophie_chat.handoff.phrases: typing them asks for a person.
        return offers.Offer("handoff", _('Type "talk to a person" to reach our team.'))
