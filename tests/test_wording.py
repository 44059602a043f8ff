"""What every closed reply must say, by nation: the urgent-help route and 999 (SPEC §11)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters import REGISTRY
from bot.events import Channel
from bot.settings import Settings
from bot.templates import TemplateSet, check_templates
from tests.helpers.service import REPO, make_settings

SHIPPED = REPO / "templates"
# A Tuesday evening, closed everywhere, on no nation's bank holiday.
EVENING = datetime(2027, 3, 9, 19, 30, tzinfo=ZoneInfo("Europe/London"))


def _settings(tmp_path: Path, **values: str) -> Settings:
    return make_settings(tmp_path, templates_dir=SHIPPED, **values)


def _closed_reply(settings: Settings) -> str:
    texts = TemplateSet.load(SHIPPED, settings.practice(), settings.schedule(), REGISTRY.adapters)
    return texts.render(Channel.WHATSAPP, EVENING).text


@pytest.mark.parametrize(
    ("nation", "route"),
    [
        ("GB-ENG", "For urgent help, use NHS 111 online or call 111."),
        ("GB-WLS", "For urgent help, use NHS 111 Wales online or call 111."),
        ("GB-SCT", "For urgent help, call NHS 24 on 111."),
    ],
)
def test_urgent_help_closed_reply_names_the_nations_route_and_999(
    tmp_path: Path, nation: str, route: str
) -> None:
    """Out of hours, each nation's closed reply gives its own urgent route, then 999."""
    text = _closed_reply(_settings(tmp_path, bank_holidays=nation))
    assert route in text
    assert "In a life-threatening emergency, call 999." in text


def test_urgent_help_northern_ireland_uses_the_practices_own_wording(tmp_path: Path) -> None:
    """In Northern Ireland the practice's URGENT_HELP is the route; 999 stays."""
    own = "call the Belfast dental out-of-hours service on 028 9000 0000"
    text = _closed_reply(_settings(tmp_path, bank_holidays="GB-NIR", urgent_help=own))
    assert f"For urgent help, {own}." in text
    assert "In a life-threatening emergency, call 999." in text


def test_urgent_help_northern_ireland_without_wording_is_an_error(tmp_path: Path) -> None:
    """Without URGENT_HELP in Northern Ireland, check asks for it at the placeholder."""
    settings = _settings(tmp_path, bank_holidays="GB-NIR")
    errors, _ = check_templates(
        SHIPPED, settings.practice(), settings.schedule(), REGISTRY.adapters
    )
    assert len(errors) == 1
    assert errors[0].startswith(f"{SHIPPED / 'closed.txt'}:6:18: {{urgent_help}} has no wording")
    assert "set URGENT_HELP" in errors[0]


def test_urgent_help_setting_overrides_the_nations_default(tmp_path: Path) -> None:
    """URGENT_HELP wins over the default of BANK_HOLIDAYS."""
    own = "call our emergency line on 020 7946 0999"
    text = _closed_reply(_settings(tmp_path, bank_holidays="GB-ENG", urgent_help=own))
    assert f"For urgent help, {own}." in text
    assert "NHS 111" not in text
