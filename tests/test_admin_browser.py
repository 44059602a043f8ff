"""The practice manager's page in a real browser (SPEC §10): Debian's Chromium driven by
Playwright, against the real service, a fake Graph API and real SQLite.

The locators are accessible ones (label, role and name), so the walk also checks that every
field the manager fills has a label. Full-page screenshots go to ``$ADMIN_SCREENSHOTS`` (set
by ``.ci/run``, which keeps them as artefacts) or to the test's own temporary folder.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher

from adapters import REGISTRY
from bot.events import Channel
from tests.helpers.fake_graph import FakeGraph
from tests.helpers.service import IG_ID, Clock, Service, make_settings, running_service

try:
    from playwright.async_api import ConsoleMessage, Page, ViewportSize, async_playwright, expect
except ImportError:  # the test extra is not installed
    if os.environ.get("CI") == "true":
        pytest.fail(
            "Playwright is not installed, and CI=true requires the browser test: "
            "pip install -e '.[test]'",
            pytrace=False,
        )
    pytest.skip("Playwright is not installed: pip install -e '.[test]'", allow_module_level=True)

# Debian's package: Playwright's own browser downloads are not used.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking"]
DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)

PASSWORD = "a long test password"
# Cheap parameters: the test checks the flow, not the hash's cost.
HASH = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
# Christmas Day 2026, a Friday and a bank holiday in England, 10:00 in London (GMT).
CHRISTMAS_MORNING = datetime(2026, 12, 25, 10, 0, tzinfo=ZoneInfo("Europe/London"))
CHRISTMAS_TEXT = (
    "Merry Christmas from {practice_name}! This is an automatic reply: "
    "we're closed for {closed_reason} and open again on {next_opening}.\n"
    "We can't give clinical advice by message, so please don't send health details here.\n"
    "For urgent help, use NHS 111 online or call 111. "
    "In a life-threatening emergency, call 999.\n"
    "Phone: {phone}\n"
)
PATIENT = "7000000000000042"


def _chromium_or_skip() -> None:
    """Skip without Debian's Chromium, except under ``CI=true``, where the test must run."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing, and CI=true requires the browser test (.ci/run)")
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the browser test")


def _screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("ADMIN_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _note_error(message: ConsoleMessage, errors: list[str]) -> None:
    """Keep the browser's errors: a resource refused by the Content-Security-Policy, a 404.

    The favicon is left out: the pages have none, and Chromium asks for one anyway.
    """
    where = message.location.get("url", "")
    if message.type == "error" and not where.endswith("/favicon.ico"):
        errors.append(f"{message.text} ({where})")


async def _go_to(page: Page, section: str, heading: str) -> None:
    """Follow one of the page's section links, as the manager would."""
    await page.get_by_role("navigation", name="Sections").get_by_role("link", name=section).click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(heading)


async def _sign_in(page: Page) -> None:
    await page.goto("/admin/login")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Texts for Test Dental Practice"
    )


async def _add_christmas_closure(page: Page, shots: Path) -> None:
    await _go_to(page, "Closures and schedule", "Closures and schedule")
    await page.get_by_label("closures.txt").fill("2026-12-24..2027-01-02 Christmas\n")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("Saved closures.txt")
    await expect(page.locator(".periods li").filter(has_text="Christmas")).to_contain_text(
        "closed — Christmas"
    )
    await page.screenshot(path=shots / "schedule.png", full_page=True)


async def _write_christmas_text(page: Page, shots: Path) -> None:
    """Open the closure's own text from the texts page, preview it for Instagram on Christmas
    morning, and save it."""
    await _go_to(page, "Texts", "Texts for")
    await page.get_by_role("link", name="closed.christmas.txt").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("closed.christmas.txt")
    await page.get_by_label("Text", exact=True).fill(CHRISTMAS_TEXT)
    await page.get_by_label("App").select_option("instagram")
    await page.get_by_label("At").fill("2026-12-25T10:00")
    await page.get_by_role("button", name="Preview").click()
    preview = page.get_by_role("article").filter(has=page.get_by_role("heading", name="Instagram"))
    await expect(preview).to_contain_text("From closed.christmas.txt")
    message = preview.locator(".message")
    await expect(message).to_contain_text("we're closed for Christmas and open again on")
    await expect(message).to_contain_text("Phone: +44 20 7946 0000")
    await page.screenshot(path=shots / "edit-preview.png", full_page=True)

    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("Saved closed.christmas.txt")
    await page.screenshot(path=shots / "texts.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=shots / "texts-phone.png", full_page=True)
    # Tidy on a phone: nothing wider than the screen, so no sideways scrolling.
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await page.set_viewport_size(DESKTOP)


async def _patient_writes_on_instagram(service: Service, graph: FakeGraph) -> str:
    """A patient's Instagram message now; the text of the reply the service sends."""
    message = REGISTRY.adapters[Channel.INSTAGRAM].simulated_message(
        IG_ID, PATIENT, "mid.christmas", service.clock.now - 5
    )
    assert (await service.post(message)).status == 200
    await service.drain()
    [send] = graph.requests
    text: str = send.json["message"]["text"]
    return text


async def _see_the_chart(page: Page, shots: Path) -> None:
    await _go_to(page, "Contacts", "Contacts, last 30 days")
    await expect(page.locator("svg[role=img]")).to_be_visible()
    await expect(page.get_by_role("row", name="Instagram")).to_contain_text("1")
    await page.screenshot(path=shots / "contacts.png", full_page=True)


async def test_admin_christmas_closure_in_a_browser(tmp_path: Path, graph: FakeGraph) -> None:
    """Sign in, add a Christmas closure with its own closed text, preview it for Instagram
    on Christmas morning, save it, see a patient's Instagram message answered with it, and
    the contact on the chart."""
    _chromium_or_skip()
    shots = _screenshots(tmp_path)
    settings = make_settings(tmp_path, graph.url, admin_password_hash=HASH)
    errors: list[str] = []
    async with (
        running_service(settings, Clock(CHRISTMAS_MORNING.timestamp())) as service,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # A manager's browser in the UK (the date field still shows US order: Debian's
            # chromium has only the en-US interface without chromium-l10n).
            context = await browser.new_context(
                base_url=str(service.client.make_url("/")),
                viewport=DESKTOP,
                locale="en-GB",
                timezone_id="Europe/London",
            )
            page = await context.new_page()
            page.on("console", lambda message: _note_error(message, errors))
            await _sign_in(page)
            await _add_christmas_closure(page, shots)
            await _write_christmas_text(page, shots)
            reply = await _patient_writes_on_instagram(service, graph)
            assert reply.startswith(
                "Merry Christmas from Test Dental Practice! This is an automatic reply: "
                "we're closed for Christmas and open again on"
            )
            await _see_the_chart(page, shots)
        finally:
            await browser.close()
    assert errors == [], "the browser reported errors (a blocked style, a missing file)"
