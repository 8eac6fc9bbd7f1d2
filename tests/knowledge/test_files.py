"""FileKnowledgeSource: a folder of Markdown, YAML and JSON entries."""

import json
import os
import time

import pytest
from django.core import checks
from django.test import override_settings

from sophie_chat import backends
from sophie_chat.knowledge.files import FileKnowledgeSource

CLEANING_MD = """---
locale: pt-br
category: serviços
keywords: [faxina, diarista, limpeza]
url: /servicos/faxina/
---
# Quanto custa uma faxina?

A faxina padrão começa em R$ 150.
"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "faxina.md").write_text(CLEANING_MD, encoding="utf-8")
    (tmp_path / "payments.yaml").write_text(
        "- question: Which payment methods do you accept?\n"
        "  answer: Credit card, Pix and boleto.\n"
        "  keywords: [pix, card]\n"
        "  url: /help/payments/\n",
        encoding="utf-8",
    )
    nested = tmp_path / "help"
    nested.mkdir()
    (nested / "cancel.json").write_text(
        json.dumps(
            {
                "question": "How do I cancel a booking?",
                "answer": "Open My bookings and tap Cancel.",
                "url": "/help/cancellation/",
            }
        ),
        encoding="utf-8",
    )
    return tmp_path


async def test_markdown_entry_takes_its_question_from_the_heading(folder):
    source = FileKnowledgeSource(path=folder)

    (hit,) = await source.search("qto custa uma faxina", locale="pt-br")

    assert (hit.question, hit.answer, hit.url, hit.locale, hit.category) == (
        "Quanto custa uma faxina?",
        "A faxina padrão começa em R$ 150.",
        "/servicos/faxina/",
        "pt-br",
        "serviços",
    )


async def test_yaml_and_nested_json_entries_are_found(folder):
    source = FileKnowledgeSource(path=folder)

    assert [h.url for h in await source.search("pay with pix")] == ["/help/payments/"]
    assert [h.url for h in await source.search("cancel my booking")] == ["/help/cancellation/"]


async def test_entries_without_a_locale_take_the_locale_option(folder):
    source = FileKnowledgeSource(path=folder, locale="pt_BR")

    (hit,) = await source.search("pix")

    assert hit.locale == "pt-br"


async def test_an_edited_file_is_searched_as_edited(folder):
    source = FileKnowledgeSource(path=folder)
    await source.search("faxina")
    before = await source.version()
    path = folder / "faxina.md"
    path.write_text(CLEANING_MD.replace("faxina", "jardinagem"), encoding="utf-8")
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))

    assert await source.version() != before
    assert [h.question for h in await source.search("jardinagem")] == [
        "Quanto custa uma jardinagem?"
    ]


async def test_reload_false_reads_the_files_once(folder):
    source = FileKnowledgeSource(path=folder, reload=False)
    await source.search("pix")
    (folder / "payments.yaml").unlink()

    assert [h.url for h in await source.search("pix")] == ["/help/payments/"]


async def test_bad_files_are_skipped_and_reported_by_the_check(folder):
    (folder / "broken.yaml").write_text("- question: [unclosed\n", encoding="utf-8")
    (folder / "no-answer.md").write_text("# A question without an answer?\n", encoding="utf-8")
    source = FileKnowledgeSource(path=folder)

    assert [h.url for h in await source.search("pix")] == ["/help/payments/"]
    messages = source.check()
    assert {m.id for m in messages} == {"sophie_chat.W013"}
    assert any("broken.yaml" in m.msg for m in messages)
    assert any("no-answer.md" in m.msg and '"answer" is required' in m.msg for m in messages)


def test_an_entry_is_checked_by_the_same_rules_as_populate_knowledge_base(tmp_path):
    (tmp_path / "faq.yaml").write_text(
        "- question: Do you work in Recife?\n  locale: xx-nope\n  url: recife\n", "utf-8"
    )

    documents, problems = FileKnowledgeSource(path=tmp_path).read()

    assert documents == []
    assert problems == [
        'faq.yaml: entry 1: "answer" is required; "url" must be a path starting with "/" or an '
        "http(s) URL, not 'recife'; \"locale\" is 'xx-nope', which is not a language of this "
        "site (LANGUAGES: en, pt-br)"
    ]


def test_missing_folder_is_a_check_error(tmp_path):
    messages = FileKnowledgeSource(path=tmp_path / "nope").check()

    assert [m.id for m in messages] == ["sophie_chat.E015"]
    assert isinstance(messages[0], checks.Error)


def test_inactive_entries_are_left_out(tmp_path):
    (tmp_path / "old.md").write_text("---\nactive: false\n---\n# Old?\n\nGone.\n", "utf-8")

    documents, problems = FileKnowledgeSource(path=tmp_path).read()

    assert (documents, problems) == ([], [])


def test_the_source_is_configured_like_any_backend(folder):
    knowledge = {
        "BACKEND": "sophie_chat.knowledge.files.FileKnowledgeSource",
        "OPTIONS": {"path": str(folder), "locale": "en", "min_score": 1},
    }
    with override_settings(SOPHIE_CHAT={"KNOWLEDGE": knowledge}):
        source = backends.knowledge()

    assert isinstance(source, FileKnowledgeSource)
    assert source.min_score == 1.0
