"""Signals sophie-chat sends."""

from django.dispatch import Signal

#: Sent while Django collects what deleting a user deletes, when
#: ``ON_USER_DELETE`` is ``"delete"``, with ``collector`` (Django's deletion
#: collector), ``sessions`` (the user's ``ChatSession`` rows) and ``using``
#: (the database alias). Receivers add what those conversations take with
#: them to ``collector``; they run for the admin's delete confirmation page
#: too, where ``collector`` only lists what would be deleted.
user_conversations_collected = Signal()

#: Sent after ``capture_lead`` stored a lead (docs/leads.md), with ``lead``
#: (the :class:`~sophie_chat.models.Lead`) and ``context`` (the
#: :class:`~sophie_chat.tools.ToolContext` of the visitor who confirmed it).
#: Sent from a database thread: receivers may use the ORM synchronously.
#: Hand the lead to a CRM here.
lead_captured = Signal()

#: Sent when a visitor asks for a person (docs/handoff.md, "Notifications"),
#: with ``handoff`` (the :class:`~sophie_chat.models.Handoff`; its ``state``
#: is ``waiting``, or ``unavailable`` out of business hours). Sent from a
#: database thread once the handoff is stored: receivers may use the ORM
#: synchronously, and should hand slow work (a webhook) to a task queue.
handoff_requested = Signal()
