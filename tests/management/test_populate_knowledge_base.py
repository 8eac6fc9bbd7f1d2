import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from sophie_chat.models import KnowledgeBaseEntry

pytestmark = pytest.mark.django_db

SAMPLE_FILE = (
    Path(__file__).resolve().parents[2] / "example_project" / "knowledge" / "home_services.json"
)

ENTRIES = [
    {
        "question": "How do I cancel a booking?",
        "answer": "Open My bookings and tap Cancel.",
        "category": "booking",
        "keywords": ["cancel", "cancellation"],
        "url": "/help/cancellation/",
    },
    {
        "question": "Como cancelar um agendamento?",
        "answer": "Abra Meus agendamentos e toque em Cancelar.",
        "category": "booking",
        "keywords": ["cancelar"],
        "locale": "pt-br",
        "priority": 2,
    },
]


def populate(*args, **options):
    out = StringIO()
    call_command("populate_knowledge_base", *map(str, args), stdout=out, **options)
    return out.getvalue()


def write_json(tmp_path, entries, name="kb.json"):
    path = tmp_path / name
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def snapshot():
    return list(
        KnowledgeBaseEntry.objects.order_by("pk").values(
            "question",
            "answer",
            "category",
            "keywords",
            "locale",
            "url",
            "priority",
            "active",
            "updated_at",
        )
    )


def test_json_file_creates_entries(tmp_path):
    out = populate(write_json(tmp_path, ENTRIES))

    assert "2 entries created, 0 entries updated, 0 entries unchanged." in out
    entry = KnowledgeBaseEntry.objects.get(locale="pt-br")
    assert (entry.question, entry.keywords, entry.priority, entry.active) == (
        "Como cancelar um agendamento?",
        ["cancelar"],
        2,
        True,
    )


def test_locale_defaults_to_en(tmp_path):
    populate(write_json(tmp_path, ENTRIES))

    assert KnowledgeBaseEntry.objects.get(question="How do I cancel a booking?").locale == "en"


def test_locale_option_sets_the_default_locale(tmp_path):
    populate(write_json(tmp_path, ENTRIES[:1]), locale="pt_BR")

    assert KnowledgeBaseEntry.objects.get().locale == "pt-br"


def test_yaml_file_creates_entries(tmp_path):
    path = tmp_path / "kb.yaml"
    path.write_text(
        """
- question: Vocês atendem em Curitiba?
  answer: Sim, em toda a região metropolitana.
  locale: pt-br
  keywords: [cidades, cobertura]
  active: false
""",
        encoding="utf-8",
    )

    populate(path)

    entry = KnowledgeBaseEntry.objects.get()
    assert (entry.question, entry.keywords, entry.active) == (
        "Vocês atendem em Curitiba?",
        ["cidades", "cobertura"],
        False,
    )


def test_csv_file_creates_entries_with_split_keywords(tmp_path):
    path = tmp_path / "kb.csv"
    path.write_text(
        "question,answer,keywords,locale,priority\n"
        'Do you accept Pix?,"Yes, and credit card.","pix; payment",en,3\n'
        'Aceitam Pix?,"Sim.","pix,pagamento",pt-br,\n',
        encoding="utf-8",
    )

    populate(path)

    assert {e.question: (e.keywords, e.priority) for e in KnowledgeBaseEntry.objects.all()} == {
        "Do you accept Pix?": (["pix", "payment"], 3),
        "Aceitam Pix?": (["pix", "pagamento"], 0),
    }


def test_format_option_overrides_the_extension(tmp_path):
    path = tmp_path / "knowledge.txt"
    path.write_text(json.dumps(ENTRIES), encoding="utf-8")

    populate(path, format="json")

    assert KnowledgeBaseEntry.objects.count() == 2


def test_unknown_extension_without_format_is_an_error(tmp_path):
    path = tmp_path / "knowledge.txt"
    path.write_text(json.dumps(ENTRIES), encoding="utf-8")

    with pytest.raises(CommandError, match="--format"):
        populate(path)


def test_rerun_updates_instead_of_duplicating(tmp_path):
    populate(write_json(tmp_path, ENTRIES))
    changed = [dict(ENTRIES[0], answer="Go to My bookings, then Cancel."), ENTRIES[1]]

    out = populate(write_json(tmp_path, changed))

    assert "0 entries created, 1 entry updated, 1 entry unchanged." in out
    assert KnowledgeBaseEntry.objects.count() == 2
    assert KnowledgeBaseEntry.objects.get(locale="en").answer == "Go to My bookings, then Cancel."


