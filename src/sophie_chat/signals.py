"""Signals sophie-chat sends."""

from django.dispatch import Signal

#: Sent while Django collects what deleting a user deletes, when
#: ``ON_USER_DELETE`` is ``"delete"``, with ``collector`` (Django's deletion
#: collector), ``sessions`` (the user's ``ChatSession`` rows) and ``using``
#: (the database alias). Receivers add what those conversations take with
#: them to ``collector``; they run for the admin's delete confirmation page
#: too, where ``collector`` only lists what would be deleted.
user_conversations_collected = Signal()
