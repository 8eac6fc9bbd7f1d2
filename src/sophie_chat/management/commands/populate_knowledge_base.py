"""``manage.py populate_knowledge_base FILE [FILE...]``: load knowledge base entries.

Reads JSON (a list of objects), YAML (a list of mappings) or CSV (a header
row). Entries are matched on (question, locale), so running it again updates
entries instead of duplicating them, and entries whose content is unchanged
are not written at all (their ``updated_at``, and so the knowledge version
and the response cache, stay as they are). Every row is validated before
anything is written; any bad row aborts the whole run.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from sophie_chat.models import KnowledgeBaseEntry

FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".csv": "csv"}
FIELDS = ("question", "answer", "category", "keywords", "locale", "url", "priority", "active")
# Content fields: a row that leaves one out means it empty. priority and
# active are often managed in the admin, so a row that leaves them out keeps
# the current value (new entries get the model's defaults).
CONTENT_FIELDS = ("answer", "category", "keywords", "url")
MANAGED_FIELDS = ("priority", "active")
TRUE_WORDS = {"1", "true", "yes", "y", "on", "sim", "s", "verdadeiro"}
FALSE_WORDS = {"0", "false", "no", "n", "off", "nao", "não", "falso"}


def _max_length(name: str) -> int:
    return KnowledgeBaseEntry._meta.get_field(name).max_length


@dataclass
class Row:
    """One validated entry of a file."""

    where: str
    question: str
    locale: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.question, self.locale)


class RowError(Exception):
    pass


def normalize_locale(value: str) -> str:
    """Django's language-code form: ``"pt_BR"`` -> ``"pt-br"``."""
    return value.strip().lower().replace("_", "-")


