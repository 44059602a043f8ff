"""The command line: configuration errors, check, preview and the contact-log commands."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.events import Channel, ContactKind, EventKind, Outcome
from bot.pseudonym import Keyring
from bot.store.sqlite import SQLiteStore
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
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bot`` in tmp_path with only the given variables."""
    values = {**BASE_ENV, **(env or {})}
    values.setdefault("TEMPLATES_DIR", str(REPO / "templates"))
    values.setdefault("DATABASE_URL", f"sqlite:///{tmp_path}/data/bot.sqlite3")
    full = {"PATH": os.environ.get("PATH", ""), **values}
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
    assert rows[0] == ["time", "channel", "pseudonym", "kind", "outcome"]
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
