"""The evidence pack (``practice-bot compliance``, bot/compliance.py) and the deletion counts
behind its figures (schema migration 9, ``Store.figures``).

Store tests run on SQLite and, with ``TEST_DATABASE_URL``, on PostgreSQL. Expected figures are
worked out here from the sequence of contacts, erasures and purges each test makes, not read
back through the code under test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot import __version__, cli
from bot.compliance import build_pack, render_html, render_markdown
from bot.events import Channel, ContactKind, EventKind, Outcome
from bot.pseudonym import Keyring
from bot.settings import Settings
from bot.store import LogFigures, Store, open_store
from bot.store.postgres import DIALECT as POSTGRES
from bot.store.schema import MIGRATIONS, SCHEMA_INFO, SCHEMA_VERSION
from bot.store.sqlite import DIALECT as SQLITE
from tests.helpers.group import SLUGS, group_files
from tests.helpers.service import PSEUDONYM_KEY, REPO, Clock, make_settings, running_service
from tests.helpers.stores import StoreUnderTest, open_test_store, postgres_schema

NOW = 1_767_261_600.0  # 2026-01-01 10:00 UTC
HOUR = 3600.0
DAY = 86400.0
WA = Channel.WHATSAPP
GENERATED = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
RETENTION = 90

# Every secret of the single-practice env file below: none may reach a pack.
SECRETS = {
    "META_APP_SECRET": "pack-app-secret-4c1d,pack-old-secret-77aa",
    "META_VERIFY_TOKEN": "pack-verify-token-91be",
    "INSTAGRAM_APP_SECRET": "pack-instagram-secret-0f3e",
    "WHATSAPP_ACCESS_TOKEN": "pack-whatsapp-token-5d2a",
    "MESSENGER_PAGE_ACCESS_TOKEN": "pack-messenger-token-a8c4",
    "PSEUDONYM_KEY": PSEUDONYM_KEY,
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def subject(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreUnderTest]:
    """Each store, opened on an empty database."""
    async with open_test_store(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting from the environment running the tests; tmp_path as the working folder."""
    for name in list(os.environ):
        if name.lower() in Settings.model_fields or name == "PRACTICES_DIR":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def _add(store: Store, at: float, pseudonym: str, practice: str = "") -> None:
    async with store.transaction() as tx:
        await tx.add_contact(
            at, WA, pseudonym, EventKind.MESSAGE, Outcome.REPLIED, practice=practice
        )


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    """A practice with WhatsApp only, unless ``overrides`` say otherwise."""
    values: dict[str, Any] = {
        "messenger_page_id": None,
        "instagram_account_id": None,
        "contact_log_retention_days": RETENTION,
        **overrides,
    }
    return make_settings(tmp_path, **values)


def _figures(
    *,
    records: int = 0,
    oldest_age_days: int | None = None,
    erasure_requests: int = 0,
    erased_records: int = 0,
    retention_records: int = 0,
    retention_runs: int = 0,
) -> LogFigures:
    """Figures of a store: nothing held or deleted unless the arguments say otherwise."""
    return LogFigures(
        records=records,
        oldest_age_days=oldest_age_days,
        erasure_requests=erasure_requests,
        erased_records=erased_records,
        retention_records=retention_records,
        retention_runs=retention_runs,
        counted_since=GENERATED.date(),
    )


def _both(settings: Settings, figures: LogFigures) -> str:
    pack = build_pack(settings, figures, generated=GENERATED, version=__version__)
    return render_markdown(pack) + render_html(pack)


def _table(markdown: str) -> dict[str, str]:
    """The rows of the Markdown's figures table, by label."""
    section = markdown.split("## 4. Current figures", 1)[1]
    return {
        cells[1].strip(): cells[2].strip()
        for line in section.splitlines()
        if line.startswith("| ") and len(cells := line.split("|")) == 4
    }


# --- the figures the store counts ---------------------------------------------------------


