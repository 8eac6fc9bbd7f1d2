"""Knowledge entries as files hold them: reading JSON, YAML and CSV, and checking each entry.

One set of rules for every way entries come from a file, so a file loads
the same with ``populate_knowledge_base`` (into the database) as with
:class:`~sophie_chat.knowledge.files.FileKnowledgeSource` (searched in
place). :func:`validate` reports every problem of an entry at once, each
worded for what is wrong, and checks the locale against the site's
``LANGUAGES``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.conf import settings
from django.utils.translation import gettext as _

from sophie_chat.knowledge.ranking import language_of, normalize_locale

FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".csv": "csv"}
FIELDS = ("question", "answer", "category", "keywords", "locale", "url", "priority", "active")
# Content fields: an entry that leaves one out means it empty. priority and
# active are often managed in the admin, so an entry that leaves them out
# keeps the current value (new entries get the model's defaults).
CONTENT_FIELDS = ("answer", "category", "keywords", "url")
MANAGED_FIELDS = ("priority", "active")
TRUE_WORDS = {"1", "true", "yes", "y", "on", "sim", "s", "verdadeiro"}
FALSE_WORDS = {"0", "false", "no", "n", "off", "nao", "não", "falso"}
# Django's own pattern for a language code (django.utils.translation.trans_real).
_LANGUAGE_CODE = re.compile(r"^[a-z]{1,8}(?:-[a-z0-9]{1,8})*(?:@[a-z0-9]{1,20})?$")


@dataclass
class Row:
    """One valid entry of a file."""

    where: str
    question: str
    locale: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.question, self.locale)


class InvalidEntry(ValueError):
    """An entry with problems; ``problems`` says each of them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse(content: str, fmt: str) -> Iterator[tuple[str, Any]]:
    """``(where, record)`` pairs of a JSON, YAML or CSV file's text.

    ``where`` is how a message names the entry (``row 3``, or ``row 3 (line
    4)`` in a CSV file). Raises ``ValueError``, ``yaml.YAMLError`` or
    ``csv.Error`` when the file as a whole cannot be read as entries.
    """
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(content))
        unknown = [c for c in reader.fieldnames or [] if c and c.strip() not in FIELDS]
        if unknown:
            raise ValueError(
                _("unknown column(s) %(columns)s; the columns are %(fields)s")
                % {"columns": ", ".join(map(repr, unknown)), "fields": ", ".join(FIELDS)}
            )
        for number, record in enumerate(reader, start=1):
            if None in record:
                raise ValueError(
                    _("row %(row)d (line %(line)d) has more cells than the header")
                    % {"row": number, "line": reader.line_num}
                )
            cleaned = {k.strip(): v for k, v in record.items() if k}
            if not any((v or "").strip() for v in cleaned.values()):
                continue  # A blank line in a spreadsheet export.
            where = _("row %(row)d (line %(line)d)") % {"row": number, "line": reader.line_num}
            yield where, cleaned
        return
    data = json.loads(content) if fmt == "json" else yaml.safe_load(content)
    if data is None and fmt == "yaml":
        return
    if not isinstance(data, list):
        raise ValueError(_("expected a list of entries at the top level"))
    for number, record in enumerate(data, start=1):
        yield _("row %(row)d") % {"row": number}, record


def site_languages() -> list[str]:
    """The language codes of the site's ``LANGUAGES``, in Django's form."""
    return [normalize_locale(code) for code, _name in settings.LANGUAGES]


def locale_problem(locale: str) -> str | None:
    """Why ``locale`` (normalized) cannot label an entry, or None.

    A locale is accepted when its language is one of the site's, as Django
    matches a visitor's language: ``en-us`` on a site with ``en``, ``pt`` on
    a site with ``pt-br``.
    """
    languages = site_languages()
    if not _LANGUAGE_CODE.match(locale):
        return _('"locale" is %(locale)r, which is not a language code such as "en" or "pt-br"') % {
            "locale": locale
        }
    if language_of(locale) not in {language_of(code) for code in languages}:
        return _(
            '"locale" is %(locale)r, which is not a language of this site '
            "(LANGUAGES: %(languages)s)"
        ) % {"locale": locale, "languages": ", ".join(languages)}
    return None


def validate(record: Any, *, where: str, default_locale: str, from_csv: bool) -> Row:
    """A :class:`Row` from one record, or :class:`InvalidEntry` with all its problems."""
    if not isinstance(record, Mapping):
        raise InvalidEntry([_('expected an object with "question" and "answer"')])
    problems: list[str] = []
    unknown = sorted(str(k) for k in record if k not in FIELDS)
    if unknown:
        problems.append(
            _("unknown field(s) %(names)s; the fields are %(fields)s")
            % {"names": ", ".join(map(repr, unknown)), "fields": ", ".join(FIELDS)}
        )
    # null, and an empty CSV cell, mean "not given".
    given = {
        k: v
        for k, v in record.items()
        if v is not None and not (from_csv and isinstance(v, str) and not v.strip())
    }

    values: dict[str, Any] = {}
    for name in ("question", "answer", "category", "url", "locale"):
        value = given.get(name, "")
        if not isinstance(value, str):
            problems.append(_('"%(field)s" must be text') % {"field": name})
        elif name in ("question", "answer") and not value.strip():
            problems.append(_('"%(field)s" is required') % {"field": name})
        else:
            values[name] = value.strip()
    for name in ("question", "category", "url", "locale"):
        limit = _max_length(name)
        if len(values.get(name, "")) > limit:
            problems.append(
                _('"%(field)s" is longer than %(limit)d characters')
                % {"field": name, "limit": limit}
            )
    url = values.get("url", "")
    if url and not url.startswith(("/", "http://", "https://")):
        problems.append(
            _('"url" must be a path starting with "/" or an http(s) URL, not %(url)r')
            % {"url": url}
        )

    keywords = given.get("keywords", [])
    if from_csv and isinstance(keywords, str):
        separator = ";" if ";" in keywords else ","
        keywords = keywords.split(separator)
    if not isinstance(keywords, list):
        problems.append(_('"keywords" must be a list'))
    elif not all(isinstance(k, str) for k in keywords):
        problems.append(_('"keywords" must be a list of text'))
    else:
        values["keywords"] = [k.strip() for k in keywords if k.strip()]

    if "priority" in given:
        priority = _integer(given["priority"])
        if priority is None:
            problems.append(_('"priority" must be a whole number'))
        else:
            values["priority"] = priority
    if "active" in given:
        active = _boolean(given["active"])
        if active is None:
            problems.append(_('"active" must be true or false'))
        else:
            values["active"] = active

    locale = normalize_locale(values.pop("locale", ""))
    if locale:
        problem = locale_problem(locale)
    else:
        locale = default_locale
        problem = locale_problem(locale)
        if problem:
            problem = _(
                'no "locale", and the default %(locale)r (--locale) is not a language of this '
                "site (LANGUAGES: %(languages)s)"
            ) % {"locale": locale, "languages": ", ".join(site_languages())}
    if problem:
        problems.append(problem)
    if problems:
        raise InvalidEntry(problems)
    return Row(where=where, question=values.pop("question"), locale=locale, values=values)


def _max_length(name: str) -> int:
    # Imported here, like the other knowledge sources do: this module may be
    # imported before Django's app registry is ready.
    from sophie_chat.models import KnowledgeBaseEntry

    return KnowledgeBaseEntry._meta.get_field(name).max_length


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None
