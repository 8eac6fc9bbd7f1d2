"""Knowledge kept in files: :class:`FileKnowledgeSource`.

A folder (searched recursively) of:

* **Markdown** (``.md``, ``.markdown``): one entry per file. YAML front
  matter between ``---`` lines holds the fields; the body is the answer. The
  question is the front matter's ``question``, or else the first ``# ``
  heading (which is then not part of the answer)::

      ---
      locale: pt-br
      category: pagamentos
      keywords: [pix, boleto, cartão]
      url: /ajuda/pagamentos/
      ---
      # Quais formas de pagamento vocês aceitam?

      Cartão de crédito em até 6x, Pix e boleto.

* **YAML** (``.yaml``, ``.yml``) and **JSON** (``.json``): one entry (a
  mapping) or a list of entries, with the fields of
  ``populate_knowledge_base`` (``question``, ``answer``, ``category``,
  ``keywords``, ``locale``, ``url``, ``priority``, ``active``).

Files are ranked exactly like the database knowledge base (BM25F, typos,
accents, the visitor's language first). Edits are picked up on the next
search: the version is a digest of every file's name, size and modification
time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from asgiref.sync import sync_to_async

from sophie_chat.knowledge import entries
from sophie_chat.knowledge.ranking import (
    CONFIDENT_COVERAGE,
    CONFIDENT_SCORE,
    Document,
    IndexedKnowledgeSource,
)

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

logger = logging.getLogger(__name__)

MARKDOWN = (".md", ".markdown")
YAML = (".yaml", ".yml")
JSON = (".json",)
SUFFIXES = MARKDOWN + YAML + JSON
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
# libyaml's loader when PyYAML was built with it: several times faster.
_YAMLLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_HEADING = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


class KnowledgeFileError(ValueError):
    """A knowledge file that cannot be read as entries; the message names the file."""


class FileKnowledgeSource(IndexedKnowledgeSource):
    """Search over a folder of Markdown, YAML and JSON knowledge files.

    Options:
        path: the folder (required). Relative paths are relative to the
            current directory; prefer ``BASE_DIR / "knowledge"``.
        locale: the locale of entries that do not give one (default ``"en"``).
        reload: check the files for changes on every search (default
            True); False reads them once per process.
        min_score, locale_boost, fuzzy, confident_score, confident_coverage: as for
            :class:`~sophie_chat.knowledge.database.DatabaseKnowledgeSource`.

    A file that cannot be read, or an entry without a question or an answer,
    is logged and skipped; ``manage.py check`` reports it
    (``sophie_chat.W013``), and a missing folder is ``sophie_chat.E015``.
    """

    def __init__(
        self,
        *,
        path: str | os.PathLike[str],
        locale: str = "en",
        reload: bool = True,
        min_score: float = 2.0,
        locale_boost: float = 0.5,
        fuzzy: bool = True,
        confident_score: float = CONFIDENT_SCORE,
        confident_coverage: float = CONFIDENT_COVERAGE,
    ) -> None:
        super().__init__(
            min_score=min_score,
            locale_boost=locale_boost,
            fuzzy=fuzzy,
            confident_score=confident_score,
            confident_coverage=confident_coverage,
        )
        if not isinstance(path, str | os.PathLike) or not str(path):
            raise ValueError(f"path must be a folder, not {path!r}.")
        if not isinstance(locale, str) or not locale.strip():
            raise ValueError(f"locale must be a language code such as 'en', not {locale!r}.")
        self.path = Path(path)
        self.locale = locale.strip().lower().replace("_", "-")
        self.reload = bool(reload)
        self._fixed_version: str | None = None

    def files(self) -> list[Path]:
        """The knowledge files under :attr:`path`, in a stable order."""
        if not self.path.is_dir():
            return []
        found = [
            Path(root) / name
            for root, dirs, names in os.walk(self.path)
            for name in names
            if name.lower().endswith(SUFFIXES) and not name.startswith(".")
        ]
        return sorted(found)

    def _scan(self) -> str:
        digest = hashlib.sha256()
        count = 0
        for file in self.files():
            try:
                stat = file.stat()
            except OSError:
                continue
            count += 1
            digest.update(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return f"{count}-{digest.hexdigest()[:16]}"

    async def version(self) -> str:
        """A digest of the files' names, sizes and modification times."""
        if not self.reload and self._fixed_version is not None:
            return self._fixed_version
        version = await sync_to_async(self._scan, thread_sensitive=False)()
        if not self.reload:
            self._fixed_version = version
        return version

    def load_documents(self) -> Iterable[Document]:
        documents, problems = self.read()
        for problem in problems:
            logger.warning("Knowledge file skipped: %s", problem, extra={"path": str(self.path)})
        return documents

    def read(self) -> tuple[list[Document], list[str]]:
        """Every entry of every file, and a message per problem found."""
        documents: list[Document] = []
        problems: list[str] = []
        seen: dict[tuple[str, str], str] = {}
        for file in self.files():
            relative = file.relative_to(self.path).as_posix()
            try:
                records = list(_records(file))
            except KnowledgeFileError as exc:
                problems.append(f"{relative}: {exc}")
                continue
            for number, record in records:
                where = relative if number is None else f"{relative}: entry {number}"
                try:
                    document = self._document(record, relative, number)
                except KnowledgeFileError as exc:
                    problems.append(f"{where}: {exc}")
                    continue
                if document is None:
                    continue
                key = (document.question, document.locale)
                if key in seen:
                    problems.append(f"{where}: same question and locale as {seen[key]}")
                    continue
                seen[key] = where
                documents.append(document)
        return documents, problems

    def _document(self, record: Any, relative: str, number: int | None) -> Document | None:
        # The same rules as populate_knowledge_base, so a file loads the same either way.
        try:
            row = entries.validate(
                record, where=relative, default_locale=self.locale, from_csv=False
            )
        except entries.InvalidEntry as exc:
            raise KnowledgeFileError(str(exc)) from exc
        values = row.values
        if not values.get("active", True):
            return None
        return Document(
            id=relative if number is None else f"{relative}#{number}",
            question=row.question,
            answer=values["answer"],
            keywords=tuple(values.get("keywords", ())),
            category=values.get("category", ""),
            url=values.get("url", ""),
            locale=row.locale,
            priority=values.get("priority", 0),
        )

    def check(self, setting: str = "KNOWLEDGE") -> Sequence[CheckMessage]:
        from django.core import checks

        if not self.path.is_dir():
            return [
                checks.Error(
                    f"The knowledge folder {str(self.path)!r} does not exist.",
                    hint=f'Create it, or fix SOPHIE_CHAT["{setting}"]["OPTIONS"]["path"].',
                    id="sophie_chat.E015",
                )
            ]
        _documents, problems = self.read()
        return [
            checks.Warning(
                f"Knowledge file problem: {problem}",
                hint="Fix the file; until then the entry is left out of search.",
                id="sophie_chat.W013",
            )
            for problem in problems
        ]


