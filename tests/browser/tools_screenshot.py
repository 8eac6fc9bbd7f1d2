"""Screenshots of a confirmation in the chat, for docs/demo.md and docs/leads.md.

    python -m tests.browser.tools_screenshot [--out docs/_static/screenshots]

Serves the demo with a model (the fake OpenAI server, scripted to call the
demo's ``reschedule_booking`` tool), logs in as the demo client Ana, asks
to move her deep cleaning, and saves the widget while it waits for her
answer: ``tools-confirm-en-light.png`` and ``tools-confirm-pt-br-dark.png``.
Needs Chromium (``/usr/bin/chromium``, or ``CHROMIUM``) and Playwright, like
the browser tests.
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
from pathlib import Path

from tests.support.browser import launch_chromium
from tests.support.demo import demo_server, make_template_database
from tests.support.openai_server import start_fake_openai
from tests.support.processes import ROOT

OUT = ROOT / "docs" / "_static" / "screenshots"
VIEWPORT = {"width": 1280, "height": 860}
SHOTS = (
    # language, browser locale, colour scheme, the question, what the model says first
    ("en", "en-US", "light", "Can you move my deep cleaning to next Friday at 9?", "Sure."),
    ("pt-br", "pt-BR", "dark", "Pode remarcar a faxina para sexta que vem às 9h?", "Claro."),
)


def next_friday_at_nine() -> str:
    today = datetime.date.today()
    friday = today + datetime.timedelta(days=(4 - today.weekday()) % 7 + 7)
    return f"{friday.isoformat()}T09:00"


def take(browser, server, model, shot, out: Path, scale: float) -> Path:
    language, locale, scheme, question, preamble = shot
    (booking_id,) = server.query("SELECT id FROM demo_booking WHERE service = 'Deep cleaning'")[0]
    model.reset()
    model.call_tools(
        ("reschedule_booking", {"booking_id": booking_id, "new_start": next_friday_at_nine()}),
        text=preamble,
    )
    context = browser.new_context(
        viewport=VIEWPORT,
        device_scale_factor=scale,
        locale=locale,
        color_scheme=scheme,
        reduced_motion="reduce",
    )
    try:
        page = context.new_page()
        page.goto(f"{server.url}/login/")
        page.locator('button[data-login="ana"]').click()
        page.wait_for_url(f"{server.url}/account/")
        page.locator("sophie-chat .launcher").click()
        page.locator('sophie-chat .panel[data-connection="online"]').wait_for()
        box = page.locator("sophie-chat .input")
        box.fill(question)
        box.press("Enter")
        page.locator("sophie-chat .confirm__accept").wait_for()
        # No hover left over from the clicks; the card keeps its focus ring off.
        page.mouse.move(0, VIEWPORT["height"] - 1)
        box.focus()
        box.blur()
        path = out / f"tools-confirm-{language}-{scheme}.png"
        page.screenshot(path=path)
        return path
    finally:
        context.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNG files")
    parser.add_argument("--scale", type=float, default=1.25, help="device pixel ratio")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as work:
        template = make_template_database(Path(work))
        model = start_fake_openai(Path(work))
        server = demo_server("tools-screenshots", template, Path(work), model_url=model.url)
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                for shot in SHOTS:
                    path = take(browser, server, model, shot, args.out, args.scale)
                    print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                browser.close()
        finally:
            server.stop()
            model.stop()


if __name__ == "__main__":
    main()