class Command(BaseCommand):
    help = (
        "Load knowledge base entries from JSON, YAML or CSV files. Entries are matched on "
        "(question, locale): running it again updates them instead of adding duplicates."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE", help="Files to load.")
        parser.add_argument(
            "--format",
            choices=sorted(set(FORMATS.values())),
            help="File format; by default chosen by each file's extension.",
        )
        parser.add_argument(
            "--locale",
            default="en",
            help='Locale of rows that do not give one (default "en").',
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be created, updated or left unchanged; write nothing.",
        )
        parser.add_argument(
            "--deactivate-missing",
            action="store_true",
            help="Deactivate entries in the files' locales whose question is not in the files.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = options["verbosity"]
        default_locale = normalize_locale(options["locale"] or "")
        if not default_locale:
            raise CommandError(_("--locale cannot be empty."))

        rows: list[Row] = []
        errors: list[str] = []
        for name in options["files"]:
            file_rows, file_errors = self.read_file(Path(name), options["format"], default_locale)
            rows.extend(file_rows)
            errors.extend(file_errors)
        errors.extend(self.duplicates(rows))
        if errors:
            raise CommandError(
                _("Nothing was written; fix these rows first:")
                + "".join(f"\n  {error}" for error in errors)
            )

        plan = self.plan(rows, deactivate_missing=options["deactivate_missing"])
        if not options["dry_run"]:
            self.write(plan)
        self.report(plan, dry_run=options["dry_run"])

    # Reading and validation.

    def read_file(
        self, path: Path, fmt: str | None, default_locale: str
    ) -> tuple[list[Row], list[str]]:
        fmt = fmt or FORMATS.get(path.suffix.lower())
        if fmt is None:
            return [], [
                _("%(file)s: unknown file type; use --format json, yaml or csv.") % {"file": path}
            ]
        try:
            content = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            return [], [_("%(file)s: cannot be read: %(error)s") % {"file": path, "error": exc}]
        try:
            records = list(self.parse(content, fmt))
        except (ValueError, yaml.YAMLError, csv.Error) as exc:
            return [], [
                _("%(file)s: not valid %(format)s: %(error)s")
                % {"file": path, "format": fmt.upper(), "error": exc}
            ]
        rows: list[Row] = []
        errors: list[str] = []
        for where, record in records:
            try:
                rows.append(
                    self.validate(
                        record,
                        where=f"{path}: {where}",
                        default_locale=default_locale,
                        from_csv=fmt == "csv",
                    )
                )
            except RowError as exc:
                errors.append(f"{path}: {where}: {exc}")
        return rows, errors

    def parse(self, content: str, fmt: str) -> Iterator[tuple[str, Any]]:
        """``(where, record)`` pairs; ``where`` is how an error names the row."""
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

    def validate(self, record: Any, *, where: str, default_locale: str, from_csv: bool) -> Row:
        if not isinstance(record, Mapping):
            raise RowError(_('expected an object with "question" and "answer"'))
        unknown = sorted(str(k) for k in record if k not in FIELDS)
        if unknown:
            raise RowError(
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
        for name in ("question", "answer"):
            value = given.get(name)
            if not isinstance(value, str) or not value.strip():
                if name in given and not isinstance(value, str):
                    raise RowError(_('"%(field)s" must be text') % {"field": name})
                raise RowError(_('"%(field)s" is required') % {"field": name})
            values[name] = value.strip()
        for name in ("category", "url", "locale"):
            value = given.get(name, "")
            if not isinstance(value, str):
                raise RowError(_('"%(field)s" must be text') % {"field": name})
            values[name] = value.strip()
        for name in ("question", "category", "url", "locale"):
            limit = _max_length(name)
            if len(values[name]) > limit:
                raise RowError(
                    _('"%(field)s" is longer than %(limit)d characters')
                    % {"field": name, "limit": limit}
                )
        url = values["url"]
        if url and not url.startswith(("/", "http://", "https://")):
            raise RowError(
                _('"url" must be a path starting with "/" or an http(s) URL, not %(url)r')
                % {"url": url}
            )

        keywords = given.get("keywords", [])
        if from_csv and isinstance(keywords, str):
            separator = ";" if ";" in keywords else ","
            keywords = keywords.split(separator)
        if not isinstance(keywords, list):
            raise RowError(_('"keywords" must be a list'))
        if not all(isinstance(k, str) for k in keywords):
            raise RowError(_('"keywords" must be a list of text'))
        values["keywords"] = [k.strip() for k in keywords if k.strip()]

        if "priority" in given:
            values["priority"] = self.integer(given["priority"])
        if "active" in given:
            values["active"] = self.boolean(given["active"])

        locale = normalize_locale(values.pop("locale")) or default_locale
        question = values.pop("question")
        return Row(where=where, question=question, locale=locale, values=values)

    @staticmethod
    def integer(value: Any) -> int:
        if isinstance(value, bool):
            raise RowError(_('"priority" must be a whole number'))
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise RowError(_('"priority" must be a whole number'))

    @staticmethod
    def boolean(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            word = value.strip().lower()
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
        raise RowError(_('"active" must be true or false'))

    @staticmethod
    def duplicates(rows: list[Row]) -> list[str]:
        first: dict[tuple[str, str], Row] = {}
        errors = []
        for row in rows:
            if row.key in first:
                errors.append(
                    _("%(where)s: same question and locale as %(other)s")
                    % {"where": row.where, "other": first[row.key].where}
                )
            else:
                first[row.key] = row
        return errors

    # Planning and writing.

    def plan(self, rows: list[Row], *, deactivate_missing: bool) -> dict[str, list]:
        locales = {row.locale for row in rows}
        existing = {
            (entry.question, entry.locale): entry
            for entry in KnowledgeBaseEntry.objects.filter(locale__in=locales)
        }
        plan: dict[str, list] = {"create": [], "update": [], "unchanged": [], "deactivate": []}
        for row in rows:
            entry = existing.get(row.key)
            if entry is None:
                plan["create"].append(row)
            elif any(getattr(entry, name) != value for name, value in row.values.items()):
                plan["update"].append(row)
            else:
                plan["unchanged"].append(row)
        if deactivate_missing:
            keys = {row.key for row in rows}
            plan["deactivate"] = [
                entry for key, entry in existing.items() if key not in keys and entry.active
            ]
        return plan

    def write(self, plan: dict[str, list]) -> None:
        with transaction.atomic():
            for row in plan["create"] + plan["update"]:
                defaults = {name: row.values[name] for name in CONTENT_FIELDS}
                defaults.update({n: row.values[n] for n in MANAGED_FIELDS if n in row.values})
                KnowledgeBaseEntry.objects.update_or_create(
                    question=row.question, locale=row.locale, defaults=defaults
                )
            if plan["deactivate"]:
                # update() skips auto_now; set updated_at so the knowledge version changes.
                KnowledgeBaseEntry.objects.filter(
                    pk__in=[entry.pk for entry in plan["deactivate"]]
                ).update(active=False, updated_at=timezone.now())

    def report(self, plan: dict[str, list], *, dry_run: bool) -> None:
        if self.verbosity >= 2:
            for action in ("create", "update", "unchanged"):
                for row in plan[action]:
                    self.stdout.write(f"{action}: [{row.locale}] {row.question}")
            for entry in plan["deactivate"]:
                self.stdout.write(f"deactivate: [{entry.locale}] {entry.question}")
        counts = {
            "created": len(plan["create"]),
            "updated": len(plan["update"]),
            "unchanged": len(plan["unchanged"]),
        }
        deactivated = len(plan["deactivate"])
        if dry_run:
            self.stdout.write(
                _(
                    "Dry run: would create %(created)d, update %(updated)d, "
                    "leave unchanged %(unchanged)d entries."
                )
                % counts
            )
            if deactivated:
                self.stdout.write(
                    ngettext(
                        "Would deactivate %(count)d entry not in the files.",
                        "Would deactivate %(count)d entries not in the files.",
                        deactivated,
                    )
                    % {"count": deactivated}
                )
            self.stdout.write(_("Nothing was written."))
            return
        self.stdout.write(
            self.style.SUCCESS(
                _("Created %(created)d, updated %(updated)d, unchanged %(unchanged)d entries.")
                % counts
            )
        )
        if deactivated:
            self.stdout.write(
                ngettext(
                    "Deactivated %(count)d entry not in the files.",
                    "Deactivated %(count)d entries not in the files.",
                    deactivated,
                )
                % {"count": deactivated}
            )
