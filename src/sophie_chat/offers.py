"""What Sophie offers a visitor when it does not know the answer.

"I don't know" is a dead end unless it says where else to turn. Features
that give visitors another way to an answer (talking to a person, leaving a
message for the staff) each register an **offer provider**: a coroutine
function that gets an :class:`OfferContext` and returns an :class:`Offer`
when the feature can be offered right now (it is on, someone is there), or
None. When the knowledge base has no answer to a question, the turn asks
:func:`available` for the offers of the moment; the offline backend adds
them to its "I don't know", a failed model's fallback answer adds them to
the fallback message, and a model is told it may make them.

A feature registers its provider once, when its app is ready::

    from sophie_chat import offers

    @offers.provider
    async def talk_to_a_person(context: offers.OfferContext) -> offers.Offer | None:
        if not await someone_is_available():
            return None
        with translation.override(context.locale):
            return offers.Offer("handoff", _('Type "talk to a person" to reach our team.'))

Nothing is offered while no provider is registered. A provider that raises
is logged and skipped: it never costs the visitor the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OfferContext:
    """Whom an offer would be made to."""

    locale: str
    session_id: str
    user_id: int | None = None


@dataclass(frozen=True, slots=True)
class Offer:
    """Another way to an answer: ``kind`` names the feature, ``text`` says it to the visitor.

    ``text`` is one or two sentences in the visitor's language (the
    context's ``locale``), shown after "I don't know" as it is.
    """

    kind: str
    text: str


OfferProvider = Callable[[OfferContext], Awaitable[Offer | None]]

_providers: list[OfferProvider] = []


def provider(func: OfferProvider) -> OfferProvider:
    """Register an offer provider (usable as a decorator); registering twice is a no-op."""
    if func not in _providers:
        _providers.append(func)
    return func


def unregister(func: OfferProvider) -> None:
    """Forget an offer provider (tests, or a feature turned off at run time)."""
    if func in _providers:
        _providers.remove(func)


def providers() -> tuple[OfferProvider, ...]:
    """The registered providers, in the order they were registered."""
    return tuple(_providers)


async def available(context: OfferContext) -> tuple[Offer, ...]:
    """The offers that can be made now, in the order their providers were registered."""
    found: list[Offer] = []
    for func in tuple(_providers):
        try:
            offer = await func(context)
        except Exception:
            logger.exception(
                "Offer provider failed; nothing offered from it",
                extra={"provider": getattr(func, "__qualname__", repr(func))},
            )
            continue
        if offer is not None and offer.text.strip():
            found.append(offer)
    return tuple(found)


def as_text(offers: Sequence[Offer]) -> str:
    """The offers as they follow "I don't know": their texts, one paragraph each."""
    return "\n\n".join(offer.text.strip() for offer in offers)
