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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.adapter import Adapter, SendConfig
from bot.envfile import read_env_file
from bot.errors import ConfigError
from bot.events import Channel
from bot.ingest import IngestPolicy, PracticeRules
from bot.job import Queue
from bot.replies import Reply
from bot.settings import Settings, load_settings
from bot.templates import LiveTemplates
from bot.worker import MESSENGER_RATE

__all__ = [
    "LIVE_VARIABLES",
    "PRACTICE_FILE",
    "PRACTICE_VARIABLES",
    "GroupFiles",
    "Practice",
    "Practices",
    "ServedPractice",
    "changed_live",
    "load_practices",
    "practices_dir",
    "restart_variables",
    "serve_practice",
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
        "MANAGER_PASSWORD_HASH",
        "URGENT_HELP",
        "REPLY_LANGUAGES",
    }
)
# What a running group takes up when its files change; the rest of the main file (secrets,
# the store, the listen address, logging, Graph's address) is read once, at start-up.
LIVE_VARIABLES = PRACTICE_VARIABLES | {"TEMPLATES_DIR"}


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
    # Its own folder is read first even before it exists: a text the manager's page saves
    # there later is then picked up live.
    dirs = (folder / "templates", settings.templates_dir)
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


def serve_practice(
    practice: Practice, channels: Mapping[Channel, Adapter], *, strict: bool = True
) -> ServedPractice:
    """``practice`` with its texts loaded, ready to serve (see ``LiveTemplates``: not
    ``strict``, broken texts wait for the last good set from the store).

    Raises:
        InvalidTemplatesError: ``strict``, and its texts do not validate.
    """
    settings = practice.settings
    templates = LiveTemplates(
        settings.templates_dir,
        settings.practice(),
        settings.schedule(),
        channels=channels,
        overlays=practice.templates_dirs[:-1],
        strict=strict,
    )
    return ServedPractice(practice.slug, settings, templates)


class Practices:
    """The practices the service answers for now, and what routing, sending and pacing need
    to know of them. Built whole: when a group's files change, a new one replaces it."""

    def __init__(self, served: Sequence[ServedPractice], *, app_id: str | None) -> None:
        self.served = tuple(served)
        self.group = bool(self.served[0].slug)
        self._by_slug = {practice.slug: practice for practice in self.served}
        self._configs = {
            Queue(practice.slug, channel): config
            for practice in self.served
            for channel, config in practice.settings.send_configs().items()
        }
        # Each practice's own limit applied at ingest; a job already queued is sent until
        # the longest of them, which stays within Meta's 24 h window.
        self.max_age = max(p.settings.reply_max_age_hours for p in self.served) * 3600
        routes: dict[tuple[Channel, str], PracticeRules] = {}
        for practice in self.served:
            rules = PracticeRules(
                practice=practice.slug,
                cooldown=practice.settings.reply_cooldown_hours * 3600,
                staff_quiet=practice.settings.staff_quiet_hours * 3600,
                max_age=practice.settings.reply_max_age_hours * 3600,
            )
            for channel, config in practice.settings.send_configs().items():
                routes[(channel, config.account_id)] = rules
        self.policy = IngestPolicy(routes=routes, app_id=app_id, group=self.group)

    def send_config(self, queue: Queue) -> SendConfig | None:
        """How ``queue``'s replies are sent; None when its channel is off or its practice
        has left the group."""
        return self._configs.get(queue)

    def render(self, queue: Queue, at: datetime) -> Reply:
        """The reply ``queue``'s practice gives on its channel at ``at``."""
        return self._by_slug[queue.practice].templates.render(queue.channel, at)

    def rates(self) -> dict[Queue, float]:
        """Each queue's configured pace: sends per second."""
        return {
            queue: (
                self._by_slug[queue.practice].settings.whatsapp_sends_per_second
                if queue.channel is Channel.WHATSAPP
                else MESSENGER_RATE
            )
            for queue in self._configs
        }

    def retention(self) -> dict[str, int]:
        """Each practice's retention in days, for a group's purge (empty for one practice)."""
        return {p.slug: p.settings.contact_log_retention_days for p in self.served if p.slug}


@dataclass(frozen=True, slots=True)
class GroupFiles:
    """Where a group's configuration is read from, to read it again when it changes."""

    env_file: Path | None
    folder: Path

    def load(self) -> list[Practice]:
        """The group's practices as the files say now (see :func:`load_practices`)."""
        return load_practices(self.env_file, self.folder)

    def fingerprint(self) -> frozenset[tuple[str, int, int]]:
        """(path, mtime_ns, size) of the main file and every practice's file: stat calls only.

        A practice folder added or removed changes it too.
        """
        paths = [self.env_file] if self.env_file is not None else []
        try:
            with os.scandir(self.folder) as entries:
                paths += [Path(e.path) / PRACTICE_FILE for e in entries if e.is_dir()]
        except OSError:
            pass
        stats: set[tuple[str, int, int]] = set()
        for path in paths:
            try:
                st = path.stat()
            except OSError:
                stats.add((str(path), -1, -1))
                continue
            stats.add((str(path), st.st_mtime_ns, st.st_size))
        return frozenset(stats)


def restart_variables(running: Settings, loaded: Settings) -> list[str]:
    """The main file's variables whose new value (in ``loaded``) takes effect only when the
    service restarts."""
    return [name for name in _changed(running, loaded) if name not in LIVE_VARIABLES]


def changed_live(running: Settings, loaded: Settings) -> bool:
    """Whether a practice's settings changed in what a running group takes up."""
    return any(name in LIVE_VARIABLES for name in _changed(running, loaded))


def _changed(running: Settings, loaded: Settings) -> list[str]:
    return sorted(
        name.upper()
        for name in Settings.model_fields
        if getattr(running, name) != getattr(loaded, name)
    )


def practices_dir(env_file: Path | None) -> Path | None:
    """``PRACTICES_DIR`` from the environment, else from the env file; None: one practice."""
    value = os.environ.get("PRACTICES_DIR") or (
        read_env_file(env_file).values.get("PRACTICES_DIR") if env_file is not None else None
    )
    return Path(value) if value else None