async def test_figures_equal_what_the_store_holds_after_contacts_erasures_and_purges(
    subject: StoreUnderTest, tmp_path: Path
) -> None:
    """After contacts, erasures and purges, the pack's figures are the store's own."""
    store = subject.store
    # (pseudonym, age in days at NOW); "gone" asks to be forgotten.
    made = [
        ("old-1", 120.0),
        ("old-2", 95.5),
        ("keep-1", 80.25),
        ("gone", 50.0),
        ("keep-2", 30.0),
        ("gone", 3.0),
        ("keep-3", 0.2),
    ]
    for pseudonym, age in made:
        await _add(store, NOW - age * DAY, pseudonym)
    held = [(p, NOW - age * DAY) for p, age in made]

    erasures = [await store.forget(WA, "gone"), await store.forget(WA, "never-wrote")]
    held = [(p, t) for p, t in held if p != "gone"]

    retention_records = retention_runs = 0
    end = NOW + 20 * DAY
    for at in (NOW, NOW + HOUR, end):  # the second finds nothing left to delete
        kept = [(p, t) for p, t in held if t >= at - RETENTION * DAY]
        if len(kept) < len(held):
            retention_runs += 1
            retention_records += len(held) - len(kept)
        held = kept
        await store.purge(at, RETENTION)

    expected = _figures(
        records=len(held),
        oldest_age_days=math.floor((end - min(t for _, t in held)) / DAY),
        erasure_requests=len(erasures),
        erased_records=sum(erasures),
        retention_records=retention_records,
        retention_runs=retention_runs,
    )
    assert (len(held), erasures, retention_records, retention_runs) == (2, [2, 0], 3, 2)
    figures = await store.figures(None, end)
    assert dataclasses.replace(figures, counted_since=expected.counted_since) == expected
    assert len(await store.contacts(None, None)) == figures.records
    pack = build_pack(_settings(tmp_path), figures, generated=GENERATED, version="x")
    assert _table(render_markdown(pack)) == {
        "Figure": "Value",
        "Records in the contact log": "2",
        "Age of the oldest record": "50 days",
        "Retention period": "90 days",
        "Erasure requests carried out": "2",
        "Records deleted by erasure requests": "2",
        "Records deleted automatically (retention)": "3",
        "Automatic deletion runs that deleted records": "2",
        "Deletions counted since": _long_date(figures),
    }


def _long_date(figures: LogFigures) -> str:
    since = figures.counted_since
    assert since is not None
    return f"{since.day} {since:%B %Y}"


async def test_figures_of_an_empty_store_are_zero_and_no_oldest_record(
    subject: StoreUnderTest,
) -> None:
    """A new store has no records, no oldest age and no deletions, counted from today."""
    figures = await subject.store.figures(None, NOW)
    today = datetime.now(UTC).date()
    assert figures.counted_since in {today, today - timedelta(days=1)}  # a run across midnight
    assert dataclasses.replace(figures, counted_since=GENERATED.date()) == _figures()


async def test_figures_of_a_practice_leave_other_practices_out(subject: StoreUnderTest) -> None:
    """In a group, each practice's figures count its own records and deletions only."""
    store = subject.store
    for practice, ages in (("short", (40, 10)), ("long", (70, 40, 5))):
        for age in ages:
            await _add(store, NOW - age * DAY, f"{practice}-{age}", practice)
    await store.forget(WA, "long-5")
    for at in (NOW, NOW + HOUR):  # the second run deletes nothing, so does not count
        await store.purge(at, RETENTION, practices={"short": 30, "long": 60})
    short = await store.figures("short", NOW)
    long = await store.figures("long", NOW)
    assert (short.records, short.oldest_age_days, short.erasure_requests) == (1, 10, 0)
    assert (short.retention_records, short.retention_runs) == (1, 1)
    assert (long.records, long.oldest_age_days, long.erasure_requests) == (1, 40, 1)
    assert (long.erased_records, long.retention_records, long.retention_runs) == (1, 1, 1)
    assert (await store.figures(None, NOW)).records == 2


