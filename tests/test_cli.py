"""The command line: configuration errors, check, preview and the contact-log commands."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bot.events import Channel, ContactKind, EventKind, Outcome
from bot.pseudonym import Keyring
from bot.store.sqlite import SQLiteStore
from tests.helpers.process import BotProcess
from tests.helpers.service import PSEUDONYM_KEY, REPO

BASE_ENV = {
    "META_APP_SECRET": "cli-secret-value",
    "META_VERIFY_TOKEN": "cli-verify-token",
    "PRACTICE_NAME": "CLI Dental",
    "PRACTICE_PHONE": "+44 20 7946 0000",
    "PRACTICE_EMAIL": "hello@cli-dental.example",
    "PSEUDONYM_KEY": PSEUDONYM_KEY,
    "WHATSAPP_PHONE_NUMBER_ID": "109876543210987",
}


def _run(
    tmp_path: Path, *args: str, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bot`` in tmp_path with only the given variables (None: not set)."""
    values = {**BASE_ENV, **(env or {})}
    values.setdefault("TEMPLATES_DIR", str(REPO / "templates"))
    values.setdefault("DATABASE_URL", f"sqlite:///{tmp_path}/data/bot.sqlite3")
    full = {"PATH": os.environ.get("PATH", "")}
    full.update({name: value for name, value in values.items() if value is not None})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_missing_required_variables_exit_2_one_line_each(tmp_path: Path) -> None:
    """Missing variables stop a command with exit 2 and one line per variable."""
    result = _run(tmp_path, "contacts", "summary", env={"META_APP_SECRET": "", "PSEUDONYM_KEY": ""})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "META_APP_SECRET: is required" in lines
    assert "PSEUDONYM_KEY: is required" in lines


def test_cli_invalid_values_name_the_variable_without_secrets(tmp_path: Path) -> None:
    """Invalid values are reported per variable and the secret value is never printed."""
    result = _run(
        tmp_path,
        "serve",
        env={
            "PSEUDONYM_KEY": "short-secret-value",
            "OPENING_HOURS": "Mon-Fri 9-5",
            "PORT": "99999",
        },
    )
    assert result.returncode == 2
    assert "short-secret-value" not in result.stderr + result.stdout
    variables = {line.split(":")[0] for line in result.stderr.splitlines()}
    assert {"PSEUDONYM_KEY", "OPENING_HOURS", "PORT"} <= variables


def test_cli_contact_route_is_required(tmp_path: Path) -> None:
    """Without an email or a booking URL the configuration is refused."""
    result = _run(tmp_path, "serve", env={"PRACTICE_EMAIL": ""})
    assert result.returncode == 2
    assert result.stderr.startswith("PRACTICE_EMAIL:")


@pytest.mark.parametrize("variable", ["PRACTICE_BOOKING_URL", "PRACTICE_WEBSITE"])
def test_cli_practice_address_must_be_https(tmp_path: Path, variable: str) -> None:
    """A booking or website address that is not https:// stops start-up with one line."""
    result = _run(tmp_path, "serve", env={variable: "http://cli-dental.example/book"})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"{variable}: must be a full web address starting with https://")


def test_cli_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    """--env-file supplies variables; a real environment variable overrides the file."""
    env_file = tmp_path / "bot.env"
    env_file.write_text("PRACTICE_NAME=From File\nMESSENGER_PAGE_ID=200000000000001\n")
    result = _run(tmp_path, "check", "--env-file", str(env_file))
    assert result.returncode == 0, result.stderr
    assert "messenger: dry-run" in result.stdout


def test_cli_check_reports_channel_states(tmp_path: Path) -> None:
    """check prints on / dry-run per channel and exits 0 when all is well."""
    result = _run(tmp_path, "check", env={"WHATSAPP_ACCESS_TOKEN": "tok"})
    assert result.returncode == 0, result.stderr
    assert "whatsapp: sending" in result.stdout
    assert "messenger: off" in result.stdout


def test_cli_check_bad_configuration_exits_1(tmp_path: Path) -> None:
    """check reports configuration problems with exit 1, not 2."""
    result = _run(tmp_path, "check", env={"PRACTICE_PHONE": "020 7946 0000"})
    assert result.returncode == 1
    assert result.stderr.startswith("PRACTICE_PHONE:")


