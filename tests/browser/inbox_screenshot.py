"""Screenshots of a handoff from both sides, for docs/inbox.md.

    python -m tests.browser.inbox_screenshot [--out docs/_static/screenshots]

Serves the demo (offline, as ``make demo`` does), logs the support agent Bia
into the inbox and the client Ana into the site, in two browsers; Ana asks
for a person, Bia claims the conversation, they exchange a message each and
Bia leaves an internal note. Saves the agent's inbox (``inbox.png``) and
Ana's widget (``inbox-visitor.png``). Needs Chromium (``/usr/bin/chromium``,
or ``CHROMIUM``) and Playwright, like the browser tests.
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
STAFF_LOCALE, STAFF_SCHEME = "en-US", "light"


def log_in(context, url: str, username: str):  # type: ignore[no-untyped-def]
    page = context.new_page()
    page.goto(f"{url}/login/")
    page.locator(f'button[data-login="{username}"]').click()
    page.wait_for_url(f"{url}/account/")
    return page


def take(browser, url: str, out: Path, scale: float) -> list[Path]:  # type: ignore[no-untyped-def]
    options = {"viewport": VIEWPORT, "device_scale_factor": scale, "reduced_motion": "reduce"}
    staff = browser.new_context(locale=STAFF_LOCALE, color_scheme=STAFF_SCHEME, **options)
    visitor = browser.new_context(locale="pt-BR", color_scheme="light", **options)
    try:
        inbox = log_in(staff, url, "bia")
        inbox.goto(f"{url}/chat/inbox/")
        inbox.locator('.si-status[data-state="online"]').wait_for()

        site = log_in(visitor, url, "ana")
        site.locator("sophie-chat .launcher").click()
        site.locator('sophie-chat .panel[data-connection="online"]').wait_for()
        box = site.locator("sophie-chat .input")
        box.fill("Quero falar com um atendente sobre a minha faxina")
        box.press("Enter")
        site.locator("sophie-chat .msg--assistant[data-id] .msg__actions").first.wait_for()

        inbox.locator('.si-items[data-section="waiting"] .si-open').first.click()
        inbox.locator(".si-claim").click()
        inbox.locator(".si-end").wait_for()
        reply = inbox.locator(".si-reply-text")
        reply.fill("Oi, Ana! Aqui é a Bia, da Casa Pronta. Como posso ajudar com a sua faxina?")
        reply.press("Enter")
        site.locator("sophie-chat .msg--agent").first.wait_for()
        box.fill("Dá para mudar o horário de amanhã para as 14h?")
        box.press("Enter")
        inbox.locator(".si-transcript .si-msg--user").nth(1).wait_for()
        note = inbox.locator(".si-note-text")
        note.fill("Ana quer mudar a faxina para as 14h: confirmar com o prestador antes.")
        inbox.locator(".si-note-form button").click()
        inbox.locator(".si-note").first.wait_for()
        reply.fill("Vou confirmar com o prestador e já te digo.")
        for page in (inbox, site):
            page.mouse.move(0, VIEWPORT["height"] - 1)
        paths = [out / "inbox.png", out / "inbox-visitor.png"]
        inbox.screenshot(path=paths[0])
        site.screenshot(path=paths[1])
        return paths
    finally:
        staff.close()
        visitor.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNG files")
    parser.add_argument("--scale", type=float, default=1.0, help="device pixel ratio")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as work:
        template = make_template_database(Path(work))
        server = demo_server("inbox-screenshots", template, Path(work))
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                for path in take(browser, server.url, args.out, args.scale):
                    print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