def _records(file: Path) -> Iterator[tuple[int | None, Any]]:
    """``(entry number or None for a one-entry file, record)`` pairs of a file."""
    try:
        content = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeFileError(f"cannot be read: {exc}") from exc
    suffix = file.suffix.lower()
    if suffix in MARKDOWN:
        yield None, _markdown_record(content)
        return
    try:
        data = json.loads(content) if suffix in JSON else yaml.load(content, Loader=_YAMLLoader)  # noqa: S506 (a safe loader)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if suffix in JSON else "YAML"
        raise KnowledgeFileError(f"not valid {kind}: {exc}") from exc
    if data is None:
        return
    if isinstance(data, Mapping):
        yield None, data
    elif isinstance(data, list):
        yield from enumerate(data, start=1)
    else:
        raise KnowledgeFileError("expected an entry or a list of entries")


def _markdown_record(content: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    body = content
    match = _FRONT_MATTER.match(content)
    if match:
        try:
            front = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            raise KnowledgeFileError(f"front matter is not valid YAML: {exc}") from exc
        if front is not None and not isinstance(front, Mapping):
            raise KnowledgeFileError("front matter must be a mapping of fields")
        fields.update(front or {})
        body = content[match.end() :]
    if "answer" in fields:
        raise KnowledgeFileError('the answer is the body of the file, not an "answer" field')
    if not fields.get("question"):
        heading = _HEADING.search(body)
        if heading and not body[: heading.start()].strip():
            fields["question"] = heading.group(1).strip()
            body = body[heading.end() :]
    fields["answer"] = body.strip()
    return fields
