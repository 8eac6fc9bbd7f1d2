"""Fill a copy of the demo with real conversations and screenshot its analytics dashboard.

    python -m tests.browser.dashboard_screenshot --output docs/_static/screenshots/dashboard.png

What it does, all on this machine:

1. copies the demo to a temporary folder (the repository's own database is
   left alone), migrates it and loads its knowledge base;
2. starts the test suite's fake OpenAI-compatible server
   (``tests/support/openai_server.py``) and points the demo's OpenAI backend
   at it;
3. holds conversations through sophie-chat's real WebSocket consumer, engine
   and store, in English and Portuguese, with thumbs up and down, ratings,
   model failures answered by a fallback, bad frames and repeated first
   questions served from the response cache, and dates each day's batch
   back, so the last two weeks have figures;
4. runs the demo under daphne (``manage.py runserver``), logs in to the
   admin as a staff user with Chromium (Playwright, ``/usr/bin/chromium``
   or ``$CHROMIUM``), and screenshots ``chat/analytics/``.

The widget's screenshots come from ``python -m tests.browser.screenshots``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from tests.support.browser import launch_chromium
from tests.support.network import free_port
from tests.support.openai_server import FakeOpenAIServer
from tests.support.processes import ROOT, ServerProcess

DEMO = ROOT / "example_project"
STAFF_USER, STAFF_PASSWORD = "staff", "staff-password-for-the-screenshot"
DAYS = 14

OFF_TOPIC = [
    ("en", "Do you deliver pizza?"),
    ("pt-br", "Vocês consertam carros?"),
    ("en", "Can you walk my dog on Sundays?"),
    ("pt-br", "Vocês fazem mudança para outro estado?"),
]
DOWN_COMMENTS = ["Didn't answer my question", "Resposta genérica", "Wrong city", ""]


def copy_demo(target: Path) -> Path:
    site = target / "example_project"
    shutil.copytree(
        DEMO,
        site,
        ignore=shutil.ignore_patterns("db.sqlite3", "staticfiles", "__pycache__"),
    )
    return site


async def hold_conversations(
    knowledge: list[dict], fake: FakeOpenAIServer, rng: random.Random
) -> None:
    """Real conversations through the consumer, one day's batch at a time, dated back."""
    from channels.db import database_sync_to_async
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from django.contrib.auth.models import AnonymousUser
    from django.utils import timezone

    from sophie_chat import backends
    from sophie_chat.models import (
        ChatErrorEvent,
        ChatMessage,
        ChatSession,
        MessageFeedback,
        UnansweredQuestion,
    )
    from sophie_chat.routing import websocket_urlpatterns

    router = URLRouter(websocket_urlpatterns)
    popular = [k for k in knowledge if "cost" in k["question"] or "custa" in k["question"]]

    async def receive_until(comm, *types):
        while True:
            frame = json.loads(await comm.receive_from(timeout=30))
            if frame["type"] in types:
                return frame

    async def conversation(ip: str) -> None:
        locale = rng.choice(["en", "pt-br", "pt-br"])
        entries = [k for k in knowledge if k["locale"] == locale]
        comm = WebsocketCommunicator(router, f"/ws/chat/?locale={locale}")
        comm.scope["user"] = AnonymousUser()
        comm.scope["client"] = (ip, 40000)
        await comm.connect()
        await receive_until(comm, "welcome")
        await comm.send_to(text_data=json.dumps({"type": "session_init"}))
        await receive_until(comm, "session")
        turns = rng.choice([1, 1, 2, 2, 3])
        for turn in range(turns):
            if rng.random() < 0.07:
                question = rng.choice([q for loc, q in OFF_TOPIC if loc == locale])
                answer = (
                    "Sorry, I don't know about that."
                    if locale == "en"
                    else "Desculpe, não sei responder isso."
                )
            else:
                entry = rng.choice(popular if turn == 0 and rng.random() < 0.35 else entries)
                question, answer = entry["question"], entry["answer"]
            roll = rng.random()
            fake.reset()  # a cache hit leaves its reply unused
            if roll < 0.06:
                for _attempt in range(3):  # the SDK retries twice
                    fake.error(503)
            else:
                fake.reply(
                    answer,
                    ttft=rng.uniform(0.15, 0.55) * (3 if roll > 0.95 else 1),
                    token_delay=0.002,
                )
            await comm.send_to(text_data=json.dumps({"type": "message", "content": question}))
            end = await receive_until(comm, "stream_end", "error")
            if end["type"] == "stream_end" and rng.random() < 0.55:
                down = rng.random() < 0.18
                await comm.send_to(
                    text_data=json.dumps(
                        {
                            "type": "feedback",
                            "message_id": end["message"]["id"],
                            "rating": "down" if down else "up",
                            "comment": rng.choice(DOWN_COMMENTS) if down else "",
                        }
                    )
                )
                await receive_until(comm, "ack")
        if rng.random() < 0.1:
            await comm.send_to(text_data="{not json")
            await receive_until(comm, "error")
        if rng.random() < 0.06:
            # An impatient visitor: past the allowance (13 in a row), messages are refused.
            fake.reset()
            for _ in range(16):
                await comm.send_to(
                    text_data=json.dumps(
                        {"type": "message", "content": rng.choice(entries)["question"]}
                    )
                )
            for _ in range(16):
                await receive_until(comm, "stream_end", "error")
        if rng.random() < 0.35:
            await comm.send_to(
                text_data=json.dumps(
                    {"type": "session_rate", "score": rng.choice([3, 4, 4, 5, 5, 5, 2])}
                )
            )
            await receive_until(comm, "ack")
        await comm.disconnect()

    @database_sync_to_async
    def date_back(since, days: int) -> None:
        shift = timedelta(days=days)
        for model, fields in (
            (ChatSession, ("created_at", "updated_at", "expires_at")),
            (ChatMessage, ("created_at",)),
            (MessageFeedback, ("created_at", "updated_at")),
            (ChatErrorEvent, ("created_at",)),
            (UnansweredQuestion, ("first_asked_at", "last_asked_at")),
        ):
            for row in model.objects.filter(**{f"{fields[0]}__gte": since}):
                for name in fields:
                    setattr(row, name, getattr(row, name) - shift)
                # update(): auto_now fields must keep the dates given here.
                model.objects.filter(pk=row.pk).update(**{n: getattr(row, n) for n in fields})

    ip = 0
    for days_ago in range(DAYS - 1, -1, -1):
        backends.reset()  # a fresh model client and limiter for each day
        since = timezone.now()
        for _ in range(rng.randint(4, 9) + (DAYS - days_ago) // 3):
            ip += 1
            await conversation(f"198.51.100.{ip % 250 + 1}")
        if days_ago:
            await date_back(since, days_ago)
        print(f"day -{days_ago}: done", flush=True)


def screenshot(base_url: str, output: Path, locale: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(
            viewport={"width": 1360, "height": 900},
            locale=locale,
            extra_http_headers={"Accept-Language": locale},
        )
        page.goto(f"{base_url}/admin/login/?next=/chat/analytics/%3Fdays%3D{DAYS}")
        page.fill("#id_username", STAFF_USER)
        page.fill("#id_password", STAFF_PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector(".sa-kpis")
        output.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(output), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--output", type=Path, default=ROOT / "docs/_static/screenshots/dashboard.png"
    )
    parser.add_argument("--locale", default="en")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    output = args.output.resolve()
    # sophie_chat from this checkout, whether or not it is installed.
    sys.path.insert(0, str(ROOT / "src"))

    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeOpenAIServer(
            default_reply="Happy to help! Tell me more about what you need.", record=False
        ) as fake,
    ):
        site = copy_demo(Path(tmp))
        env = {
            **os.environ,
            "OPENAI_API_KEY": "sk-fake-for-the-screenshot",
            "OPENAI_BASE_URL": fake.url,
            "OPENAI_MODEL": "gpt-4o-mini",
            "DJANGO_SETTINGS_MODULE": "demo.settings",
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]
            ),
        }
        os.environ.update(env)
        sys.path.insert(0, str(site))
        os.chdir(site)
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("populate_knowledge_base", "knowledge/home_services.json", verbosity=0)
        get_user_model().objects.create_superuser(STAFF_USER, "staff@example.com", STAFF_PASSWORD)
        knowledge = json.loads((site / "knowledge/home_services.json").read_text("utf-8"))
        asyncio.run(hold_conversations(knowledge, fake, random.Random(args.seed)))

        port = free_port()
        server = ServerProcess(
            "demo (dashboard screenshot)",
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            env={**env, "DJANGO_DEBUG": "1"},
            cwd=site,
            log_path=Path(tmp) / "runserver.log",
        )
        try:
            server.wait_until_healthy(f"http://127.0.0.1:{port}/chat/health/")
            screenshot(f"http://127.0.0.1:{port}", output, args.locale)
        finally:
            server.stop()
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
