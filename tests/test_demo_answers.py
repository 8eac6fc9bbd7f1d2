"""The demo answers right or says it does not know: the examples of issue 15, asked
over a real WebSocket of the demo as ``make demo`` runs it (the offline backend).

Each question starts its own conversation, except the follow-ups, which are
asked after the question they lean on, as a visitor would.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.demo import DemoServer, demo_server, make_template_database
from tests.support.websocket import open_chat_client

pytestmark = pytest.mark.server

NO_ANSWER = {
    "en": "Sorry, I don't know the answer to that. Could you ask it in another way?",
    "pt-br": "Desculpe, não sei a resposta para isso. Pode perguntar de outro jeito?",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    work = tmp_path_factory.mktemp("demo-answers")
    server = demo_server("answers", make_template_database(work), work)
    yield server
    server.stop()


async def conversation(
    demo: DemoServer, locale: str, *questions: str, recorded: str = ""
) -> list[dict]:
    """The final frame (``stream_end``) of each answer, in order.

    With ``recorded``, the conversation stays open until the demo has
    recorded that question as unanswered (it does so after ``stream_end``).
    """
    client = await open_chat_client(f"ws://127.0.0.1:{demo.port}/ws/chat/", demo.url)
    try:
        assert (await client.receive())["type"] == "welcome"
        session = await client.start(context={"locale": locale})
        assert session["type"] == "session", session
        ends = []
        for question in questions:
            frames = await client.ask(question)
            assert frames[-1]["type"] == "stream_end", frames
            ends.append(frames[-1]["message"])
        if recorded:
            assert await recorded_unanswered(demo, recorded), f"{recorded!r} not recorded"
        return ends
    finally:
        await client.close()


async def recorded_unanswered(demo: DemoServer, question: str) -> bool:
    """Whether the demo recorded ``question`` as unanswered (it does so after stream_end).

    Polled gently: each read holds the SQLite file's shared lock, which the
    server's write has to wait for.
    """
    deadline = time.monotonic() + 15
    while True:
        rows = demo.query("SELECT question FROM sophie_chat_unansweredquestion")
        if question in [row[0] for row in rows]:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)


async def test_a_rare_word_of_an_answer_finds_it(demo):
    (answer,) = await conversation(demo, "en", "Do you work in Curitiba?")

    assert "Curitiba" in answer["content"]
    assert [source["title"] for source in answer["metadata"]["sources"]] == [
        "Which cities do you cover?"
    ]


@pytest.mark.parametrize(
    ("locale", "question"),
    [
        ("en", "Do you clean swimming pools?"),
        ("pt-br", "Vocês fazem limpeza de piscina?"),
    ],
)
async def test_what_the_knowledge_base_does_not_cover_gets_an_honest_i_dont_know(
    demo, locale, question
):
    (answer,) = await conversation(demo, locale, question, recorded=question)

    assert answer["content"].startswith(NO_ANSWER[locale])
    assert answer["metadata"]["sources"] == []
    assert answer["metadata"]["declined"] is True


@pytest.mark.parametrize(
    ("locale", "question", "says"),
    [
        ("en", "I want to talk to a human", "I'm bringing in a person from our team."),
        ("pt-br", "Quero falar com um humano", "Estou chamando uma pessoa da nossa equipe."),
    ],
)
async def test_asking_for_a_person_brings_one_in_instead_of_an_answer(demo, locale, question, says):
    (answer,) = await conversation(demo, locale, question)

    assert answer["content"].startswith(says)
    assert answer["metadata"]["handoff"] == "waiting"


@pytest.mark.parametrize(
    ("locale", "first", "follow_up", "source"),
    [
        (
            "en",
            "do you fix leaking taps?",
            "and how much is it?",
            "Do you offer plumbing services?",
        ),
        (
            "pt-br",
            "vocês consertam vazamento?",
            "e quanto custa?",
            "Vocês fazem serviços de encanador?",
        ),
    ],
)
async def test_a_follow_up_is_answered_from_the_question_it_leans_on(
    demo, locale, first, follow_up, source
):
    _first, answer = await conversation(demo, locale, first, follow_up)

    assert "R$ 90" in answer["content"]
    assert [s["title"] for s in answer["metadata"]["sources"]] == [source]


def test_the_demo_knowledge_is_the_one_evaluated():
    # The questions above are the examples of the demo's evaluation set.
    cases = Path(__file__).resolve().parents[1] / "example_project" / "knowledge"
    text = (cases / "evaluation.yaml").read_text(encoding="utf-8")
    for question in ("Do you work in Curitiba?", "Vocês fazem limpeza de piscina?"):
        assert json.dumps(question, ensure_ascii=False)[1:-1] in text
