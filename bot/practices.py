"""A dental group in one deployment: the practices under ``PRACTICES_DIR`` (SPEC §9).

Each subfolder ``<slug>`` is one practice. Its ``practice.env`` sets what differs for that
practice (its details, channel ids and tokens, hours, closures, cooldowns); whatever it leaves
out comes from the main env file, the group's defaults. What belongs to the app as a whole —
Meta's app secret and verify token, the pseudonym key, the store, the listen address, logging —
is set in the main file only. A practice's ``templates/`` folder overrides the group's texts
file by file. Every problem names the file and the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.envfile import read_env_file
from bot.errors import ConfigError
from bot.events import Channel
from bot.settings import Settings, load_settings
from bot.templates import LiveTemplates

__all__ = [
    "PRACTICE_FILE",
    "PRACTICE_VARIABLES",
    "Practice",
    "ServedPractice",
    "load_practices",
    "practices_dir",
]

PRACTICE_FILE = "practice.env"
_SLUG = re.compile(r"[a-z0-9-]{1,40}")

# What a practice's own file may set; everything else is the group's, in the main file.
PRACTICE_VARIABLES = frozenset(
    {
        "PRACTICE_NAME",
        "PRACTICE_PHONE",
        "PRACTICE_EMAIL",
        "PRACTICE_BOOKING_URL",
        "PRACTICE_WEBSITE",
        "PRACTICE_TIMEZONE",
        "WHATSAPP_PHONE_NUMBER_ID",
        "WHATSAPP_ACCESS_TOKEN",
        "WHATSAPP_SENDS_PER_SECOND",
        "MESSENGER_PAGE_ID",
        "MESSENGER_PAGE_ACCESS_TOKEN",
        "INSTAGRAM_ACCOUNT_ID",
        "INSTAGRAM_ACCESS_TOKEN",
        "INSTAGRAM_LOGIN",
        "OPENING_HOURS",
        "CLOSED_DATES",
        "BANK_HOLIDAYS",
        "REPLY_COOLDOWN_HOURS",
        "STAFF_QUIET_HOURS",
        "REPLY_MAX_AGE_HOURS",
        "CONTACT_LOG_RETENTION_DAYS",
    }
)


@dataclass(frozen=True, slots=True)
class Practice:
    """One practice of a group: its slug, its settings (the group's defaults under its own
    values) and the folders its texts come from, its own first."""

    slug: str
    settings: Settings
    templates_dirs: tuple[Path, ...]
    warnings: tuple[str, ...] = ()  # values of its file another reader would take otherwise


def load_practices(env_file: Path | None, practices_dir: Path) -> list[Practice]:
    """Every practice under ``practices_dir``, in slug order.

    Raises:
        ConfigError: one line per problem, each naming its file (and variable): a folder
            name that is not a slug, a missing ``practice.env``, a variable a practice may not
            set, an invalid value, or an account id two practices claim.
    """
    if not practices_dir.is_dir():
        raise ConfigError([f"PRACTICES_DIR: {practices_dir} is not a folder"])
    problems: list[str] = []
    practices: list[Practice] = []
    for folder in sorted(p for p in practices_dir.iterdir() if p.is_dir()):
        if not _SLUG.fullmatch(folder.name):
            problems.append(
                f"{folder}: a practice's folder name must be 1 to 40 lower-case letters, "
                "digits or dashes (it becomes the practice's name in exports and metrics)"
            )
            continue
        try:
            practices.append(_load_one(env_file, folder))
        except ConfigError as error:
            problems.extend(error.problems)
    if not practices and not problems:
        problems.append(f"PRACTICES_DIR: {practices_dir} has no practice folders")
    problems.extend(_claimed_twice(practices))
    if problems:
        raise ConfigError(problems)
    return practices


def _load_one(env_file: Path | None, folder: Path) -> Practice:
    path = folder / PRACTICE_FILE
    if not path.is_file():
        raise ConfigError([f"{path}: missing: each practice's folder needs its {PRACTICE_FILE}"])
    read = read_env_file(path)
    values = read.values
    not_allowed = sorted(name for name in values if name not in PRACTICE_VARIABLES)
    if not_allowed:
        raise ConfigError(
            [
                f"{path}: {name}: not a setting of one practice; set it in the main env file "
                "for the whole group"
                for name in not_allowed
            ]
        )
    overrides = {name.lower(): value for name, value in values.items() if value}
    try:
        settings = load_settings(env_file, **overrides)
    except ConfigError as error:
        raise ConfigError([f"{path}: {line}" for line in error.problems]) from None
    own = folder / "templates"
    dirs = (own, settings.templates_dir) if own.is_dir() else (settings.templates_dir,)
    return Practice(
        slug=folder.name, settings=settings, templates_dirs=dirs, warnings=tuple(read.warnings)
    )


def _claimed_twice(practices: Sequence[Practice]) -> list[str]:
    """One line for every account id that more than one practice claims."""
    owners: dict[tuple[Channel, str], list[str]] = {}
    for practice in practices:
        for channel, config in practice.settings.send_configs().items():
            owners.setdefault((channel, config.account_id), []).append(practice.slug)
    return [
        f"PRACTICES_DIR: the {channel.value} account {account} is claimed by "
        f"{' and '.join(slugs)}; each account belongs to one practice"
        for (channel, account), slugs in sorted(owners.items())
        if len(slugs) > 1
    ]


@dataclass(frozen=True, slots=True)
class ServedPractice:
    """One practice as the service runs it: its slug ("" alone), settings and live texts."""

    slug: str
    settings: Settings
    templates: LiveTemplates

    @property
    def channels(self) -> str:
        """``whatsapp:sending,messenger:dry-run,…`` for the start-up line."""
        return ",".join(
            f"{state.channel.value}:{state.label}"
            for state in self.settings.channel_states().values()
        )


def practices_dir(env_file: Path | None) -> Path | None:
    """``PRACTICES_DIR`` from the environment, else from the env file; None: one practice."""
    value = os.environ.get("PRACTICES_DIR") or (
        read_env_file(env_file).values.get("PRACTICES_DIR") if env_file is not None else None
    )
    return Path(value) if value else None