def test_cli_check_broken_template_reports_file_line_col(tmp_path: Path) -> None:
    """A broken template is reported as path:line:col with exit 1."""
    templates = tmp_path / "templates"
    templates.mkdir()
    for name in ("reply.txt", "closed.txt"):
        (templates / name).write_text((REPO / "templates" / name).read_text())
    (templates / "reply.txt").write_text("Hello\nCall {phon}\n")
    result = _run(tmp_path, "check", env={"TEMPLATES_DIR": str(templates)})
    assert result.returncode == 1
    assert "reply.txt:2:6:" in result.stderr


def test_cli_serve_broken_template_exits_2(tmp_path: Path) -> None:
    """serve refuses to start with templates that don't validate."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "reply.txt").write_text("{oops}\n")
    (templates / "closed.txt").write_text("Call {phone}\n")
    result = _run(tmp_path, "serve", env={"TEMPLATES_DIR": str(templates)})
    assert result.returncode == 2
    assert "reply.txt:1:1:" in result.stderr


def test_cli_usage_error_exits_2(tmp_path: Path) -> None:
    """An unknown command is a usage error with exit 2."""
    assert _run(tmp_path, "frobnicate").returncode == 2


def test_cli_preview_shows_text_buttons_and_file(tmp_path: Path) -> None:
    """templates preview prints the reply for a moment, its file and its buttons."""
    result = _run(
        tmp_path,
        "templates",
        "preview",
        "--channel",
        "messenger",
        "--at",
        "2026-12-24T18:30",
        env={"PRACTICE_BOOKING_URL": "https://cli-dental.example/book"},
    )
    assert result.returncode == 0, result.stderr
    assert "closed" in result.stdout
    assert "Book online" in result.stdout


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        ("2026-12-28 10:00", "closed: it is a bank holiday (Boxing Day (observed))"),
        ("2026-12-23 22:00", "closed: it is outside the opening hours"),
        (
            "2026-12-31 10:00",
            "closed: it is one of the practice's closed dates (CLOSED_DATES or closures.txt)",
        ),
        ("2026-12-23 10:00", "the practice is open"),
    ],
)
def test_cli_preview_says_why_the_practice_is_closed(tmp_path: Path, at: str, reason: str) -> None:
    """preview names the reason: a bank holiday by name, a closed date, or the hours."""
    env: dict[str, str | None] = {"CLOSED_DATES": "2026-12-31", "BANK_HOLIDAYS": "GB-ENG"}
    result = _run(tmp_path, "templates", "preview", "--channel", "whatsapp", "--at", at, env=env)
    assert result.returncode == 0, result.stderr
    assert reason in result.stdout.splitlines()[0]


def test_cli_preview_at_accepts_a_space_between_date_and_time(tmp_path: Path) -> None:
    """--at takes '2026-12-25 10:00' as well as ISO 8601's 2026-12-25T10:00."""
    spaced = _run(tmp_path, "templates", "preview", "--at", "2026-12-25 10:00")
    iso = _run(tmp_path, "templates", "preview", "--at", "2026-12-25T10:00")
    assert spaced.returncode == 0, spaced.stderr
    assert spaced.stdout == iso.stdout


def test_cli_preview_at_refused_names_the_expected_form(tmp_path: Path) -> None:
    """A --at that is not a date and time is exit 2 with the form to use."""
    result = _run(tmp_path, "templates", "preview", "--at", "Christmas morning")
    assert result.returncode == 2
    assert _one_line(result).startswith("--at: not a date and time; write it as 2026-12-25 10:00")


@pytest.mark.parametrize(
    "command",
    [[], ["serve"], ["check"], ["templates", "preview"], ["contacts", "export"], ["simulate"]],
)
def test_cli_help_speaks_to_users_not_to_the_spec(tmp_path: Path, command: list[str]) -> None:
    """No --help text points at the product specification's sections."""
    result = _run(tmp_path, *command, "--help")
    assert result.returncode == 0
    assert "SPEC" not in result.stdout
    assert "§" not in result.stdout


async def _seed(db_path: Path) -> Keyring:
    keyring = Keyring(PSEUDONYM_KEY)
    store = SQLiteStore(str(db_path))
    await store.open()
    async with store.transaction() as tx:
        for i, (channel, sender) in enumerate(
            [
                (Channel.WHATSAPP, "447700900123"),
                (Channel.WHATSAPP, "447700900999"),
                (Channel.MESSENGER, "6000000000000001"),
            ]
        ):
            contact = keyring.contact(channel, sender, ContactKind.PHONE if i < 2 else None)
            await tx.add_contact(
                1767261600.0 + i, channel, contact, EventKind.MESSAGE, Outcome.REPLIED
            )
    await store.close()
    return keyring