async def test_forget_that_finds_nothing_counts_for_the_practice_named(
    subject: StoreUnderTest,
) -> None:
    """An erasure request that found no record is still counted, for the practice named."""
    assert await subject.store.forget(WA, "nobody", practice="leeds") == 0
    figures = await subject.store.figures("leeds", NOW)
    assert (figures.erasure_requests, figures.erased_records) == (1, 0)


async def test_deletion_counts_hold_no_pseudonym(subject: StoreUnderTest) -> None:
    """The counts table holds practices, reasons, days and numbers: never a pseudonym."""
    await _add(subject.store, NOW - 100 * DAY, "pseudonym-old")
    await _add(subject.store, NOW, "pseudonym-erased")
    await subject.store.forget(WA, "pseudonym-erased")
    await subject.store.purge(NOW, RETENTION)
    rows = await subject.rows(
        "SELECT practice, reason, day, runs, records FROM deletion_counts ORDER BY reason"
    )
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [
        ("", "erasure", 1, 1),
        ("", "retention", 1, 1),
    ]
    assert rows[1][2] == "2026-01-01"  # the purge's own day; an erasure is counted on today's
    assert not [value for row in rows for value in row if "pseudonym" in str(value)]


async def test_serve_purge_counts_its_deletions(tmp_path: Path) -> None:
    """The purge ``serve`` runs on its own counts what it deleted, as ``contacts purge`` does."""
    settings = _settings(tmp_path)
    clock = Clock()
    store = open_store(settings.database_url)
    await store.open()
    for age in (120, 100, 1):
        await _add(store, clock.now - age * DAY, f"c-{age}")
    await store.close()
    async with running_service(settings, clock, run_worker=False) as service:
        for _ in range(200):
            figures = await service.store.figures(None, clock.now)
            if figures.retention_runs:
                break
            await asyncio.sleep(0.01)
    assert (figures.records, figures.retention_records, figures.retention_runs) == (1, 2, 1)


# --- migration 9 on an existing database ---------------------------------------------------


