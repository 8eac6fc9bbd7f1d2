"""Screenshots of the open widget on the demo's home page, for the docs and the README.

    python -m tests.browser.screenshots [--out docs/_static/screenshots]

Serves the demo as ``make demo`` does (the offline backend, answering from
the knowledge base), asks one question in English and one in Brazilian
Portuguese, and saves the widget with its answer in the light and the dark
theme: ``widget-en-light.png``, ``widget-en-dark.png``,
``widget-pt-br-light.png``, ``widget-pt-br-dark.png``. Needs Chromium
(``/usr/bin/chromium``, or ``CHROMIUM``) and Playwright, like the browser tests.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.support.browser import launch_chromium
from tests.support.demo import demo_server, make_template_database
from tests.support.processes import ROOT

OUT = ROOT / "docs" / "_static" / "screenshots"
VIEWPORT = {"width": 1280, "height": 860}
QUESTIONS = {
    "en": "Which payment methods do you accept?",
    "pt-br": "Como funciona o reembolso?",
}
BROWSER_LOCALES = {"en": "en-US", "pt-br": "pt-BR"}


def take(browser, url: str, language: str, scheme: str, out: Path, scale: float) -> Path:
    context = browser.new_context(
        viewport=VIEWPORT,
        device_scale_factor=scale,
        locale=BROWSER_LOCALES[language],
        color_scheme=scheme,
        reduced_motion="reduce",
    )
    try:
        page = context.new_page()
        page.goto(url)
        page.locator("sophie-chat .launcher").click()
        page.locator('sophie-chat .panel[data-connection="online"]').wait_for()
        box = page.locator("sophie-chat .input")
        box.fill(QUESTIONS[language])
        box.press("Enter")
        answer = page.locator("sophie-chat .msg--assistant[data-id]:not(.msg--streaming)").first
        answer.locator(".msg__actions").wait_for()
        answer.locator(".feedback--up").click()
        answer.locator('.feedback--up[aria-pressed="true"]').wait_for()
        # No hover or focus ring left over from the clicks.
        page.mouse.move(0, VIEWPORT["height"] - 1)
        page.locator("sophie-chat .input").focus()
        page.locator("sophie-chat .input").blur()
        path = out / f"widget-{language}-{scheme}.png"
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
        server = demo_server("screenshots", template, Path(work))
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                for language in QUESTIONS:
                    for scheme in ("light", "dark"):
                        path = take(browser, server.url, language, scheme, args.out, args.scale)
                        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
