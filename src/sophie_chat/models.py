"""Conversations, their messages, the knowledge base, feedback and analytics."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from sophie_chat import conf
from sophie_chat.signals import user_conversations_collected


def default_expiry():
    return timezone.now() + timedelta(hours=conf.get("SESSION_TIMEOUT_HOURS"))


class _EmptyContext(dict):
    """``{}`` that can key the delete collector's table of field updates (a dict cannot)."""

    def __hash__(self) -> int:  # type: ignore[override]
        return 0


def on_user_delete(collector: Any, field: Any, sub_objs: Any, using: str) -> None:
    """``ChatSession.user``'s ``on_delete``: what ``SOPHIE_CHAT["ON_USER_DELETE"]`` says.

    ``"delete"`` (the default) deletes the user's conversations with them,
    and what derives from them (receivers of
    :data:`~sophie_chat.signals.user_conversations_collected`, such as
    :mod:`sophie_chat.data_rights`, add it);
    ``"anonymize"`` keeps the conversations for analytics but removes the
    link to the user, the IP address and the page context.
    """
    if conf.get("ON_USER_DELETE") == "anonymize":
        for name, value in (("user", None), ("client_ip", None), ("context", _EmptyContext())):
            collector.add_field_update(field.model._meta.get_field(name), value, sub_objs)
        # What the user asked tools to do is theirs too; the calls' counts stay.
        # By id: the sessions' own query stops matching once their user is cleared.
        ids = [session.pk for session in sub_objs]
        calls = ToolCall.objects.using(using).filter(session_id__in=ids)
        collector.add_field_update(ToolCall._meta.get_field("arguments"), _EmptyContext(), calls)
        # Why they asked for a person is in their words.
        handoffs = Handoff.objects.using(using).filter(session_id__in=ids)
        collector.add_field_update(Handoff._meta.get_field("reason"), "", handoffs)
        # The agents' notes about them too.
        collector.collect(InternalNote.objects.using(using).filter(handoff__session_id__in=ids))
        return
    user_conversations_collected.send(
        sender=ChatSession, collector=collector, sessions=sub_objs, using=using
    )
    models.CASCADE(collector, field, sub_objs, using)


class ChatSession(models.Model):
    """One conversation between a visitor and the assistant."""

    class UserType(models.TextChoices):
        CLIENT = "client", _("Client")
        PROVIDER = "provider", _("Provider")
        ANONYMOUS = "anonymous", _("Anonymous")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CLOSED = "closed", _("Closed")
        EXPIRED = "expired", _("Expired")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=on_user_delete,
        null=True,
        blank=True,
        related_name="sophie_chat_sessions",
        verbose_name=_("user"),
    )
    user_type = models.CharField(
        _("user type"), max_length=16, choices=UserType.choices, default=UserType.ANONYMOUS
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    context = models.JSONField(_("context"), default=dict, blank=True)
    locale = models.CharField(_("locale"), max_length=16, blank=True)
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("last activity"), auto_now=True)
    expires_at = models.DateTimeField(_("expires"), default=default_expiry, db_index=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    satisfaction_score = models.PositiveSmallIntegerField(
        _("satisfaction score"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
    )
    satisfaction_comment = models.TextField(_("satisfaction comment"), blank=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="sophie_sess_user_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(satisfaction_score__isnull=True)
                | Q(satisfaction_score__gte=1, satisfaction_score__lte=5),
                name="sophie_sess_score_1_5",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_user_type_display()} · {self.created_at:%Y-%m-%d %H:%M} · {self.id}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    def touch(self) -> None:
        """Push the expiry forward from now (on activity)."""
        self.expires_at = default_expiry()


class ChatMessage(models.Model):
    """One message of a conversation."""

    class Role(models.TextChoices):
        USER = "user", _("User")
        ASSISTANT = "assistant", _("Assistant")
        AGENT = "agent", _("Agent")
        SYSTEM = "system", _("System")

    class Status(models.TextChoices):
        COMPLETE = "complete", _("Complete")
        INTERRUPTED = "interrupted", _("Interrupted")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(
        ChatSession,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("conversation"),
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    content = models.TextField(_("content"), blank=True)
    # NULL, not "", for "none given": the unique constraint must ignore it.
    client_message_id = models.CharField(  # noqa: DJ001
        _("client message id"), max_length=64, null=True, blank=True
    )
    reply_to = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="replies",
        verbose_name=_("reply to"),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.COMPLETE
    )
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    first_token_ms = models.PositiveIntegerField(
        _("time to first token (ms)"), null=True, blank=True
    )
    total_ms = models.PositiveIntegerField(_("total time (ms)"), null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), null=True, blank=True)
    # The response cache entry this answer filled, so that deleting the
    # conversation can delete the cached copy too (never sent to clients).
    cache_key = models.CharField(_("response cache key"), max_length=200, blank=True)
    #: The staff member who wrote a message of role ``agent`` (docs/handoff.md).
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("agent"),
    )

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "client_message_id"], name="sophie_msg_client_id_unique"
            )
        ]
        indexes = [models.Index(fields=["session", "created_at"], name="sophie_msg_session_idx")]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.content[:60]}"


