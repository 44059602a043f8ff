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
from bot.wording import LONGEST_WORDS, POINTS, wording_notes
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


def _texts_without(tmp_path: Path, line: str) -> Path:
    """The shipped texts, with ``line`` taken out of the closed text."""
    folder = tmp_path / "texts"
    folder.mkdir()
    for name in ("reply.txt", "closed.txt"):
        text = (SHIPPED / name).read_text()
        (folder / name).write_text(text.replace(line, "") if name == "closed.txt" else text)
    return folder


def _check(folder: Path, settings: Settings) -> tuple[list[str], list[str]]:
    return check_templates(folder, settings.practice(), settings.schedule(), REGISTRY.adapters)


def test_wording_point_removed_is_a_warning_naming_the_file(tmp_path: Path) -> None:
    """A closed text that no longer says it is automatic gets a warning with file and line."""
    folder = _texts_without(tmp_path, " This is an automatic reply:")
    errors, warnings = _check(folder, _settings(tmp_path))
    assert errors == []
    assert [w for w in warnings if "automatic" in w] == [
        f"{folder / 'closed.txt'}:1:1: it no longer says that the reply is automatic (for "
        'example "This is an automatic reply."); every reply should, for the patient\'s safety'
    ]


def test_wording_point_removed_is_an_error_when_strict(tmp_path: Path) -> None:
    """With WORDING_CHECKS=strict the same text is refused."""
    folder = _texts_without(tmp_path, "In a life-threatening emergency, call 999.")
    errors, _ = _check(folder, _settings(tmp_path, wording_checks="strict"))
    assert errors == [
        f"{folder / 'closed.txt'}:1:1: it no longer says to call 999 in a life-threatening "
        'emergency (for example "In a life-threatening emergency, call 999."); every reply '
        "should, for the patient's safety"
    ]


@pytest.mark.parametrize(
    "phrasing",
    [
        "We are unable to provide medical advice through this inbox.",
        "There is no clinical advice by message, sorry.",
        "Ni allwn roi cyngor clinigol drwy neges.",
        "Does dim cyngor meddygol ar gael yma.",
    ],
)
def test_wording_points_are_recognised_by_meaning(phrasing: str) -> None:
    """Other phrasings of "no clinical advice", English or Welsh, make the point."""
    clinical = next(p for p in POINTS if "clinical advice" in p.says)
    assert clinical.made_by(phrasing)


@pytest.mark.parametrize(
    "phrasing",
    ["We can give clinical advice here.", "Gallwn roi cyngor clinigol drwy neges."],
)
def test_wording_clinical_advice_offered_does_not_make_the_point(phrasing: str) -> None:
    """Saying clinical advice *is* given, in English or Welsh, is not the point."""
    clinical = next(p for p in POINTS if "clinical advice" in p.says)
    assert not clinical.made_by(phrasing)


def test_wording_welsh_health_details_phrasings() -> None:
    """ "Peidiwch ag anfon" and "peidiwch â rhannu" health details both make the point."""
    details = next(p for p in POINTS if "health details" in p.says)
    assert details.made_by("Peidiwch ag anfon manylion iechyd yma.")
    assert details.made_by("Peidiwch â rhannu eich symptomau drwy neges.")


def test_wording_reply_text_needs_no_urgent_route(tmp_path: Path) -> None:
    """999 and the urgent route are asked of closed texts only."""
    assert wording_notes((SHIPPED / "reply.txt").read_text(), closed=False) == []
    assert len(wording_notes((SHIPPED / "reply.txt").read_text(), closed=True)) == 2


def test_wording_long_text_is_a_warning(tmp_path: Path) -> None:
    """A text of more words than patients read gets a warning saying how long it is."""
    text = (SHIPPED / "reply.txt").read_text() + " and more" * 60
    [note] = wording_notes(text, closed=False)
    assert note.startswith("it is 1")
    assert f"under {LONGEST_WORDS} words" in note