async def test_cli_contacts_export_csv_has_header_and_utc_times(tmp_path: Path) -> None:
    """contacts export writes CSV with the documented header and Z times."""
    await _seed(tmp_path / "data" / "bot.sqlite3")
    result = _run(tmp_path, "contacts", "export")
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["time", "channel", "pseudonym", "kind", "outcome", "template"]
    assert rows[1][0] == "2026-01-01T10:00:00Z"
    assert len(rows) == 4


async def test_cli_contacts_export_json_and_date_bounds(tmp_path: Path) -> None:
    """JSON export is one array; --since/--until are inclusive UTC days."""
    await _seed(tmp_path / "data" / "bot.sqlite3")
    inside = _run(
        tmp_path,
        "contacts",
        "export",
        "--format",
        "json",
        "--since",
        "2026-01-01",
        "--until",
        "2026-01-01",
    )
    outside = _run(tmp_path, "contacts", "export", "--format", "json", "--since", "2026-01-02")
    assert len(json.loads(inside.stdout)) == 3
    assert json.loads(outside.stdout) == []


async def test_cli_contacts_forget_deletes_one_person(tmp_path: Path) -> None:
    """contacts forget normalises the phone number and deletes only that person."""
    await _seed(tmp_path / "data" / "bot.sqlite3")
    result = _run(
        tmp_path, "contacts", "forget", "--channel", "whatsapp", "--sender-id", "+44 7700 900123"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deleted 1"
    remaining = _run(tmp_path, "contacts", "export")
    assert len(remaining.stdout.strip().splitlines()) == 3


async def test_cli_contacts_summary_counts_per_day(tmp_path: Path) -> None:
    """contacts summary prints counts per day, channel and outcome."""
    await _seed(tmp_path / "data" / "bot.sqlite3")
    result = _run(tmp_path, "contacts", "summary", "--days", "100000")
    assert result.returncode == 0, result.stderr
    assert "2026-01-01" in result.stdout
    assert "whatsapp" in result.stdout


async def test_cli_contacts_report_writes_the_chart_and_counts(tmp_path: Path) -> None:
    """contacts report writes a page with the chart and the totals, and no pseudonym."""
    keyring = await _seed(tmp_path / "data" / "bot.sqlite3")
    out = tmp_path / "report.html"
    result = _run(tmp_path, "contacts", "report", "--out", str(out), "--days", "1000")
    page = out.read_text()
    assert result.returncode == 0, result.stderr
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page
    assert "3 contacts in the last 1000 days: WhatsApp 2, Messenger 1, Instagram 0" in page
    assert keyring.contact(Channel.WHATSAPP, "447700900123", ContactKind.PHONE) not in page


@pytest.mark.parametrize("days", ["0", "x"])
def test_cli_contacts_summary_rejects_bad_days(tmp_path: Path, days: str) -> None:
    """--days must be a positive whole number (usage error, exit 2)."""
    assert _run(tmp_path, "contacts", "summary", "--days", days).returncode == 2


async def test_cli_contacts_purge_applies_retention(tmp_path: Path) -> None:
    """contacts purge deletes records older than the retention period."""
    await _seed(tmp_path / "data" / "bot.sqlite3")
    result = _run(tmp_path, "contacts", "purge")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("deleted 3 contact records")


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a command printed on stderr after its warnings, with no traceback."""
    assert "Traceback" not in result.stderr + result.stdout
    [line] = [x for x in result.stderr.splitlines() if not x.startswith("warning: ")]
    return line


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///{tmp}",
        "sqlite:///{tmp}/a-file/data/bot.sqlite3",
        "postgresql://postgres:cli-db-password@127.0.0.1:1/practice_bot",
    ],
    ids=["folder", "under-a-file", "refused-port"],
)
def test_cli_serve_store_cannot_open_exit_2_one_line(tmp_path: Path, url: str) -> None:
    """serve with a store it cannot open prints one DATABASE_URL line and exits 2."""
    (tmp_path / "a-file").write_text("not a folder\n")
    result = _run(tmp_path, "serve", env={"DATABASE_URL": url.format(tmp=tmp_path)})
    assert result.returncode == 2
    assert _one_line(result).startswith("DATABASE_URL: ")
    assert "cli-db-password" not in result.stderr + result.stdout


def test_cli_serve_port_in_use_exit_2_one_line(tmp_path: Path) -> None:
    """serve on a port another process holds prints one PORT line and exits 2."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = _run(tmp_path, "serve", env={"HOST": "127.0.0.1", "PORT": port})
    assert result.returncode == 2
    assert _one_line(result) == f"PORT: cannot listen on 127.0.0.1:{port} (Address already in use)"


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite:///"])
def test_cli_sqlite_url_without_a_file_is_refused(tmp_path: Path, url: str) -> None:
    """An in-memory or empty SQLite path is refused at validation with exit 2."""
    result = _run(tmp_path, "serve", env={"DATABASE_URL": url})
    assert result.returncode == 2
    line = _one_line(result)
    assert line.startswith("DATABASE_URL: ")
    assert "file" in line


def test_cli_sqlite_memory_message_says_why(tmp_path: Path) -> None:
    """The :memory: refusal says the database is lost on restart and not shared."""
    line = _one_line(_run(tmp_path, "check", env={"DATABASE_URL": "sqlite:///:memory:"}))
    assert "lost on restart" in line
    assert "not shared" in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("META_APP_SECRET", " \t "),
        ("META_APP_SECRET", "cli-secret-one, ,cli-secret-two"),
        ("META_APP_SECRET", "cli-secret-one,"),
        ("META_VERIFY_TOKEN", " \t "),
        ("PSEUDONYM_KEY", " \t" * 20),
        ("INSTAGRAM_APP_SECRET", " \t "),
        ("WHATSAPP_ACCESS_TOKEN", " \t "),
        ("MESSENGER_PAGE_ACCESS_TOKEN", " \t "),
        ("INSTAGRAM_ACCESS_TOKEN", " \t "),
    ],
)
def test_cli_blank_secret_is_refused(tmp_path: Path, variable: str, value: str) -> None:
    """A whitespace-only secret, or list entry, stops start-up naming only the variable."""
    result = _run(tmp_path, "serve", env={variable: value})
    assert result.returncode == 2
    assert _one_line(result).startswith(f"{variable}: ")
    assert "cli-secret" not in result.stderr + result.stdout