class KnowledgeBaseEntry(models.Model):
    """A question and its answer that the assistant may ground answers in."""

    question = models.CharField(_("question"), max_length=500)
    answer = models.TextField(_("answer"))
    category = models.CharField(_("category"), max_length=100, blank=True, db_index=True)
    keywords = models.JSONField(_("keywords"), default=list, blank=True)
    locale = models.CharField(_("locale"), max_length=16, default="en", db_index=True)
    # A CharField, not a URLField: site-relative paths ("/services/cleaning/") are welcome.
    url = models.CharField(
        _("URL"), max_length=500, blank=True, help_text=_("An absolute URL or a path on this site.")
    )
    active = models.BooleanField(_("active"), default=True, db_index=True)
    priority = models.IntegerField(
        _("priority"), default=0, help_text=_("Higher priority entries win ties in search.")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("knowledge base entry")
        verbose_name_plural = _("knowledge base entries")
        ordering = ["-priority", "question"]
        constraints = [
            models.UniqueConstraint(fields=["question", "locale"], name="sophie_kb_question_locale")
        ]

    def __str__(self) -> str:
        return self.question


class MessageFeedback(models.Model):
    """A visitor's thumbs up or down on one assistant answer."""

    class Rating(models.TextChoices):
        UP = "up", _("Helpful")
        DOWN = "down", _("Not helpful")

    message = models.OneToOneField(
        ChatMessage, on_delete=models.CASCADE, related_name="feedback", verbose_name=_("message")
    )
    rating = models.CharField(_("rating"), max_length=8, choices=Rating.choices)
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("message feedback")
        verbose_name_plural = _("message feedback")

    def __str__(self) -> str:
        return f"{self.get_rating_display()} · {self.message_id}"


class ChatAnalytics(models.Model):
    """Counters and timings of one conversation, kept up to date after each turn."""

    session = models.OneToOneField(
        ChatSession,
        on_delete=models.CASCADE,
        related_name="analytics",
        verbose_name=_("conversation"),
    )
    user_messages = models.PositiveIntegerField(_("user messages"), default=0)
    answers = models.PositiveIntegerField(_("answers"), default=0)
    cache_hits = models.PositiveIntegerField(_("cache hits"), default=0)
    fallbacks = models.PositiveIntegerField(_("fallback answers"), default=0)
    interrupted = models.PositiveIntegerField(_("interrupted answers"), default=0)
    errors = models.PositiveIntegerField(_("errors"), default=0)
    rate_limited = models.PositiveIntegerField(_("rate-limit refusals"), default=0)
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), default=0)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), default=0)
    total_first_token_ms = models.PositiveBigIntegerField(
        _("sum of times to first token (ms)"), default=0
    )
    total_response_ms = models.PositiveBigIntegerField(_("sum of response times (ms)"), default=0)
    thumbs_up = models.PositiveIntegerField(_("thumbs up"), default=0)
    thumbs_down = models.PositiveIntegerField(_("thumbs down"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("conversation analytics")
        verbose_name_plural = _("conversation analytics")

    def __str__(self) -> str:
        return f"{self.session_id}"

    @property
    def average_response_ms(self) -> int | None:
        return self.total_response_ms // self.answers if self.answers else None


class UnansweredQuestion(models.Model):
    """A visitor question the knowledge base could not answer, grouped by its normalised form.

    One row per (``key``, ``locale``): asking the same question again (any case, accents or
    punctuation) increments ``count`` and refreshes ``last_asked_at``, ``question`` and ``reason``.
    """

    class Reason(models.TextChoices):
        NO_MATCH = "no_match", _("Nothing relevant in the knowledge base")
        MODEL_UNSURE = "model_unsure", _("The assistant said it did not know")

    key = models.CharField(_("normalised question"), max_length=255)
    locale = models.CharField(_("locale"), max_length=16, blank=True)
    question = models.TextField(_("question"), help_text=_("The latest wording asked."))
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    count = models.PositiveIntegerField(_("times asked"), default=1)
    first_asked_at = models.DateTimeField(_("first asked"), default=timezone.now)
    last_asked_at = models.DateTimeField(_("last asked"), default=timezone.now, db_index=True)
    last_session = models.ForeignKey(
        ChatSession,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("last conversation"),
    )
    resolved = models.BooleanField(
        _("resolved"),
        default=False,
        db_index=True,
        help_text=_("Tick once the knowledge base covers it; asking again reopens it."),
    )

    class Meta:
        verbose_name = _("unanswered question")
        verbose_name_plural = _("unanswered questions")
        ordering = ["resolved", "-count", "-last_asked_at"]
        constraints = [
            models.UniqueConstraint(fields=["key", "locale"], name="sophie_unanswered_key_locale")
        ]

    def __str__(self) -> str:
        return self.question[:80]


class TokenUsage(models.Model):
    """Model tokens spent in one day by one subject (``user:<pk>`` or ``ip:<address>``).

    Backs the daily token budget (``DAILY_TOKEN_BUDGET_USER`` / ``DAILY_TOKEN_BUDGET_IP``).
    """

    subject = models.CharField(_("subject"), max_length=80)
    day = models.DateField(_("day"))
    tokens = models.PositiveBigIntegerField(_("tokens"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("daily token usage")
        verbose_name_plural = _("daily token usage")
        ordering = ["-day", "-tokens"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "day"], name="sophie_tokens_subject_day")
        ]
        indexes = [models.Index(fields=["day"], name="sophie_tokens_day_idx")]

    def __str__(self) -> str:
        return f"{self.subject} · {self.day} · {self.tokens}"


class ChatErrorEvent(models.Model):
    """An error frame sent to a client: its code and when (never the message)."""

    session = models.ForeignKey(
        ChatSession,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="error_events",
        verbose_name=_("conversation"),
    )
    code = models.CharField(_("error code"), max_length=32)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("error sent")
        verbose_name_plural = _("errors sent")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.code} · {self.created_at:%Y-%m-%d %H:%M}"


class DailyAnalytics(models.Model):
    """One day's figures, frozen before retention deletes the conversations behind them.

    Days without a row are computed from the stored conversations when asked
    for (see :mod:`sophie_chat.analytics`); ``figures`` holds what
    :meth:`sophie_chat.analytics.DayFigures.as_dict` returns.
    """

    day = models.DateField(_("day"), unique=True)
    figures = models.JSONField(_("figures"), default=dict)
    computed_at = models.DateTimeField(_("computed"), default=timezone.now)

    class Meta:
        verbose_name = _("daily analytics")
        verbose_name_plural = _("daily analytics")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d}"