def test_rerun_of_same_file_writes_nothing(tmp_path):
    path = write_json(tmp_path, ENTRIES)
    populate(path)
    before = snapshot()

    out = populate(path)

    assert "0 entries created, 0 entries updated, 2 entries unchanged." in out
    assert snapshot() == before


def test_rerun_keeps_active_and_priority_set_in_the_admin(tmp_path):
    path = write_json(tmp_path, ENTRIES)
    populate(path)
    KnowledgeBaseEntry.objects.filter(locale="en").update(active=False, priority=9)

    populate(path)

    entry = KnowledgeBaseEntry.objects.get(locale="en")
    assert (entry.active, entry.priority) == (False, 9)


def test_dry_run_writes_nothing(tmp_path):
    out = populate(write_json(tmp_path, ENTRIES), dry_run=True)

    assert (
        "Dry run: 2 entries would be created, 0 entries would be updated, "
        "0 entries would stay unchanged."
    ) in out
    assert "Nothing was written." in out
    assert KnowledgeBaseEntry.objects.count() == 0


def test_dry_run_reports_updates_without_writing(tmp_path):
    populate(write_json(tmp_path, ENTRIES))
    before = snapshot()
    changed = [dict(ENTRIES[0], answer="New answer."), ENTRIES[1]]

    out = populate(write_json(tmp_path, changed), dry_run=True)

    assert "1 entry would be updated, 1 entry would stay unchanged." in out
    assert snapshot() == before


def test_deactivate_missing_deactivates_entries_of_the_same_locale(tmp_path):
    populate(write_json(tmp_path, ENTRIES))
    KnowledgeBaseEntry.objects.create(question="Old question?", answer="Old.", locale="en")
    KnowledgeBaseEntry.objects.create(question="Other locale?", answer="Kept.", locale="es")

    out = populate(write_json(tmp_path, ENTRIES), deactivate_missing=True)

    assert "Deactivated 1 entry not in the files." in out
    assert dict(KnowledgeBaseEntry.objects.values_list("question", "active")) == {
        "How do I cancel a booking?": True,
        "Como cancelar um agendamento?": True,
        "Old question?": False,
        "Other locale?": True,
    }


def test_without_deactivate_missing_other_entries_stay_active(tmp_path):
    KnowledgeBaseEntry.objects.create(question="Old question?", answer="Old.", locale="en")

    populate(write_json(tmp_path, ENTRIES))

    assert KnowledgeBaseEntry.objects.get(question="Old question?").active is True


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ({"question": "Q?"}, 'row 2: "answer" is required'),
        ({"answer": "A."}, 'row 2: "question" is required'),
        ({"question": " ", "answer": "A."}, 'row 2: "question" is required'),
        (
            {"question": "Q?", "answer": "A.", "keywords": "a, b"},
            'row 2: "keywords" must be a list',
        ),
        ({"question": "Q?", "answer": "A.", "priority": "high"}, 'row 2: "priority" must be a'),
        ({"question": "Q?", "answer": "A.", "active": "maybe"}, 'row 2: "active" must be true'),
        ({"question": "Q?", "answer": "A.", "url": "services"}, 'row 2: "url" must be a path'),
        ({"question": "Q?", "anwser": "A."}, "row 2: unknown field(s) 'anwser'"),
        ("just text", "row 2: expected an object"),
        ({"question": "x" * 501, "answer": "A."}, 'row 2: "question" is longer than 500'),
    ],
)
def test_bad_row_is_named_and_nothing_is_written(tmp_path, bad_row, message):
    path = write_json(tmp_path, [ENTRIES[0], bad_row])

    with pytest.raises(CommandError) as excinfo:
        populate(path)

    assert message in str(excinfo.value)
    assert KnowledgeBaseEntry.objects.count() == 0


def test_every_bad_row_is_reported(tmp_path):
    path = write_json(tmp_path, [{"question": "Q?"}, ENTRIES[0], {"answer": "A."}])

    with pytest.raises(CommandError) as excinfo:
        populate(path)

    assert 'row 1: "answer" is required' in str(excinfo.value)
    assert 'row 3: "question" is required' in str(excinfo.value)


def test_bad_csv_row_names_row_and_line(tmp_path):
    path = tmp_path / "kb.csv"
    path.write_text("question,answer\nQ1?,A1.\nQ2?,\n", encoding="utf-8")

    with pytest.raises(CommandError, match=r'row 2 \(line 3\): "answer" is required'):
        populate(path)


def test_duplicate_question_and_locale_is_an_error(tmp_path):
    path = write_json(tmp_path, [ENTRIES[0], dict(ENTRIES[0], answer="Other.")])

    with pytest.raises(CommandError, match=r"row 2: same question and locale as .*row 1"):
        populate(path)


