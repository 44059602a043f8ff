"""The practice manager's page over HTTP (SPEC §10): who may use it, and what it changes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from argon2 import PasswordHasher
from structlog.testing import capture_logs

from bot.settings import Settings
from tests.helpers.fake_graph import FakeGraph
from tests.helpers.group import OPEN, group_files, served_group
from tests.helpers.process import whatsapp_text
from tests.helpers.service import (
    FIXTURE_TIME,
    Clock,
    Service,
    make_settings,
    running_service,
)

PASSWORD = "a long test password"
# Cheap parameters: the tests check the flow, not the hash's cost.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
HASH = FAST.hash(PASSWORD)
MANAGER_PASSWORD = "the leeds manager's password"
MANAGER_HASH = FAST.hash(MANAGER_PASSWORD)
BROKEN = "Hello from {practice_name}.\nCall {phnoe}.\n"


@pytest.fixture
def admin_settings(tmp_path: Path, graph: FakeGraph) -> Settings:
    """A practice with the page on, open around the clock so replies use reply.txt."""
    return make_settings(
        tmp_path,
        graph.url,
        admin_password_hash=HASH,
        opening_hours="Mon-Sun 00:00-24:00",
        bank_holidays="none",
        urgent_help="call NHS 111",
    )


@pytest.fixture
async def page(admin_settings: Settings) -> AsyncIterator[Service]:
    """The service with the manager's page on."""
    async with running_service(admin_settings) as service:
        yield service


def _field(html: str, name: str) -> str:
    """The value of a hidden form field."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match is not None, f"no {name} field"
    return match[1]


async def _sign_in(service: Service, password: str = PASSWORD) -> ClientResponse:
    return await _sign_in_as(service, "admin", password)


async def _token(service: Service, path: str = "/admin/texts") -> str:
    return _field(await (await service.client.get(path)).text(), "token")


async def _post_text(
    service: Service,
    name: str,
    text: str,
    *,
    action: str = "save",
    token: str | None = None,
    **fields: str,
) -> ClientResponse:
    """The editor's form for ``name`` sent with ``text`` (Save unless ``action`` says)."""
    data = {"token": token or await _token(service), "text": text, "action": action, **fields}
    return await service.client.post(f"/admin/texts/{name}", data=data, allow_redirects=False)


async def test_admin_is_404_without_a_password_hash(settings: Settings) -> None:
    """Without ADMIN_PASSWORD_HASH there is no page at all."""
    async with running_service(settings) as service:
        assert (await service.client.get("/admin")).status == 404
        assert (await service.client.get("/admin/login")).status == 404