class ToolCall(models.Model):
    """One call of a tool by the model, and its confirmation when the tool asks for one.

    ``arguments`` are stored as the tool's ``redact`` allows. A call waiting
    for the visitor has ``confirmation`` ``pending`` until one conditional
    UPDATE decides it (:mod:`sophie_chat.tools.confirmations`): the first
    valid answer wins, across processes.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for confirmation")
        RUNNING = "running", _("Running")
        OK = "ok", _("Done")
        ERROR = "error", _("Failed")
        REFUSED = "refused", _("Refused")
        CANCELLED = "cancelled", _("Cancelled")
        TIMEOUT = "timeout", _("Timed out")

    class Confirmation(models.TextChoices):
        NONE = "", _("Not needed")
        PENDING = "pending", _("Waiting")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")
        EXPIRED = "expired", _("Expired")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(
        ChatSession,
        on_delete=models.CASCADE,
        related_name="tool_calls",
        verbose_name=_("conversation"),
    )
    #: The answer the call was made for (stored when the answer is).
    answer_id = models.UUIDField(_("answer"), null=True, blank=True)
    call_id = models.CharField(_("call id"), max_length=100, blank=True)
    name = models.CharField(_("tool"), max_length=64, db_index=True)
    arguments = models.JSONField(_("arguments"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    error = models.TextField(_("error"), blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    confirmation = models.CharField(
        _("confirmation"),
        max_length=16,
        choices=Confirmation.choices,
        default=Confirmation.NONE,
        blank=True,
    )
    #: The confirmation's text, kept only while it waits (to show it again on reconnect).
    summary = models.TextField(_("summary"), blank=True)
    expires_at = models.DateTimeField(_("confirmation expires"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("confirmed by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("tool call")
        verbose_name_plural = _("tool calls")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["session", "confirmation"], name="sophie_toolcall_confirm_idx")
        ]

    def __str__(self) -> str:
        return f"{self.name} · {self.get_status_display()} · {self.created_at:%Y-%m-%d %H:%M}"


class Lead(models.Model):
    """Contact details a visitor left for the staff through ``capture_lead`` (docs/leads.md).

    Personal data: it goes with its conversation (data-rights deletion,
    retention) and with its user when the user is deleted.
    """

    session = models.ForeignKey(
        ChatSession,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="leads",
        verbose_name=_("conversation"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="sophie_chat_leads",
        verbose_name=_("user"),
    )
    service = models.CharField(_("service"), max_length=200, blank=True)
    neighbourhood = models.CharField(_("neighbourhood"), max_length=200, blank=True)
    preferred_date = models.DateField(_("preferred date"), null=True, blank=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    details = models.TextField(_("details"), blank=True)
    locale = models.CharField(_("language"), max_length=16, blank=True)
    #: Where the lead came from: ``capture_lead``, or a message left for the staff
    #: when nobody could take the conversation (``handoff``, docs/handoff.md).
    source = models.CharField(
        _("source"),
        max_length=16,
        choices=[("tool", _("Lead capture")), ("handoff", _("Message for the team"))],
        default="tool",
        db_index=True,
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name or self.email or self.phone} · {self.service}".strip(" ·")


class Handoff(models.Model):
    """A visitor's request to talk to a person, and what became of it (docs/handoff.md).

    Each state change is one conditional UPDATE (:mod:`sophie_chat.handoff`):
    two agents claiming at once, or a claim racing the wait timeout, have
    exactly one winner, across processes. A conversation has at most one
    open (``waiting`` or ``active``) handoff.
    """

    class State(models.TextChoices):
        WAITING = "waiting", _("Waiting for a person")
        ACTIVE = "active", _("With a person")
        ENDED = "ended", _("Ended by the agent")
        UNAVAILABLE = "unavailable", _("Out of hours")
        CANCELLED = "cancelled", _("Cancelled by the visitor")
        ABANDONED = "abandoned", _("Nobody answered in time")

    #: States in which the conversation is with (or waiting for) a person.
    OPEN = (State.WAITING, State.ACTIVE)

    session = models.ForeignKey(
        ChatSession,
        on_delete=models.CASCADE,
        related_name="handoffs",
        verbose_name=_("conversation"),
    )
    state = models.CharField(
        _("state"), max_length=16, choices=State.choices, default=State.WAITING, db_index=True
    )
    reason = models.TextField(_("reason"), blank=True)
    requested_at = models.DateTimeField(_("requested"), default=timezone.now, db_index=True)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    first_reply_at = models.DateTimeField(_("first reply"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    #: When the team is back, told to a visitor nobody could take.
    opens_at = models.DateTimeField(_("team back at"), null=True, blank=True)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sophie_chat_handoffs",
        verbose_name=_("agent"),
    )
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("ended by"),
    )
    #: The visitor's rating of the person (the satisfaction prompt after an ended handoff).
    satisfaction_score = models.PositiveSmallIntegerField(
        _("satisfaction with the person"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
    )

    class Meta:
        verbose_name = _("handoff")
        verbose_name_plural = _("handoffs")
        ordering = ["-requested_at"]
        permissions = [("handle_conversation", _("Can take over conversations from Sophie"))]
        constraints = [
            models.UniqueConstraint(
                fields=["session"],
                condition=Q(state__in=["waiting", "active"]),
                name="sophie_handoff_one_open",
            )
        ]
        indexes = [models.Index(fields=["state", "requested_at"], name="sophie_handoff_queue_idx")]

    def __str__(self) -> str:
        when = f"{self.requested_at:%Y-%m-%d %H:%M}"
        return f"{self.get_state_display()} · {when} · {self.session_id}"


class InternalNote(models.Model):
    """A note agents leave on a handed-off conversation, for each other (docs/handoff.md).

    Never sent to the visitor: only the staff inbox reads notes. Deleted with
    the conversation.
    """

    handoff = models.ForeignKey(
        Handoff, on_delete=models.CASCADE, related_name="notes", verbose_name=_("handoff")
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("author"),
    )
    content = models.TextField(_("note"))
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("internal note")
        verbose_name_plural = _("internal notes")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.content[:60]


class CannedReply(models.Model):
    """A ready-made answer agents insert in the inbox, managed in the admin."""

    title = models.CharField(_("title"), max_length=100)
    text = models.TextField(_("text"))
    language = models.CharField(
        _("language"),
        max_length=16,
        blank=True,
        help_text=_("The language it is written in, e.g. pt-br; empty for any."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")
        ordering = ["title", "pk"]

    def __str__(self) -> str:
        return self.title
