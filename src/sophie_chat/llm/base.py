"""The language model contract.

A backend turns an :class:`LLMRequest` (chat messages plus what the turn
knows) into a stream of :class:`LLMChunk` values. To add a provider, write
one module with a subclass of :class:`BaseLLMBackend`:

* ``__init__`` takes its options as **keyword-only** arguments (so a
  misspelled option in ``SOPHIE_CHAT["LLM"]["OPTIONS"]`` fails at startup);
* :meth:`~BaseLLMBackend.stream` is an async generator yielding chunks with
  ``delta`` text, and at most one final chunk with ``usage``;
* failures are raised as :class:`LLMTimeout`, :class:`LLMRateLimited` or
  :class:`LLMUnavailable` (never the provider's own exception types): the
  engine answers from the knowledge base when it catches any
  :class:`LLMError`;
* resources (HTTP streams) are released when the generator is closed early,
  which happens when the visitor disconnects mid-answer: use ``try/finally``
  or ``async with``;
* with ``supports_tools = True``, it sends ``request.tools`` to the model,
  sends the ``tool_calls`` of assistant messages and the ``tool`` messages
  of ``request.messages`` back, and yields the model's calls, assembled,
  as one chunk's ``tool_calls`` (several when the model calls in parallel);
* :meth:`~BaseLLMBackend.check` returns Django check messages for
  misconfiguration it can see without network access.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

    from sophie_chat.knowledge.base import KnowledgeHit
    from sophie_chat.offers import Offer
    from sophie_chat.tools.base import ToolDefinition

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class LLMToolCall:
    """A tool call the model asked for: its ``id``, the tool's ``name`` and the
    ``arguments`` as the JSON text the model wrote (validated by the engine)."""

    id: str
    name: str
    arguments: str = "{}"

    def as_dict(self) -> dict[str, Any]:
        """The chat-completions ``tool_calls`` item."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class PromptMessage:
    """One message of the prompt, in the chat-completions shape.

    An ``assistant`` message may carry the ``tool_calls`` the model made; a
    ``tool`` message is the result of the call ``tool_call_id``.
    """

    role: Role
    content: str
    tool_calls: tuple[LLMToolCall, ...] = ()
    tool_call_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [call.as_dict() for call in self.tool_calls]
        if self.tool_call_id is not None:
            message["tool_call_id"] = self.tool_call_id
        return message


@dataclass(frozen=True, slots=True)
class LLMRequest:
    """What the engine asks a backend for one answer.

    ``messages`` is the full prompt (system prompt first). ``knowledge`` and
    ``locale`` are given too so that backends without a model (the offline
    one) can answer from the knowledge base, and ``offers``, when no entry
    answers the question, what the visitor can be offered instead
    (:mod:`sophie_chat.offers`).

    ``tools`` are the tools the model may call in this round (only ever given
    to a backend with ``supports_tools``); after a round of calls,
    ``messages`` ends with the assistant's ``tool_calls`` and one ``tool``
    message per result.
    """

    messages: tuple[PromptMessage, ...]
    locale: str = "en"
    knowledge: tuple[KnowledgeHit, ...] = ()
    max_tokens: int | None = None
    offers: tuple[Offer, ...] = ()
    tools: tuple[ToolDefinition, ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class LLMChunk:
    """A piece of the stream: a text ``delta``, or the final ``usage`` report.

    ``sources``, on the final chunk, are the knowledge entries the answer
    used, when the backend knows them (the offline backend answers with one
    entry, or none); ``None`` means it does not say, and the engine chooses
    the sources from the search itself. A backend that names its sources and
    names none has declined: it said it does not know.

    ``tool_calls``: the calls the model made this round, each complete (the
    backend assembles streamed pieces), all in one chunk after the text;
    ``finish_reason`` is then ``"tool_calls"``.
    """

    delta: str = ""
    usage: Usage | None = None
    model: str | None = None
    finish_reason: str | None = None
    sources: tuple[KnowledgeHit, ...] | None = None
    tool_calls: tuple[LLMToolCall, ...] = ()


class LLMError(Exception):
    """Base class of the errors a backend may raise from :meth:`stream`.

    Raise it from the provider's exception (``raise LLMUnavailable("...") from
    exc``): the engine's log line names that :attr:`cause`.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__name__)

    @property
    def cause(self) -> BaseException | None:
        """The exception this error was raised from, if any."""
        return self.__cause__


class LLMTimeout(LLMError):
    """The model did not answer in time."""


class LLMRateLimited(LLMError):
    """The provider refused the request for quota or rate reasons."""

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMUnavailable(LLMError):
    """The provider failed: connection refused, a server error, a broken stream."""


class BaseLLMBackend:
    """Base class of language model backends. See the module docstring."""

    #: Deltas arrive as the model produces them.
    supports_streaming: bool = True
    #: The backend passes ``LLMRequest.tools`` to the model and yields its
    #: ``tool_calls``. Without it the engine offers no tools.
    supports_tools: bool = False
    #: The backend calls a network service (so timeouts and outages apply).
    uses_network: bool = True

    #: The model name reported in an answer's metadata.
    model_name: str = ""

    def stream(self, request: LLMRequest) -> AsyncIterator[LLMChunk]:
        """Yield the answer to ``request`` as chunks. Must be an async generator."""
        raise NotImplementedError

    async def complete(self, request: LLMRequest) -> str:
        """The whole answer as one string (convenience built on :meth:`stream`)."""
        parts = [chunk.delta async for chunk in self.stream(request)]
        return "".join(parts)

    def check(self, setting: str = "LLM") -> Sequence[CheckMessage]:
        """System check messages about this backend's configuration."""
        return []

    async def aclose(self) -> None:
        """Release long-lived resources (HTTP connection pools)."""

    def describe(self) -> dict[str, Any]:
        """Facts safe to show in logs and the health endpoint (never secrets)."""
        return {
            "backend": f"{type(self).__module__}.{type(self).__qualname__}",
            "model": self.model_name,
        }