def test_bad_second_file_writes_nothing_from_the_first(tmp_path):
    good = write_json(tmp_path, ENTRIES, name="good.json")
    bad = write_json(tmp_path, [{"question": "Q?"}], name="bad.json")

    with pytest.raises(CommandError, match=r"bad\.json: row 1"):
        populate(good, bad)

    assert KnowledgeBaseEntry.objects.count() == 0


def test_invalid_json_is_reported_with_the_file_name(tmp_path):
    path = tmp_path / "kb.json"
    path.write_text("[{", encoding="utf-8")

    with pytest.raises(CommandError, match=r"kb\.json: not valid JSON"):
        populate(path)


def test_json_object_instead_of_list_is_an_error(tmp_path):
    path = tmp_path / "kb.json"
    path.write_text(json.dumps(ENTRIES[0]), encoding="utf-8")

    with pytest.raises(CommandError, match="expected a list of entries"):
        populate(path)


def test_missing_file_is_reported_as_missing(tmp_path):
    with pytest.raises(CommandError) as excinfo:
        populate(tmp_path / "nope.json")

    assert str(excinfo.value) == (
        f"Nothing was written: 1 problem.\n  {tmp_path / 'nope.json'}: no such file."
    )


def test_folder_given_as_a_file_is_reported_as_a_folder(tmp_path):
    (tmp_path / "kb.json").mkdir()

    with pytest.raises(CommandError, match=r"kb\.json: is a folder, not a file\."):
        populate(tmp_path / "kb.json")


def test_file_that_is_not_utf8_is_reported_as_such(tmp_path):
    path = tmp_path / "kb.csv"
    path.write_bytes("question,answer\nOnde?,Aqui é\n".encode("latin-1"))

    with pytest.raises(CommandError, match=r"kb\.csv: not UTF-8 text \(byte 27\)"):
        populate(path)


def test_every_problem_of_every_row_is_reported(tmp_path):
    path = write_json(
        tmp_path,
        [
            {"answer": "A.", "locale": "xx-nope", "keywords": "a, b", "priority": "high"},
            ENTRIES[0],
            {"question": "Q?", "url": "services", "active": "maybe"},
        ],
    )

    with pytest.raises(CommandError) as excinfo:
        populate(path)

    lines = str(excinfo.value).splitlines()
    assert lines[0] == "Nothing was written: 7 problems."
    assert [line.strip().removeprefix(f"{path}: ") for line in lines[1:]] == [
        'row 1: "question" is required.',
        'row 1: "keywords" must be a list.',
        'row 1: "priority" must be a whole number.',
        "row 1: \"locale\" is 'xx-nope', which is not a language of this site "
        "(LANGUAGES: en, pt-br).",
        'row 3: "answer" is required.',
        'row 3: "url" must be a path starting with "/" or an http(s) URL, not \'services\'.',
        'row 3: "active" must be true or false.',
    ]
    assert KnowledgeBaseEntry.objects.count() == 0


@pytest.mark.parametrize("locale", ["pt-br", "pt_BR", "pt", "en-us", "EN"])
def test_locales_of_the_sites_languages_are_accepted(tmp_path, locale):
    populate(write_json(tmp_path, [dict(ENTRIES[0], locale=locale)]))

    assert KnowledgeBaseEntry.objects.get().locale == locale.lower().replace("_", "-")


def test_a_locale_that_is_not_a_language_code_is_an_error(tmp_path):
    path = write_json(tmp_path, [dict(ENTRIES[0], locale="Português")])

    with pytest.raises(CommandError, match="which is not a language code such as"):
        populate(path)


def test_default_locale_outside_the_sites_languages_is_reported_per_row(tmp_path, settings):
    settings.LANGUAGES = [("pt-br", "Português (Brasil)")]
    path = write_json(tmp_path, ENTRIES)

    with pytest.raises(CommandError) as excinfo:
        populate(path)

    message = str(excinfo.value)
    assert "Nothing was written: 1 problem." in message
    assert (
        "row 1: no \"locale\", and the default 'en' (--locale) is not a language of this site "
        "(LANGUAGES: pt-br)."
    ) in message


def test_sample_knowledge_file_loads():
    out = populate(SAMPLE_FILE)

    assert "24 entries created, 0 entries updated, 0 entries unchanged." in out
    assert KnowledgeBaseEntry.objects.filter(locale="pt-br").count() == 12
    assert not KnowledgeBaseEntry.objects.exclude(url__startswith="/").exists()
