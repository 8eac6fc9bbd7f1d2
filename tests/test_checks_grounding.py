"""System checks of the knowledge files, prompts and token settings."""

from __future__ import annotations

import pytest

from sophie_chat import tokens
from tests.support.checks import BASE, ids, messages


def files_source(path):
    return {
        **BASE,
        "KNOWLEDGE": {
            "BACKEND": "sophie_chat.knowledge.files.FileKnowledgeSource",
            "OPTIONS": {"path": str(path)},
        },
    }


def test_e015_knowledge_folder_missing(tmp_path):
    assert ids(DEBUG=True, SOPHIE_CHAT=files_source(tmp_path / "nope")) == ["sophie_chat.E015"]


def test_w013_knowledge_file_cannot_be_read(tmp_path):
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")

    found = messages(DEBUG=True, SOPHIE_CHAT=files_source(tmp_path))

    assert [m.id for m in found] == ["sophie_chat.W013"]
    assert "bad.json" in found[0].msg


def test_w016_tiktoken_encoding_not_available_locally(monkeypatch):
    monkeypatch.setattr(tokens, "local_tiktoken_encoding", lambda name: None)

    assert ids(DEBUG=True, SOPHIE_CHAT={**BASE, "TOKEN_COUNTER": "tiktoken"}) == [
        "sophie_chat.W016"
    ]


def test_e007_token_counter_path_cannot_be_imported():
    assert ids(DEBUG=True, SOPHIE_CHAT={**BASE, "TOKEN_COUNTER": "nowhere.count"}) == [
        "sophie_chat.E007"
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_PROMPT_TOKENS", 0),
        ("MAX_ANSWER_TOKENS", "many"),
        ("DAILY_TOKEN_BUDGET_USER", -5),
        ("DAILY_TOKEN_BUDGET_IP", 1.5),
        ("RECORD_UNANSWERED", "yes"),
        ("UNSURE_ANSWER_PATTERNS", ["(unclosed"]),
        ("SYSTEM_PROMPT_TEMPLATE", "sophie_chat/no-such-template.txt"),
    ],
)
def test_e005_invalid_prompt_and_budget_settings(name, value):
    assert ids(DEBUG=True, SOPHIE_CHAT={**BASE, name: value}) == ["sophie_chat.E005"]


def test_budgets_and_caps_accept_none():
    settings = {
        **BASE,
        "MAX_ANSWER_TOKENS": None,
        "DAILY_TOKEN_BUDGET_USER": None,
        "DAILY_TOKEN_BUDGET_IP": None,
    }
    assert ids(DEBUG=True, SOPHIE_CHAT=settings) == []


def test_w040_system_prompt_without_a_recognised_way_of_declining():
    prompts = {"en": "Be {name}. If unsure, say \"I don't know\".", "pt": "Seja {name}."}

    found = messages(DEBUG=True, SOPHIE_CHAT={**BASE, "SYSTEM_PROMPT": prompts})

    assert [m.id for m in found] == ["sophie_chat.W040"]
    assert "('pt')" in found[0].msg
    assert ids(DEBUG=True, SOPHIE_CHAT={**BASE, "SYSTEM_PROMPT": "Be {name}. Não sei."}) == []
    assert ids(DEBUG=True, SOPHIE_CHAT={**BASE, "SYSTEM_PROMPT": "Be brief."}) == [
        "sophie_chat.W040"
    ]
    assert (
        ids(
            DEBUG=True,
            SOPHIE_CHAT={
                **BASE,
                "SYSTEM_PROMPT": "Say 'no idea' when unsure.",
                "UNSURE_ANSWER_PATTERNS": [r"\bno idea\b"],
            },
        )
        == []
    )
