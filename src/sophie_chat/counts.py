"""Counts in words, for what commands and the admin tell people.

Each phrase goes through ``ngettext`` on its own count, so a sentence with
several counts ("Deleted 1 conversation (3 messages)") is right in every
language, whatever each number is.
"""

from __future__ import annotations

from django.utils.translation import ngettext


def conversations(count: int) -> str:
    return ngettext("%(count)d conversation", "%(count)d conversations", count) % {
        "count": count
    }


def messages(count: int) -> str:
    return ngettext("%(count)d message", "%(count)d messages", count) % {"count": count}


def cached_answers(count: int) -> str:
    return ngettext("%(count)d cached answer", "%(count)d cached answers", count) % {
        "count": count
    }


def days(count: int) -> str:
    return ngettext("%(count)d day", "%(count)d days", count) % {"count": count}


def error_records(count: int) -> str:
    return ngettext("%(count)d error record", "%(count)d error records", count) % {
        "count": count
    }
