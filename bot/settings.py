"""The one settings object, read from the environment and an optional env file (SPEC §2).

Nothing else in the bot reads the environment: ``load_settings`` is called once by the CLI
and the result is passed in. Every problem is reported as ``VARIABLE: message``; secrets never
appear in any message. The env file is read by ``bot.envfile`` (Docker's ``--env-file`` rules).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.adapter import SendConfig
from bot.envfile import read_env_file
from bot.errors import ConfigError
from bot.events import Channel
from bot.hours import Schedule, check_bank_holidays, parse_closed_dates, parse_opening_hours
from bot.languages import ENGLISH, LANGUAGES, parse_languages, parse_translation
from bot.templates import PracticeInfo
from bot.wording import check_urgent_help, urgent_help

__all__ = ["ChannelState", "Settings", "load_settings"]

_PLACEHOLDER_PREFIX = "CHANGE-ME"
_MIN_KEY_CHARS = 32
_SECRETS = (
    "meta_app_secret",
    "meta_verify_token",
    "instagram_app_secret",
    "whatsapp_access_token",
    "messenger_page_access_token",
    "instagram_access_token",
    "pseudonym_key",
)


@dataclass(frozen=True, slots=True)
class ChannelState:
    """Whether a channel is on, and whether it sends or only renders (dry-run)."""

    channel: Channel
    on: bool
    sends: bool

    @property
    def label(self) -> str:
        """``off``, ``dry-run`` or ``sending``, as ``check`` and the start-up log say it."""
        if not self.on:
            return "off"
        return "sending" if self.sends else "dry-run"


class Settings(BaseSettings):
    """Every variable of SPEC §2; field names are the variable names in lower case."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    meta_app_secret: SecretStr
    meta_verify_token: SecretStr
    meta_app_id: str | None = None
    instagram_app_secret: SecretStr | None = None
    graph_api_url: str = "https://graph.facebook.com"
    instagram_api_url: str = "https://graph.instagram.com"
    graph_api_version: str = Field(default="v25.0", pattern=r"^v\d+\.\d+$")

    whatsapp_phone_number_id: str | None = None
    whatsapp_access_token: SecretStr | None = None
    whatsapp_sends_per_second: float = Field(default=80.0, gt=0, le=1000)
    messenger_page_id: str | None = None
    messenger_page_access_token: SecretStr | None = None
    instagram_account_id: str | None = None
    instagram_access_token: SecretStr | None = None
    instagram_login: Literal["instagram", "facebook"] = "instagram"

    practice_name: str
    practice_phone: str
    practice_email: str | None = None
    practice_booking_url: str | None = None
    practice_website: str | None = None
    practice_timezone: str = "Europe/London"
    opening_hours: str = "Mon-Fri 09:00-17:00"
    closed_dates: str = ""
    bank_holidays: str = "GB-ENG"

    reply_cooldown_hours: float = Field(default=24.0, ge=0)
    staff_quiet_hours: float = Field(default=24.0, ge=0)
    reply_max_age_hours: float = Field(default=23.0, gt=0, le=24)
    pseudonym_key: SecretStr
    database_url: str = "sqlite:///data/practice-bot.sqlite3"
    contact_log_retention_days: int = Field(default=90, ge=1, le=3650)
    templates_dir: Path = Path("templates")
    practices_dir: Path | None = None
    host: str = "0.0.0.0"  # noqa: S104 - a container listens on all interfaces by design
    port: int = Field(default=8080, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] | None = None
    # The practice manager's page (SPEC §10): argon2 hashes from `practice-bot admin
    # hash-password`; the admin signs in to every practice, a manager to theirs alone.
    admin_password_hash: SecretStr | None = None
    manager_password_hash: SecretStr | None = None
    urgent_help: str | None = None  # completes "For urgent help, …"; default by nation
    reply_languages: str = "en"  # every reply in these languages, in order: "cy,en"
    wording_checks: Literal["warn", "strict"] = "warn"  # a text missing a point: warn or refuse

    @field_validator(
        "log_level",
        "log_format",
        "instagram_login",
        "bank_holidays",
        "wording_checks",
        mode="before",
    )
    @classmethod
    def _lower(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() == "none":
            return "none"
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("bank_holidays", mode="after")
    @classmethod
    def _bank_holidays(cls, value: str) -> str:
        code = value.upper() if value != "none" else value
        check_bank_holidays(code)
        return code

    @field_validator(*_SECRETS)
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        # A blank secret signs, verifies or authorises nothing: every webhook would get a 403
        # or every send a 401, long after start-up said all was well.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is blank: it holds only spaces or tabs")
        return value

    @field_validator("admin_password_hash", "manager_password_hash")
    @classmethod
    def _argon2(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        # `hash-password` prints every "$" twice, as docker compose's env_file needs; read
        # directly (docker run --env-file, the CLI) the doubled form is the same hash.
        text = value.get_secret_value().replace("$$", "$")
        if not text.startswith("$argon2id$"):
            raise ValueError(
                "is not an argon2id password hash; make one with "
                "`practice-bot admin hash-password` and paste the whole line it prints"
            )
        return SecretStr(text)

    @field_validator("meta_app_secret")
    @classmethod
    def _no_blank_entry(cls, value: SecretStr) -> SecretStr:
        if any(not part.strip() for part in value.get_secret_value().split(",")):
            raise ValueError(
                "has a blank entry in its comma-separated list (a stray or doubled comma): "
                "list the secrets as secret1,secret2"
            )
        return value

    @field_validator("pseudonym_key")
    @classmethod
    def _key_length(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < _MIN_KEY_CHARS:
            raise ValueError(f"must be at least {_MIN_KEY_CHARS} characters")
        return value

    @field_validator("practice_phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        digits = sum(ch.isdigit() for ch in value)
        allowed = set("+0123456789 -()")
        if not value.startswith("+") or digits < 7 or not set(value) <= allowed:
            raise ValueError("must be a phone number in international form, e.g. +44 20 7946 0000")
        return value

    @field_validator("practice_booking_url", "practice_website")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        # WhatsApp's cta_url and Messenger's web_url buttons open https addresses only.
        if value is not None and any(ch.isspace() for ch in value):
            # The env file keeps a value verbatim: a space left at the end of the line would
            # go into every button, which Meta refuses.
            raise ValueError(
                "contains a space or tab, which a web address never has "
                "(look for one at the end of the line)"
            )
        if value is not None and not value.startswith("https://"):
            raise ValueError(
                "must be a full web address starting with https:// "
                "(the booking buttons patients tap open secure addresses only)"
            )
        return value

    @field_validator("practice_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and ("@" not in value or " " in value.strip()):
            raise ValueError("must be an email address")
        return value

    @field_validator("graph_api_url", "instagram_api_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be a URL starting with https://")
        return value.rstrip("/")

    @field_validator("practice_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known IANA time zone, e.g. Europe/London") from None
        return value

    @field_validator("urgent_help")
    @classmethod
    def _urgent_help(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            check_urgent_help(value)
        return value

    @field_validator("reply_languages")
    @classmethod
    def _reply_languages(cls, value: str) -> str:
        return ",".join(parse_languages(value))

    @field_validator("opening_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        parse_opening_hours(value)
        return value

    @field_validator("closed_dates")
    @classmethod
    def _closed(cls, value: str) -> str:
        parse_closed_dates(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        path = value.removeprefix("sqlite:///") if value.startswith("sqlite:///") else None
        if path == ":memory:":
            # Every connection would open its own empty database, and all of it would be
            # lost on restart: webhooks would be acknowledged and never answered.
            raise ValueError(
                "an in-memory SQLite database is lost on restart and is not shared between "
                "the service's connections; use a file path, e.g. "
                "sqlite:///data/practice-bot.sqlite3"
            )
        if path is not None and (not path or path.endswith("/")):
            raise ValueError(
                "needs a database file name after sqlite:///, e.g. "
                "sqlite:///data/practice-bot.sqlite3"
            )
        return value

    @model_validator(mode="after")
    def _contact_route(self) -> Settings:
        if not self.practice_email and not self.practice_booking_url:
            raise ValueError(
                "PRACTICE_EMAIL: set PRACTICE_EMAIL or PRACTICE_BOOKING_URL "
                "(at least one is required)"
            )
        return self

    # -- derived views -------------------------------------------------------------------

    @property
    def app_secrets(self) -> tuple[bytes, ...]:
        """Every secret a webhook may be signed with (rotation list plus Instagram's)."""
        values = [s.strip() for s in self.meta_app_secret.get_secret_value().split(",")]
        if self.instagram_app_secret is not None:
            values.append(self.instagram_app_secret.get_secret_value().strip())
        return tuple(v.encode("utf-8") for v in values if v)

    @property
    def placeholder_secrets(self) -> bool:
        """True when a secret still holds the ``CHANGE-ME`` example value."""
        secrets = [
            self.meta_app_secret,
            self.meta_verify_token,
            self.instagram_app_secret,
            self.whatsapp_access_token,
            self.messenger_page_access_token,
            self.instagram_access_token,
            self.pseudonym_key,
        ]
        return any(
            part.strip().startswith(_PLACEHOLDER_PREFIX)
            for s in secrets
            if s is not None
            for part in s.get_secret_value().split(",")
        )

    def _ids_and_tokens(self) -> dict[Channel, tuple[str | None, SecretStr | None]]:
        return {
            Channel.WHATSAPP: (self.whatsapp_phone_number_id, self.whatsapp_access_token),
            Channel.MESSENGER: (self.messenger_page_id, self.messenger_page_access_token),
            Channel.INSTAGRAM: (self.instagram_account_id, self.instagram_access_token),
        }

    def channel_states(self) -> dict[Channel, ChannelState]:
        """On when the id is set; sends with a token unless secrets are placeholders."""
        live = not self.placeholder_secrets
        return {
            channel: ChannelState(channel, on=bool(id_), sends=bool(id_ and token and live))
            for channel, (id_, token) in self._ids_and_tokens().items()
        }

    def send_configs(self) -> dict[Channel, SendConfig]:
        """Send configuration for every channel that is on (token None in dry-run)."""
        states = self.channel_states()
        configs: dict[Channel, SendConfig] = {}
        for channel, (id_, token) in self._ids_and_tokens().items():
            if not id_:
                continue
            configs[channel] = SendConfig(
                channel=channel,
                account_id=id_,
                token=token.get_secret_value() if token and states[channel].sends else None,
                graph_api_url=self.graph_api_url,
                instagram_api_url=self.instagram_api_url,
                api_version=self.graph_api_version,
                instagram_login=self.instagram_login,
            )
        return configs

    def practice(self) -> PracticeInfo:
        """The practice details templates render."""
        return PracticeInfo(
            name=self.practice_name,
            phone=self.practice_phone,
            email=self.practice_email,
            booking_url=self.practice_booking_url,
            website=self.practice_website,
            urgent_help=urgent_help(self.bank_holidays, self.urgent_help),
            strict_wording=self.wording_checks == "strict",
            languages=self.languages,
            translated_urgent_help={
                code: urgent_help(self.bank_holidays, self.urgent_help, code)
                for code in self.languages
                if code != ENGLISH.code
            },
        )

    @property
    def languages(self) -> tuple[str, ...]:
        """``REPLY_LANGUAGES`` as codes, in order (checked when the settings load)."""
        return parse_languages(self.reply_languages)

    def schedule(self) -> Schedule:
        """Opening hours, closures and bank holidays in the practice's zone."""
        return Schedule(
            parse_opening_hours(self.opening_hours),
            ZoneInfo(self.practice_timezone),
            parse_closed_dates(self.closed_dates),
            self.bank_holidays,
        )

    def resolved_log_format(self) -> Literal["json", "console"]:
        """JSON unless set otherwise, or console when stdout is a terminal."""
        if self.log_format is not None:
            return self.log_format
        return "console" if sys.stdout.isatty() else "json"

    def warnings(self) -> list[str]:
        """Start-up warnings (never secrets): dry-run reasons."""
        notes: list[str] = []
        if self.placeholder_secrets:
            notes.append(
                "a secret still starts with CHANGE-ME (example configuration): "
                "every channel is in dry-run; replies are rendered and recorded, not sent"
            )
        if not self.placeholder_secrets:
            notes.extend(
                f"{state.channel.value} has no access token: dry-run"
                for state in self.channel_states().values()
                if state.on and not state.sends
            )
        notes.extend(
            f"URGENT_HELP has no {LANGUAGES[code].name} words, so {LANGUAGES[code].name} replies "
            f"say it in English; add them after a bar: URGENT_HELP=… | {code}: …"
            for code in self.languages
            if code != ENGLISH.code
            and self.urgent_help
            and self.urgent_help.strip()
            and code not in _translated(self.urgent_help)
        )
        if not any(state.on for state in self.channel_states().values()):
            notes.append(
                "no channel is on: set WHATSAPP_PHONE_NUMBER_ID, MESSENGER_PAGE_ID or "
                "INSTAGRAM_ACCOUNT_ID"
            )
        return notes


def _translated(words: str) -> set[str]:
    """The languages ``words`` (``URGENT_HELP``) gives after a bar."""
    return {found[0] for found in map(parse_translation, words.split("|")[1:]) if found}


def _problem_lines(error: ValidationError) -> list[str]:
    lines: list[str] = []
    for item in error.errors(include_input=False, include_url=False):
        loc = item.get("loc", ())
        message = str(item.get("msg", "is invalid"))
        message = message.removeprefix("Value error, ")
        if loc:
            variable = str(loc[0]).upper()
            if item.get("type") == "missing":
                message = "is required"
            lines.append(f"{variable}: {message}")
        else:
            # Model-level rules write their own ``VARIABLE: message`` line.
            lines.append(message)
    return lines


def _from_file(env_file: Path) -> dict[str, str]:
    """The file's settings that the environment does not set (an empty variable is unset)."""
    in_environment = {name.lower() for name, value in os.environ.items() if value}
    return {
        name.lower(): value
        for name, value in read_env_file(env_file).values.items()
        if value and name.lower() in Settings.model_fields and name.lower() not in in_environment
    }


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from ``overrides``, the environment and an optional env file, in
    that order of precedence.

    Raises:
        ConfigError: one ``VARIABLE: message`` line per problem (``path:line:col: message``
            for a line of the env file that is not ``KEY=value``).
    """
    values = _from_file(env_file) if env_file is not None else {}
    try:
        return Settings(**{**values, **overrides})
    except ValidationError as error:
        raise ConfigError(_problem_lines(error)) from None