@pytest.mark.parametrize(
    "path", ["/admin/texts", "/admin/texts/reply.txt", "/admin/schedule", "/admin/contacts"]
)
async def test_admin_pages_send_a_stranger_to_sign_in(page: Service, path: str) -> None:
    """Every page needs a session: without one, the answer is the sign-in page."""
    response = await page.client.get(path, allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/admin/login")


async def test_admin_csv_needs_a_session(page: Service) -> None:
    """The contact log's download needs a session too."""
    response = await page.client.get("/admin/contacts.csv", allow_redirects=False)
    assert response.status == 303


async def test_admin_sign_in_sets_a_strict_httponly_session(page: Service) -> None:
    """The right password starts a session in an HttpOnly, SameSite=Strict cookie."""
    response = await _sign_in(page)
    cookie = response.headers["Set-Cookie"]
    assert response.status == 303
    assert "pb_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the next test


async def test_admin_session_cookie_is_secure_behind_tls(page: Service) -> None:
    """Behind a TLS proxy (X-Forwarded-Proto: https) the session cookie is Secure."""
    form = await (await page.client.get("/admin/login")).text()
    response = await page.client.post(
        "/admin/login",
        data={"login": _field(form, "login"), "account": "admin", "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )
    assert "Secure" in response.headers["Set-Cookie"]


async def test_admin_wrong_password_is_refused(page: Service) -> None:
    """A wrong password starts no session."""
    response = await _sign_in(page, "not the password")
    assert response.status == 401
    assert (await page.client.get("/admin/texts", allow_redirects=False)).status == 303


async def test_admin_sign_in_without_its_form_token_is_refused(page: Service) -> None:
    """A sign-in posted from elsewhere (no matching form token) is refused."""
    response = await page.client.post(
        "/admin/login",
        data={"login": "forged", "account": "admin", "password": PASSWORD},
        allow_redirects=False,
    )
    assert response.status == 403


async def test_admin_sign_in_is_throttled_after_five_failures(page: Service) -> None:
    """Five wrong passwords from one client, and the sixth try waits, even with the right one."""
    for _ in range(5):
        assert (await _sign_in(page, "wrong password")).status == 401
    response = await _sign_in(page)
    assert response.status == 429
    assert int(response.headers["Retry-After"]) > 0


async def test_admin_pages_forbid_scripts_and_framing(page: Service) -> None:
    """Every page forbids scripts and framing and sends no referrer."""
    await _sign_in(page)
    response = await page.client.get("/admin/texts")
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "<script" not in await response.text()


async def test_admin_form_without_its_token_is_refused(page: Service) -> None:
    """A form posted without the session's token changes nothing."""
    await _sign_in(page)
    response = await page.client.post(
        "/admin/texts/reply.txt", data={"text": "Call {phone}", "action": "save"}
    )
    assert response.status == 403


async def test_admin_broken_text_is_refused_and_the_live_one_stays(
    page: Service, admin_settings: Settings
) -> None:
    """A broken edit is refused with its line and column; the file and the reply stay."""
    await _sign_in(page)
    before = (admin_settings.templates_dir / "reply.txt").read_text()
    response = await _post_text(page, "reply.txt", BROKEN)
    html = await response.text()
    assert response.status == 422
    assert f"{admin_settings.templates_dir / 'reply.txt'}:2:6: unknown placeholder" in html
    assert (admin_settings.templates_dir / "reply.txt").read_text() == before
    assert "{phnoe}" in html  # the draft is kept in the editor


async def test_admin_saved_text_answers_the_next_webhook(
    page: Service, admin_settings: Settings, graph: FakeGraph
) -> None:
    """A good edit is saved to the file and the very next reply uses it, without a restart."""
    await _sign_in(page)
    text = "Hello from {practice_name}: this is an automatic reply.\nPlease call {phone}.\n"
    response = await _post_text(page, "reply.txt", text)
    assert response.status == 303
    assert (admin_settings.templates_dir / "reply.txt").read_text() == text
    await page.post(whatsapp_text("447700900123", "wamid.ADMIN", FIXTURE_TIME))
    await page.drain()
    [request] = graph.requests
    sent = request.json.get("text", {}).get("body") or request.json["interactive"]["body"]["text"]
    assert sent.startswith("Hello from Test Dental Practice: this is an automatic reply.")


async def test_admin_preview_shows_each_channels_reply_without_saving(
    page: Service, admin_settings: Settings
) -> None:
    """Preview shows the reply per channel with its length, and saves nothing."""
    await _sign_in(page)
    before = (admin_settings.templates_dir / "reply.txt").read_text()
    response = await _post_text(
        page,
        "reply.txt",
        "Preview only: call {phone}.",
        action="preview",
        channel="instagram",
        at="2026-12-01T10:00",
    )
    html = await response.text()
    assert response.status == 200
    assert "Preview only: call +44 20 7946 0000." in html
    assert "of 1000 bytes" in html
    assert (admin_settings.templates_dir / "reply.txt").read_text() == before


async def test_admin_welsh_texts_are_listed_and_saved(tmp_path: Path, graph: FakeGraph) -> None:
    """A cy,en practice's page lists the Welsh texts in Welsh's words and saves one."""
    settings = make_settings(tmp_path, graph.url, admin_password_hash=HASH, reply_languages="cy,en")
    async with running_service(settings) as service:
        await _sign_in(service)
        listing = await (await service.client.get("/admin/texts")).text()
        assert "while the practice is closed, on every app, in Welsh" in listing
        assert "reply.cy.instagram.txt" in listing  # offered as a text to add
        text = (
            (settings.templates_dir / "reply.cy.txt")
            .read_text()
            .replace("Diolch", "Diolch yn fawr")
        )
        response = await _post_text(service, "reply.cy.txt", text)
        assert response.status == 303
        assert (settings.templates_dir / "reply.cy.txt").read_text() == text


async def test_admin_text_outside_the_folder_is_not_found(page: Service) -> None:
    """Only the texts and closures.txt can be opened: no other file name, no path."""
    await _sign_in(page)
    assert (await page.client.get("/admin/texts/..%2F.env")).status == 404
    assert (await page.client.get("/admin/texts/notes.md")).status == 404


async def test_admin_contacts_page_draws_the_chart(page: Service) -> None:
    """The contacts page has the chart as inline SVG and the CSV has the export's columns."""
    await page.post(whatsapp_text("447700900123", "wamid.COUNT", FIXTURE_TIME))
    await page.drain()
    await _sign_in(page)
    html = await (await page.client.get("/admin/contacts")).text()
    csv = await (await page.client.get("/admin/contacts.csv")).text()
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html
    assert "1 contacts in the last 30 days" in html or "1 contact in the last 30 days" in html
    assert csv.splitlines()[0] == "time,channel,pseudonym,kind,outcome,template"
    assert len(csv.splitlines()) == 2


async def test_admin_evidence_pack_downloads_with_the_stores_figures(page: Service) -> None:
    """The contacts page offers the evidence pack; it downloads with the log's own count."""
    await page.post(whatsapp_text("447700900123", "wamid.PACK", FIXTURE_TIME))
    await page.drain()
    await _sign_in(page)
    html = await (await page.client.get("/admin/contacts")).text()
    response = await page.client.get("/admin/evidence-pack.html")
    markdown = await (await page.client.get("/admin/evidence-pack.md")).text()
    assert 'href="/admin/evidence-pack.html"' in html
    assert response.status == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert "Record of processing" in await response.text()
    assert "| Records in the contact log | 1 |" in markdown


async def test_admin_evidence_pack_needs_a_session(page: Service) -> None:
    """Without signing in, the pack is not given out."""
    response = await page.client.get("/admin/evidence-pack.md", allow_redirects=False)
    assert response.status in {302, 303}


async def test_admin_sign_out_ends_the_session(page: Service) -> None:
    """After signing out, the pages ask to sign in again."""
    await _sign_in(page)
    await page.client.post("/admin/logout", data={"token": await _token(page)})
    assert (await page.client.get("/admin/texts", allow_redirects=False)).status == 303


@pytest.fixture
async def group_page(tmp_path: Path, group_graph: FakeGraph) -> AsyncIterator[Service]:
    """The example group with the page on: Leeds has a manager's password of its own."""
    main = group_files(tmp_path, group_graph.url)
    with main.open("a") as out:
        out.write(f"ADMIN_PASSWORD_HASH={HASH}\n")
    leeds = tmp_path / "practices" / "leeds-riverside" / "practice.env"
    with leeds.open("a") as out:
        out.write(f"MANAGER_PASSWORD_HASH={MANAGER_HASH}\n")
    served = served_group(main)
    async with running_service(served[0].settings, Clock(OPEN), group=served) as service:
        yield service


async def _sign_in_as(service: Service, account: str, password: str) -> ClientResponse:
    form = await (await service.client.get("/admin/login")).text()
    return await service.client.post(
        "/admin/login",
        data={"login": _field(form, "login"), "account": account, "password": password},
        allow_redirects=False,
    )


async def test_admin_manager_sees_only_their_practice(group_page: Service) -> None:
    """Leeds's manager gets Leeds's texts; Glasgow's are not found for them."""
    assert (await _sign_in_as(group_page, "leeds-riverside", MANAGER_PASSWORD)).status == 303
    own = await group_page.client.get("/admin/texts?practice=leeds-riverside")
    other = await group_page.client.get("/admin/texts?practice=glasgow-west")
    assert own.status == 200
    assert "Example Smiles Leeds Riverside" in await own.text()
    assert other.status == 404


async def test_admin_manager_cannot_change_another_practice(
    group_page: Service, tmp_path: Path
) -> None:
    """A save for another practice by Leeds's manager is refused and writes nothing."""
    await _sign_in_as(group_page, "leeds-riverside", MANAGER_PASSWORD)
    token = await _token(group_page, "/admin/texts?practice=leeds-riverside")
    response = await _post_text(
        group_page, "reply.txt", "Glasgow, call {phone}", token=token, practice="glasgow-west"
    )
    assert response.status == 404
    assert not (tmp_path / "practices" / "glasgow-west" / "templates").exists()


async def test_admin_group_admin_saves_into_the_practices_own_folder(
    group_page: Service, tmp_path: Path
) -> None:
    """The group admin's edit for Glasgow lands in Glasgow's own folder, not the group's."""
    await _sign_in_as(group_page, "admin", PASSWORD)
    token = await _token(group_page, "/admin/texts?practice=glasgow-west")
    text = "Glasgow West here: this is an automatic reply. Call {phone}.\n"
    response = await _post_text(group_page, "reply.txt", text, token=token, practice="glasgow-west")
    assert response.status == 303
    assert (tmp_path / "practices" / "glasgow-west" / "templates" / "reply.txt").read_text() == text
    assert group_page.runtime.practices.served[1].templates.current.texts["reply.txt"] == text


async def test_admin_actions_are_logged_without_the_words(page: Service) -> None:
    """A save is logged with who and which file, never the text saved."""
    canary = "CANARY-admin-text-7f3a"
    await _sign_in(page)
    token = await _token(page)
    with capture_logs() as logs:
        response = await _post_text(page, "reply.txt", f"{canary}: call {{phone}}", token=token)
    assert response.status == 303
    assert {
        "event": "admin_action",
        "who": "admin",
        "action": "save",
        "file": "reply.txt",
    }.items() <= logs[-1].items()
    assert canary not in repr(logs)
