"""A dental group's configuration: PRACTICES_DIR, each practice's file over the group's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.events import Channel
from bot.practices import load_practices

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "group"


def _group(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the shipped three-practice example: (main env file, practices folder)."""
    shutil.copytree(EXAMPLE, tmp_path / "group")
    return tmp_path / "group" / "group.env", tmp_path / "group" / "practices"


def _problems(env_file: Path, practices: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_practices(env_file, practices)
    return raised.value.problems


def test_practices_example_loads_three_practices_in_slug_order() -> None:
    """The shipped example is three valid practices: England, Scotland and Wales."""
    practices = load_practices(EXAMPLE / "group.env", EXAMPLE / "practices")
    assert [(p.slug, p.settings.bank_holidays) for p in practices] == [
        ("cardiff-bay", "GB-WLS"),
        ("glasgow-west", "GB-SCT"),
        ("leeds-riverside", "GB-ENG"),
    ]


def test_practices_file_overrides_and_group_fills_in() -> None:
    """A practice's own value wins; what it leaves out comes from the group's file."""
    by_slug = {
        p.slug: p.settings for p in load_practices(EXAMPLE / "group.env", EXAMPLE / "practices")
    }
    assert by_slug["glasgow-west"].opening_hours == "Mon-Fri 08:00-18:00; Sat 09:00-12:30"
    assert by_slug["leeds-riverside"].opening_hours == "Mon-Fri 08:30-17:00"  # the group's
    assert by_slug["cardiff-bay"].practice_email == "cardiffbay@example-smiles.co.uk"
    assert by_slug["glasgow-west"].practice_email == "reception@example-smiles.co.uk"


def test_practices_channels_are_each_practices_own() -> None:
    """Each practice is on for the channels its own file names an account for."""
    channels = {
        p.slug: sorted(p.settings.send_configs())
        for p in load_practices(EXAMPLE / "group.env", EXAMPLE / "practices")
    }
    assert channels["glasgow-west"] == [Channel.MESSENGER, Channel.WHATSAPP]
    assert channels["cardiff-bay"] == [Channel.INSTAGRAM, Channel.WHATSAPP]


def test_practices_own_templates_folder_comes_first() -> None:
    """Each practice reads its own templates folder (if it has one yet) before the group's."""
    dirs = {
        p.slug: p.templates_dirs
        for p in load_practices(EXAMPLE / "group.env", EXAMPLE / "practices")
    }
    assert dirs["cardiff-bay"] == (
        EXAMPLE / "practices" / "cardiff-bay" / "templates",
        Path("templates"),
    )
    assert dirs["leeds-riverside"] == (
        EXAMPLE / "practices" / "leeds-riverside" / "templates",
        Path("templates"),
    )


def test_practices_app_level_variable_in_a_practice_file_is_refused(tmp_path: Path) -> None:
    """An app-wide setting in a practice's file is an error naming the file and variable."""
    env_file, practices = _group(tmp_path)
    path = practices / "glasgow-west" / "practice.env"
    path.write_text(path.read_text() + "PSEUDONYM_KEY=another-key-of-at-least-32-characters\n")
    assert _problems(env_file, practices) == [
        f"{path}: PSEUDONYM_KEY: not a setting of one practice; set it in the main env file "
        "for the whole group"
    ]


def test_practices_invalid_value_names_the_file(tmp_path: Path) -> None:
    """A bad value in a practice's file is reported with that file and the variable."""
    env_file, practices = _group(tmp_path)
    path = practices / "cardiff-bay" / "practice.env"
    path.write_text(path.read_text() + "BANK_HOLIDAYS=GB-XYZ\n")
    [problem] = _problems(env_file, practices)
    assert problem.startswith(f"{path}: BANK_HOLIDAYS: ")


def test_practices_account_claimed_twice_names_both(tmp_path: Path) -> None:
    """Two practices with the same WhatsApp number id: one error naming both."""
    env_file, practices = _group(tmp_path)
    path = practices / "glasgow-west" / "practice.env"
    path.write_text(
        path.read_text().replace("109876543210002", "109876543210001"), encoding="utf-8"
    )
    assert _problems(env_file, practices) == [
        "PRACTICES_DIR: the whatsapp account 109876543210001 is claimed by glasgow-west and "
        "leeds-riverside; each account belongs to one practice"
    ]


@pytest.mark.parametrize("name", ["Glasgow_West", "a" * 41])
def test_practices_folder_name_must_be_a_slug(tmp_path: Path, name: str) -> None:
    """A folder whose name cannot be a slug is refused, naming the folder."""
    env_file, practices = _group(tmp_path)
    (practices / "glasgow-west").rename(practices / name)
    [problem] = _problems(env_file, practices)
    assert problem.startswith(f"{practices / name}: a practice's folder name must be")


def test_practices_folder_without_its_file_is_refused(tmp_path: Path) -> None:
    """A practice folder with no practice.env is an error naming the missing file."""
    env_file, practices = _group(tmp_path)
    (practices / "leeds-riverside" / "practice.env").unlink()
    [problem] = _problems(env_file, practices)
    assert problem.startswith(f"{practices / 'leeds-riverside' / 'practice.env'}: missing")


def test_practices_file_values_read_differently_are_warned(tmp_path: Path) -> None:
    """A quoted value in a practice's file gives a warning naming that file and line."""
    env_file, practices = _group(tmp_path)
    path = practices / "glasgow-west" / "practice.env"
    text = path.read_text()
    path.write_text(text + 'PRACTICE_NAME="Example Smiles Glasgow"\n')
    line = text.count("\n") + 1
    [glasgow] = [p for p in load_practices(env_file, practices) if p.slug == "glasgow-west"]
    assert [w.split(" starts with")[0] for w in glasgow.warnings] == [
        f"{path}:{line}: PRACTICE_NAME"
    ]