def _preview_text(tmp_path: Path, env_file: Path, **env: str | None) -> str:
    result = _run(
        tmp_path,
        "templates",
        "preview",
        "--channel",
        "whatsapp",
        "--env-file",
        str(env_file),
        env={"PRACTICE_NAME": None, **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_cli_env_file_value_with_hash_loads_whole(tmp_path: Path) -> None:
    """An unquoted value containing " #" is read to the end of the line."""
    env_file = tmp_path / "bot.env"
    env_file.write_text("PRACTICE_NAME=Smile Studio #2 Leeds\n")
    assert "contacting Smile Studio #2 Leeds." in _preview_text(tmp_path, env_file)


def test_cli_env_file_quoted_value_keeps_its_quotes(tmp_path: Path) -> None:
    """A quoted value is taken verbatim, quotes included, as docker run --env-file does."""
    env_file = tmp_path / "bot.env"
    env_file.write_text('PRACTICE_NAME="Smile Studio"\n')
    assert 'contacting "Smile Studio".' in _preview_text(tmp_path, env_file)


def test_cli_environment_wins_over_env_file(tmp_path: Path) -> None:
    """A real environment variable overrides the same variable in the env file."""
    env_file = tmp_path / "bot.env"
    env_file.write_text("PRACTICE_NAME=From File\n")
    text = _preview_text(tmp_path, env_file, PRACTICE_NAME="From Environment")
    assert "From Environment" in text
    assert "From File" not in text


@pytest.mark.parametrize(
    "line",
    [
        'META_APP_SECRET="cli-file-secret"',
        "META_APP_SECRET='cli-file-secret'",
        "META_APP_SECRET=cli-file-secret #rotated",
        "META_APP_SECRET=cli-file-secret ",
    ],
    ids=["double-quotes", "single-quotes", "hash", "trailing-space"],
)
def test_cli_check_warns_about_env_file_values_read_differently(tmp_path: Path, line: str) -> None:
    """check warns path:line and the variable, never the value, and still exits 0."""
    env_file = tmp_path / "bot.env"
    env_file.write_text(f"# practice-bot\n{line}\n")
    result = _run(tmp_path, "check", "--env-file", str(env_file))
    assert result.returncode == 0, result.stderr
    assert f"warning: {env_file}:2: META_APP_SECRET " in result.stderr
    assert "cli-file-secret" not in result.stderr + result.stdout


def test_cli_other_commands_warn_about_env_file_values_too(tmp_path: Path) -> None:
    """The env-file warnings are printed by every command, not only by check."""
    env_file = tmp_path / "bot.env"
    env_file.write_text('PRACTICE_NAME="CLI Dental"\n')
    result = _run(tmp_path, "templates", "preview", "--env-file", str(env_file))
    assert result.returncode == 0, result.stderr
    assert f"warning: {env_file}:1: PRACTICE_NAME starts with a quote" in result.stderr


def test_cli_booking_url_with_a_trailing_space_is_refused(tmp_path: Path) -> None:
    """A booking address with a space left at the end of its line is a problem check reports."""
    env_file = tmp_path / "bot.env"
    env_file.write_text("PRACTICE_BOOKING_URL=https://cli-dental.example/book \n")
    result = _run(tmp_path, "check", "--env-file", str(env_file))
    assert result.returncode == 1
    assert "PRACTICE_BOOKING_URL: contains a space or tab" in result.stderr


def test_cli_env_file_export_line_is_refused(tmp_path: Path) -> None:
    """A line docker run --env-file refuses (export KEY=value) stops with path:line:col."""
    env_file = tmp_path / "bot.env"
    env_file.write_text("PRACTICE_NAME=CLI Dental\nexport PORT=8081\n")
    result = _run(tmp_path, "serve", "--env-file", str(env_file))
    assert result.returncode == 2
    assert _one_line(result).startswith(f"{env_file}:2:1: ")


async def test_cli_serve_creates_private_data_folder_and_files(tmp_path: Path) -> None:
    """Under umask 022 serve creates the data folder 0700 and the database files 0600."""
    data = tmp_path / "data"
    bot = BotProcess(tmp_path, "http://127.0.0.1:9", DATABASE_URL=f"sqlite:///{data}/bot.sqlite3")
    previous = os.umask(0o022)
    try:
        await bot.start()
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in [data, *data.iterdir()]}
    finally:
        os.umask(previous)
        await bot.stop()
    assert modes == {
        "data": 0o700,
        "bot.sqlite3": 0o600,
        "bot.sqlite3-wal": 0o600,
        "bot.sqlite3-shm": 0o600,
    }


async def test_cli_contacts_forget_trims_the_sender_id(tmp_path: Path) -> None:
    """contacts forget ignores spaces around the id."""
    await _seed(tmp_path / "data" / "bot.sqlite3")
    result = _run(
        tmp_path,
        "contacts",
        "forget",
        "--channel",
        "messenger",
        "--sender-id",
        " 6000000000000001 ",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deleted 1"


@pytest.mark.parametrize("sender", ["", "  ", "+", "-", "( )"])
async def test_cli_contacts_forget_refuses_an_empty_id(tmp_path: Path, sender: str) -> None:
    """An id that normalises to nothing is refused with exit 2, deleting nothing."""
    await _seed(tmp_path / "data" / "bot.sqlite3")
    result = _run(tmp_path, "contacts", "forget", "--channel", "whatsapp", f"--sender-id={sender}")
    assert result.returncode == 2
    assert _one_line(result).startswith("--sender-id: ")
    assert len(_run(tmp_path, "contacts", "export").stdout.strip().splitlines()) == 4


@pytest.mark.parametrize(
    "command",
    [
        ["export"],
        ["summary"],
        ["purge"],
        ["forget", "--channel", "whatsapp", "--sender-id", "+44 7700 900123"],
    ],
    ids=lambda command: command[0],
)
def test_cli_contacts_without_a_database_exit_2(tmp_path: Path, command: list[str]) -> None:
    """The contacts commands refuse a SQLite file that does not exist, and create none."""
    result = _run(tmp_path, "contacts", *command)
    assert result.returncode == 2
    database = tmp_path / "data" / "bot.sqlite3"
    assert _one_line(result).startswith(f"DATABASE_URL: no database at {database}")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["contacts", "export", "--until", "9999-12-31"],
        ["contacts", "export", "--since", "0001-01-01"],
        ["templates", "preview", "--at", "0001-01-01T00:00"],
        ["templates", "preview", "--at", "9999-12-31T23:59"],
    ],
    ids=["until", "since", "at-first", "at-last"],
)
def test_cli_dates_out_of_range_exit_2_naming_the_option(tmp_path: Path, args: list[str]) -> None:
    """A date the calendar arithmetic cannot handle names the option and the accepted range."""
    result = _run(tmp_path, *args)
    assert result.returncode == 2
    line = _one_line(result)
    assert line.startswith(f"{args[2]}: ")
    assert "1970-01-01" in line
    assert "9997-12-31" in line


def test_cli_practice_option_outside_a_group_is_refused(tmp_path: Path) -> None:
    """--practice names a practice of a group; with one practice it is a usage error."""
    result = _run(tmp_path, "templates", "preview", "--practice", "leeds")
    assert result.returncode == 2
    assert _one_line(result).startswith("--practice: this deployment serves one practice")
