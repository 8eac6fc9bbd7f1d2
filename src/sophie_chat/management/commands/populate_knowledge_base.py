"""``manage.py populate_knowledge_base FILE [FILE...]``: load knowledge base entries.

Reads JSON (a list of objects), YAML (a list of mappings) or CSV (a header
row). Entries are matched on (question, locale), so running it again updates
entries instead of duplicating them, and entries whose content is unchanged
are not written at all (their ``updated_at``, and so the knowledge version
and the response cache, stay as they are). Every row is validated before
anything is written (by :mod:`sophie_chat.knowledge.entries`, the rules
:class:`~sophie_chat.knowledge.files.FileKnowledgeSource` follows too);
any problem aborts the whole run, and every problem of every row is
reported.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from sophie_chat.knowledge import entries
from sophie_chat.knowledge.entries import CONTENT_FIELDS, FORMATS, MANAGED_FIELDS, Row
from sophie_chat.knowledge.ranking import normalize_locale
from sophie_chat.models import KnowledgeBaseEntry


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
                ngettext(
                    "Nothing was written: %(count)d problem.",
                    "Nothing was written: %(count)d problems.",
                    len(errors),
                )
                % {"count": len(errors)}
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
        """The valid rows of a file, and a message per problem (of the file, or of a row)."""
        fmt = fmt or FORMATS.get(path.suffix.lower())
        if fmt is None:
            return [], [
                _("%(file)s: unknown file type; use --format json, yaml or csv.") % {"file": path}
            ]
        try:
            content = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            return [], [_("%(file)s: no such file.") % {"file": path}]
        except IsADirectoryError:
            return [], [_("%(file)s: is a folder, not a file.") % {"file": path}]
        except PermissionError:
            return [], [_("%(file)s: not allowed to read it.") % {"file": path}]
        except UnicodeDecodeError as exc:
            return [], [
                _("%(file)s: not UTF-8 text (byte %(position)d).")
                % {"file": path, "position": exc.start}
            ]
        except OSError as exc:
            return [], [
                _("%(file)s: cannot be read: %(error)s")
                % {"file": path, "error": exc.strerror or exc}
            ]
        try:
            records = list(entries.parse(content, fmt))
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
                    entries.validate(
                        record,
                        where=f"{path}: {where}",
                        default_locale=default_locale,
                        from_csv=fmt == "csv",
                    )
                )
            except entries.InvalidEntry as exc:
                errors.extend(f"{path}: {where}: {problem}." for problem in exc.problems)
        return rows, errors

    @staticmethod
    def duplicates(rows: list[Row]) -> list[str]:
        first: dict[tuple[str, str], Row] = {}
        errors = []
        for row in rows:
            if row.key in first:
                errors.append(
                    _("%(where)s: same question and locale as %(other)s.")
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
        created, updated, unchanged = (len(plan[a]) for a in ("create", "update", "unchanged"))
        deactivated = len(plan["deactivate"])
        if dry_run:
            self.stdout.write(
                _("Dry run: %(created)s, %(updated)s, %(unchanged)s.")
                % {
                    "created": ngettext(
                        "%(count)d entry would be created",
                        "%(count)d entries would be created",
                        created,
                    )
                    % {"count": created},
                    "updated": ngettext(
                        "%(count)d entry would be updated",
                        "%(count)d entries would be updated",
                        updated,
                    )
                    % {"count": updated},
                    "unchanged": ngettext(
                        "%(count)d entry would stay unchanged",
                        "%(count)d entries would stay unchanged",
                        unchanged,
                    )
                    % {"count": unchanged},
                }
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
                _("%(created)s, %(updated)s, %(unchanged)s.")
                % {
                    "created": ngettext(
                        "%(count)d entry created", "%(count)d entries created", created
                    )
                    % {"count": created},
                    "updated": ngettext(
                        "%(count)d entry updated", "%(count)d entries updated", updated
                    )
                    % {"count": updated},
                    "unchanged": ngettext(
                        "%(count)d entry unchanged", "%(count)d entries unchanged", unchanged
                    )
                    % {"count": unchanged},
                }
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