def _version_8_sqlite(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(SQLITE.render(SCHEMA_INFO))
        for statement in (s for step in MIGRATIONS[:8] for s in step):
            db.execute(SQLITE.render(statement))
        db.execute("INSERT INTO schema_info (key, value) VALUES ('version', '8')")
        db.execute(
            "INSERT INTO contact_log (time, channel, pseudonym, kind, outcome, practice) "
            "VALUES (?, 'whatsapp', 'p1', 'message', 'replied', ''), "
            "(?, 'whatsapp', 'p2', 'message', 'cooldown', '')",
            (NOW - 5 * DAY, NOW - DAY),
        )
    return f"sqlite:///{path}"


async def _version_8_postgres(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(POSTGRES.render(SCHEMA_INFO))
        for statement in (s for step in MIGRATIONS[:8] for s in step):
            await conn.execute(POSTGRES.render(statement))
        await conn.execute("INSERT INTO schema_info (key, value) VALUES ('version', '8')")
        await conn.executemany(
            "INSERT INTO contact_log (time, channel, pseudonym, kind, outcome, practice) "
            "VALUES ($1, 'whatsapp', $2, 'message', 'replied', '')",
            [(NOW - 5 * DAY, "p1"), (NOW - DAY, "p2")],
        )
    finally:
        await conn.close()
    return url


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_migration_9_keeps_a_version_8_databases_records(kind: str, tmp_path: Path) -> None:
    """A version 8 database opens at version 9 with its records, and counts from then on."""
    assert SCHEMA_VERSION == 9
    if kind == "sqlite":
        url = _version_8_sqlite(tmp_path / "v8.sqlite3")
        await _upgrade_and_check(url)
        return
    async with postgres_schema() as schema_url:
        await _upgrade_and_check(await _version_8_postgres(schema_url))


async def _upgrade_and_check(url: str) -> None:
    store = open_store(url)
    await store.open()
    try:
        assert [r.pseudonym for r in await store.contacts(None, None)] == ["p1", "p2"]
        before = await store.figures(None, NOW)
        assert (before.records, before.oldest_age_days, before.erasure_requests) == (2, 5, 0)
        assert await store.forget(WA, "p1") == 1
        after = await store.figures(None, NOW)
        assert (after.records, after.erasure_requests, after.erased_records) == (1, 1, 1)
    finally:
        await store.close()
    reopened = open_store(url)
    await reopened.open()  # a second start finds version 9 and changes nothing
    try:
        assert (await reopened.figures(None, NOW)).erasure_requests == 1
    finally:
        await reopened.close()


# --- the pack's content --------------------------------------------------------------------


def test_pack_lists_only_the_configured_channels(tmp_path: Path) -> None:
    """A practice on WhatsApp alone: neither file names Messenger or Instagram."""
    text = _both(_settings(tmp_path), _figures())
    assert "WhatsApp Business Platform" in text
    assert "Messenger" not in text
    assert "Instagram" not in text


def test_pack_retention_days_are_the_configured_ones(tmp_path: Path) -> None:
    """The retention period the pack gives is CONTACT_LOG_RETENTION_DAYS, in every part."""
    settings = _settings(tmp_path, contact_log_retention_days=45)
    pack = build_pack(settings, _figures(), generated=GENERATED, version=__version__)
    markdown = render_markdown(pack)
    assert _table(markdown)["Retention period"] == "45 days"
    assert "Contact records: 45 days, then deleted automatically" in markdown
    assert "deleted automatically after 45 days" in pack.notices[0].text
    assert "Contact records: 45 days, then deleted automatically" in render_html(pack)


def test_pack_privacy_notice_in_welsh_too_for_a_welsh_practice(tmp_path: Path) -> None:
    """A practice replying in Welsh gets the privacy-notice paragraph in Welsh as well."""
    settings = _settings(tmp_path, reply_languages="cy,en", contact_log_retention_days=45)
    pack = build_pack(settings, _figures(), generated=GENERATED, version=__version__)
    assert [notice.language for notice in pack.notices] == ["en", "cy"]
    assert "ar ôl 45 diwrnod" in pack.notices[1].text
    assert '<blockquote lang="cy">' in render_html(pack)


def test_pack_privacy_notice_english_only_for_an_english_practice(tmp_path: Path) -> None:
    """Without Welsh replies the paragraph is in English alone."""
    pack = build_pack(_settings(tmp_path), _figures(), generated=GENERATED, version=__version__)
    assert [notice.language for notice in pack.notices] == ["en"]


def test_pack_names_the_postgres_host_but_never_its_password(tmp_path: Path) -> None:
    """Where the data rests names the PostgreSQL host and database, never the credentials."""
    url = "postgresql://practice:db-password-3e9f@db.internal.example:5433/practice_bot"
    text = _both(_settings(tmp_path, database_url=url), _figures())
    assert "A PostgreSQL database: db.internal.example:5433/practice_bot." in text
    assert "db-password-3e9f" not in text
    assert "practice:" not in text


def test_pack_escapes_the_practice_name_in_both_files(tmp_path: Path) -> None:
    """A practice name with markup characters is shown as written, never as markup."""
    settings = _settings(tmp_path, practice_name="Smiles <b>*Dental*</b> | #1")
    pack = build_pack(settings, _figures(), generated=GENERATED, version=__version__)
    assert "Smiles &lt;b&gt;*Dental*&lt;/b&gt; | #1" in render_html(pack)
    assert "Smiles \\<b\\>\\*Dental\\*\\</b\\> \\| \\#1" in render_markdown(pack)


def test_pack_html_is_standalone_and_printable(tmp_path: Path) -> None:
    """The page has its own print styles, and no script or outside resource."""
    page = render_html(
        build_pack(_settings(tmp_path), _figures(), generated=GENERATED, version=__version__)
    )
    assert "@page" in page
    assert "@media print" in page
    for outside in ("<script", "<link", "src=", "@import", "url("):
        assert outside not in page


def test_pack_warns_when_records_outlive_the_retention_period(tmp_path: Path) -> None:
    """An oldest record well past the period says the automatic deletion has not run."""
    late = _both(_settings(tmp_path), _figures(records=1, oldest_age_days=RETENTION + 2))
    on_time = _both(_settings(tmp_path), _figures(records=1, oldest_age_days=RETENTION + 1))
    assert "the automatic deletion has not run lately" in late
    assert "the automatic deletion has not run lately" not in on_time


def test_pack_leaves_the_legal_choices_to_the_practice(tmp_path: Path) -> None:
    """The lawful basis and the DPIA decision are the practice's to confirm and decide."""
    pack = build_pack(_settings(tmp_path), _figures(), generated=GENERATED, version=__version__)
    basis = next(item for item in pack.record if item.label == "Lawful basis")
    assert basis.lines[0].startswith("The practice confirms its lawful basis")
    assert "typically Article 9(2)(h)" in basis.lines[0]
    assert "not legal advice" in pack.screening_notes[-1]


# --- the command -----------------------------------------------------------------------------


def _env_file(folder: Path, **extra: str) -> Path:
    values = {
        **SECRETS,
        "PRACTICE_NAME": "Pack Dental",
        "PRACTICE_PHONE": "+44 20 7946 0000",
        "PRACTICE_EMAIL": "hello@pack-dental.example",
        "WHATSAPP_PHONE_NUMBER_ID": "109876543210987",
        "MESSENGER_PAGE_ID": "200000000000001",
        "DATABASE_URL": f"sqlite:///{folder}/data/bot.sqlite3",
        "TEMPLATES_DIR": str(REPO / "templates"),
        "CONTACT_LOG_RETENTION_DAYS": str(RETENTION),
        **extra,
    }
    path = folder / "bot.env"
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


async def _seed(url: str, records: list[tuple[str, str]]) -> None:
    """Contact records of ``(practice, pseudonym)``, made now."""
    store = open_store(url)
    await store.open()
    try:
        for practice, pseudonym in records:
            await _add(store, datetime.now(UTC).timestamp(), pseudonym, practice)
    finally:
        await store.close()


def test_cli_compliance_writes_both_files_and_exits_0(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command writes the Markdown and the HTML pack, dated and versioned, and says so."""
    env = _env_file(clean_env)
    asyncio.run(_seed(f"sqlite:///{clean_env}/data/bot.sqlite3", [("", "p1"), ("", "p2")]))
    out = clean_env / "new" / "pack"
    assert cli.main(["compliance", "--out", str(out), "--env-file", str(env)]) == 0
    written = [out / "evidence-pack.md", out / "evidence-pack.html"]
    assert capsys.readouterr().out.splitlines() == [f"wrote {path}" for path in written]
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert f"practice-bot {__version__}" in text
        assert f"{datetime.now(UTC):%B %Y}" in text
    assert _table(written[0].read_text(encoding="utf-8"))["Records in the contact log"] == "2"


def test_cli_compliance_files_hold_no_secret_or_pseudonym(clean_env: Path) -> None:
    """No secret of the configuration and no pseudonym of the log is in either file."""
    env = _env_file(clean_env)
    keyring = Keyring(PSEUDONYM_KEY)
    pseudonyms = [
        keyring.contact(WA, "447700900123", ContactKind.PHONE),
        keyring.contact(Channel.MESSENGER, "6000000000000001"),
    ]
    asyncio.run(_seed(f"sqlite:///{clean_env}/data/bot.sqlite3", [("", p) for p in pseudonyms]))
    assert cli.main(["compliance", "--out", str(clean_env / "pack"), "--env-file", str(env)]) == 0
    text = "".join(p.read_text(encoding="utf-8") for p in (clean_env / "pack").iterdir())
    needles = [*pseudonyms, *(part for s in SECRETS.values() for part in s.split(","))]
    assert [needle for needle in needles if needle in text] == []


def test_cli_compliance_without_a_database_exits_2(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Like the contacts commands, it reports on a log that exists and never makes one."""
    env = _env_file(clean_env)
    out = clean_env / "pack"
    assert cli.main(["compliance", "--out", str(out), "--env-file", str(env)]) == 2
    database = clean_env / "data" / "bot.sqlite3"
    assert f"DATABASE_URL: no database at {database}" in capsys.readouterr().err
    assert not database.exists()
    assert not out.exists()


def test_cli_compliance_group_writes_one_pack_per_practice(clean_env: Path) -> None:
    """In a group, each practice gets its own pack in a folder named after it."""
    main_env = group_files(clean_env, "http://127.0.0.1:9")
    asyncio.run(_seed(f"sqlite:///{clean_env}/data/bot.sqlite3", [(s, "p") for s in SLUGS]))
    out = clean_env / "packs"
    assert cli.main(["compliance", "--out", str(out), "--env-file", str(main_env)]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == sorted(
        f"{slug}/evidence-pack.{ext}" for slug in SLUGS for ext in ("md", "html")
    )
    glasgow = (out / "glasgow-west" / "evidence-pack.md").read_text(encoding="utf-8")
    assert glasgow.startswith("# Data protection evidence pack: Example Smiles Glasgow West\n")
    assert _table(glasgow)["Records in the contact log"] == "1"


def test_cli_compliance_practice_option_writes_that_practice_into_out(clean_env: Path) -> None:
    """With --practice, the one practice's pack goes straight into the folder named."""
    main_env = group_files(clean_env, "http://127.0.0.1:9")
    asyncio.run(_seed(f"sqlite:///{clean_env}/data/bot.sqlite3", []))
    out = clean_env / "pack"
    args = ["compliance", "--practice", "cardiff-bay", "--out", str(out)]
    assert cli.main([*args, "--env-file", str(main_env)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["evidence-pack.html", "evidence-pack.md"]
    assert "Example Smiles Cardiff Bay" in (out / "evidence-pack.html").read_text()


def test_cli_compliance_group_packs_list_each_practices_own_channels(clean_env: Path) -> None:
    """Each practice's pack names the apps that practice has connected, and no other."""
    main_env = group_files(clean_env, "http://127.0.0.1:9")
    asyncio.run(_seed(f"sqlite:///{clean_env}/data/bot.sqlite3", []))
    out = clean_env / "packs"
    assert cli.main(["compliance", "--out", str(out), "--env-file", str(main_env)]) == 0
    glasgow = (out / "glasgow-west" / "evidence-pack.md").read_text(encoding="utf-8")
    cardiff = (out / "cardiff-bay" / "evidence-pack.md").read_text(encoding="utf-8")
    assert "Messages on WhatsApp or Facebook Messenger." in glasgow
    assert "Instagram" not in glasgow
    assert "Messages on WhatsApp or Instagram." in cardiff
    assert "Messenger" not in cardiff


def test_cli_compliance_group_retention_is_each_practices_own(clean_env: Path) -> None:
    """A practice that keeps its records 30 days says so; the others give the group's 90."""
    main_env = group_files(clean_env, "http://127.0.0.1:9")
    leeds = clean_env / "practices" / "leeds-riverside" / "practice.env"
    leeds.write_text(leeds.read_text() + "CONTACT_LOG_RETENTION_DAYS=30\n")
    asyncio.run(_seed(f"sqlite:///{clean_env}/data/bot.sqlite3", []))
    out = clean_env / "packs"
    assert cli.main(["compliance", "--out", str(out), "--env-file", str(main_env)]) == 0
    retention = {
        slug: _table((out / slug / "evidence-pack.md").read_text())["Retention period"]
        for slug in SLUGS
    }
    assert retention == {
        "cardiff-bay": "90 days",
        "glasgow-west": "90 days",
        "leeds-riverside": "30 days",
    }


def test_cli_compliance_practice_option_outside_a_group_exits_2(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--practice names a practice of a group; with one practice it is a usage error."""
    env = _env_file(clean_env)
    args = ["compliance", "--practice", "leeds", "--out", str(clean_env / "pack")]
    assert cli.main([*args, "--env-file", str(env)]) == 2
    assert "--practice: this deployment serves one practice" in capsys.readouterr().err
