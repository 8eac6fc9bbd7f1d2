"""Errors a client can be told about.

Each ``ChatError`` carries the protocol error code it becomes; the mapping to
frames happens in exactly one place, :func:`sophie_chat.protocol.error_frame`.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class ChatError(Exception):
    """Base class: something the client asked for failed."""

    code = "internal_error"
    default_message = _("Something went wrong on our side. Please try again.")
    close_code: int | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        reply_to: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.message = message
        self.reply_to = reply_to
        self.retry_after = retry_after
        super().__init__(message or str(self.default_message))

    def user_message(self) -> str:
        """The localized, human-readable text sent to the client."""
        return str(self.message or self.default_message)


class InvalidJSON(ChatError):
    code = "invalid_json"
    default_message = _("The message could not be read (it is not a JSON object).")


class InvalidMessage(ChatError):
    code = "invalid_message"
    default_message = _("The message is not valid.")


class EmptyMessage(ChatError):
    code = "empty_message"
    default_message = _("Please type a message.")


class MessageTooLong(ChatError):
    code = "message_too_long"
    default_message = _("Your message is too long.")


class RateLimited(ChatError):
    code = "rate_limited"
    default_message = _("You are sending messages too quickly. Please wait a moment.")


class RefusedAtOnce(RateLimited):
    """A message the connection refuses itself, before the limiter or the database.

    More than ``MAX_QUEUED_MESSAGES`` wait on the connection, or the rate
    limiter's last refusal on it still holds. Sent as ``rate_limited``; never
    recorded (a flood of refusals writes nothing).
    """

    def __init__(self, *, retry_after: int = 1, reply_to: str | None = None) -> None:
        super().__init__(retry_after=max(retry_after, 1), reply_to=reply_to)


class SessionNotFound(ChatError):
    code = "session_not_found"
    default_message = _("This conversation could not be found.")


class SessionClosed(ChatError):
    code = "session_closed"
    default_message = _("This conversation has ended. Start a new one to keep chatting.")


class AIUnavailable(ChatError):
    code = "ai_unavailable"
    default_message = _("The assistant is unavailable right now. Please try again later.")


class InternalError(ChatError):
    code = "internal_error"


class QuotaExceeded(ChatError):
    """The visitor spent today's token budget (``DAILY_TOKEN_BUDGET_USER`` / ``_IP``).

    Raised before anything is stored or sent to the model; ``retry_after``
    is the number of seconds until the budget renews at local midnight.
    """

    code = "quota_exceeded"
    default_message = _(
        "You have reached today's limit of answers. Please come back tomorrow."
    )


class ServiceUnavailable(ChatError):
    """A service the chat depends on (the database, the rate limiter's Redis) is down.

    Nothing was stored or sent to the model; the client may retry after
    ``retry_after`` seconds.
    """

    code = "service_unavailable"
    default_message = _(
        "The chat is having trouble on our side right now. Please try again in a moment."
    )
    #: Seconds a client should wait before retrying, when the raiser does not know better.
    default_retry_after = 5

    def __init__(
        self,
        message: str | None = None,
        *,
        reply_to: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(
            message,
            reply_to=reply_to,
            retry_after=self.default_retry_after if retry_after is None else retry_after,
        )


class DatabaseUnavailable(ServiceUnavailable):
    """The database failed (down, restarting, or refusing the write); nothing was stored."""


class TooManyConnections(ChatError):
    code = "too_many_connections"
    default_message = _("Too many open chat windows. Close one and try again.")
    close_code = 4429


class Forbidden(ChatError):
    code = "forbidden"
    default_message = _("You are not allowed to use this chat.")
    close_code = 4403


class ConfirmationNotFound(ChatError):
    """No open confirmation by that id for this visitor (unknown, decided, or not theirs)."""

    code = "confirmation_not_found"
    default_message = _("This request was already answered or is not yours to answer.")


class ConfirmationExpired(ChatError):
    code = "confirmation_expired"
    default_message = _("This request has expired. Ask again if you still want it.")
