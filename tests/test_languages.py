"""Replies in Welsh and English (SPEC §11 ``REPLY_LANGUAGES``): files, dates, limits, order."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from adapters import REGISTRY
from adapters._meta.adapter import BUTTON_TITLE_LIMIT
from bot.cli import main
from bot.events import Channel
from bot.hours import Schedule, format_next_opening, parse_opening_hours
from bot.languages import ENGLISH, WELSH, parse_languages
from bot.settings import Settings
from bot.store.sqlite import SQLiteStore
from bot.templates import TemplateSet, check_templates
from bot.templates.closures import parse_closures
from bot.templates.files import text_name, text_parts
from tests.helpers.fake_graph import FakeGraph
from tests.helpers.fixtures import fixture_bytes
from tests.helpers.service import (
    APP_SECRET,
    PSEUDONYM_KEY,
    REPO,
    VERIFY_TOKEN,
    make_settings,
    running_service,
)

SHIPPED = REPO / "templates"
LONDON = ZoneInfo("Europe/London")
# Christmas Day 2026 is a Friday, a bank holiday in Wales; the practice opens again on
# Tuesday 29 December (Boxing Day's substitute is Monday 28).
CHRISTMAS = datetime(2026, 12, 25, 11, 0, tzinfo=LONDON)
HOURS = "Mon-Thu 08:30-13:00,14:00-17:30; Fri 08:30-16:00"


def _settings(tmp_path: Path, templates: Path = SHIPPED, **values: str) -> Settings:
    defaults = {"bank_holidays": "GB-WLS", "reply_languages": "cy,en", "opening_hours": HOURS}
    return make_settings(tmp_path, templates_dir=templates, **{**defaults, **values})


def _texts(settings: Settings) -> TemplateSet:
    return TemplateSet.load(
        settings.templates_dir, settings.practice(), settings.schedule(), REGISTRY.adapters
    )


def _folder(tmp_path: Path, **files: str) -> Path:
    """The shipped texts (both languages) with ``files`` added or replaced (``_`` → ``.``)."""
    folder = tmp_path / "texts"
    folder.mkdir(exist_ok=True)
    for shipped in SHIPPED.glob("*.txt"):
        (folder / shipped.name).write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
    for name, text in files.items():
        (folder / f"{name.replace('_', '.')}.txt").write_text(text, encoding="utf-8")
    return folder


def _check(settings: Settings) -> tuple[list[str], list[str]]:
    return check_templates(
        settings.templates_dir, settings.practice(), settings.schedule(), REGISTRY.adapters
    )


def test_parse_languages_keeps_the_order_given() -> None:
    """``CY, en`` is Welsh first, then English."""
    assert parse_languages(" CY , en") == ("cy", "en")


@pytest.mark.parametrize(
    ("spec", "says"),
    [("fr", "'fr' is not a language"), ("cy,cy", "once"), (" , ", "at least one")],
)
def test_parse_languages_refuses_what_it_cannot_send(spec: str, says: str) -> None:
    """An unknown code, a repeated one or none at all is refused with a reason."""
    with pytest.raises(ValueError, match=says):
        parse_languages(spec)


def test_settings_reply_languages_unknown_is_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``check`` reports ``REPLY_LANGUAGES=fr`` as a problem naming the variable."""
    env = tmp_path / "practice.env"
    env.write_text(
        f"META_APP_SECRET={APP_SECRET}\nMETA_VERIFY_TOKEN={VERIFY_TOKEN}\n"
        f"PSEUDONYM_KEY={PSEUDONYM_KEY}\nPRACTICE_NAME=Test\nPRACTICE_PHONE=+44 20 7946 0000\n"
        f"TEMPLATES_DIR={SHIPPED}\nREPLY_LANGUAGES=fr\n",
        encoding="utf-8",
    )
    assert main(["check", "--env-file", str(env)]) == 1
    assert "REPLY_LANGUAGES: 'fr' is not a language" in capsys.readouterr().err


def test_welsh_opening_hours_use_babel_day_names() -> None:
    """Welsh opening hours name the days in Welsh: "i ddydd" after a range, times by commas."""
    hours = parse_opening_hours(HOURS + "; Sat 09:00-12:00")
    assert hours.describe(WELSH) == (
        "Dydd Llun i ddydd Iau 08:30\u201313:00, 14:00\u201317:30; "
        "Dydd Gwener 08:30\u201316:00; Dydd Sadwrn 09:00\u201312:00"
    )


def test_welsh_opening_hours_pairs_and_lists_of_days() -> None:
    """Two days are joined by "a", a list by commas and "a", "dydd" small inside a phrase."""
    hours = parse_opening_hours("Mon,Wed,Fri 09:00-17:00; Sat-Sun 10:00-12:00")
    assert hours.describe(WELSH) == (
        "Dydd Llun, dydd Mercher a dydd Gwener 09:00\u201317:00; "
        "Dydd Sadwrn a dydd Sul 10:00\u201312:00"
    )


def test_welsh_opening_hours_every_day() -> None:
    """A week of the same hours is ``Bob dydd`` in Welsh."""
    assert parse_opening_hours("Mon-Sun 09:00-17:00").describe(WELSH).startswith("Bob dydd ")


def test_welsh_next_opening_names_day_and_month() -> None:
    """The next opening in Welsh: ``Dydd Mawrth 29 Rhagfyr am 08:30``."""
    moment = datetime(2026, 12, 29, 8, 30, tzinfo=LONDON)
    assert format_next_opening(moment, WELSH) == "Dydd Mawrth 29 Rhagfyr am 08:30"
    assert format_next_opening(moment, ENGLISH) == "Tuesday 29 December at 08:30"


@pytest.mark.parametrize(
    ("day", "welsh"),
    [
        (datetime(2026, 12, 25, 11, tzinfo=LONDON), "Dydd Nadolig"),
        (datetime(2026, 12, 28, 11, tzinfo=LONDON), "Gŵyl San Steffan (diwrnod yn lle)"),
        (datetime(2027, 5, 3, 11, tzinfo=LONDON), "Gŵyl Banc Cyntaf Mai"),
        (datetime(2027, 8, 30, 11, tzinfo=LONDON), "Gŵyl Banc yr Haf"),
    ],
)
def test_welsh_closed_reason_names_the_bank_holiday(day: datetime, welsh: str) -> None:
    """``{closed_reason}`` gives a Welsh bank holiday's Welsh name."""
    schedule = Schedule(parse_opening_hours(HOURS), LONDON, bank_holidays="GB-WLS")
    assert schedule.closed_reason(day, WELSH) == welsh


@pytest.mark.parametrize("nation", ["GB-ENG", "GB-WLS"])
def test_welsh_names_every_regular_bank_holiday(nation: str) -> None:
    """Every bank holiday of England and Wales in the next ten years has a Welsh name."""
    schedule = Schedule(parse_opening_hours(HOURS), LONDON, bank_holidays=nation)
    names = {
        reason
        for year in range(2026, 2036, 2)
        for reason in schedule.closed_reasons(ENGLISH, datetime(year, 6, 1, tzinfo=LONDON).date())
    }
    assert names
    assert all(WELSH.holiday(name) for name in names), names


def test_welsh_closed_reason_without_a_welsh_name_is_empty() -> None:
    """A holiday with no Welsh name here (St Andrew's Day) gives nothing rather than English."""
    schedule = Schedule(parse_opening_hours(HOURS), LONDON, bank_holidays="GB-SCT")
    st_andrews = datetime(2027, 11, 30, 11, tzinfo=LONDON)
    assert schedule.closed_reason(st_andrews, ENGLISH) == "Saint Andrew's Day"
    assert schedule.closed_reason(st_andrews, WELSH) == ""


def test_reply_cy_en_carries_welsh_then_english(tmp_path: Path) -> None:
    """A cy,en reply is the Welsh text, a blank line, then the English text."""
    reply = _texts(_settings(tmp_path)).render(Channel.WHATSAPP, CHRISTMAS)
    welsh, english = reply.text.split("\n\nThank you for contacting", 1)
    assert welsh.startswith("Test Dental Practice: diolch am eich neges.")
    assert english.startswith(" Test Dental Practice.")
    assert reply.source == "closed.cy.txt+closed.txt"


def test_reply_en_cy_carries_english_then_welsh(tmp_path: Path) -> None:
    """``en,cy`` puts English first."""
    reply = _texts(_settings(tmp_path, reply_languages="en,cy")).render(Channel.WHATSAPP, CHRISTMAS)
    assert reply.text.startswith("Thank you for contacting")
    assert "\n\nTest Dental Practice: diolch am eich neges." in reply.text
    assert reply.source == "closed.txt+closed.cy.txt"


def test_reply_english_only_ignores_the_welsh_files(tmp_path: Path) -> None:
    """An English-only practice neither sends nor checks the Welsh texts, even broken ones."""
    folder = _folder(tmp_path, reply_cy="{unknown}")
    settings = _settings(tmp_path, folder, reply_languages="en")
    assert _check(settings) == ([], [])
    assert "Diolch" not in _texts(settings).render(Channel.WHATSAPP, CHRISTMAS).text


def test_check_missing_welsh_text_names_the_file(tmp_path: Path) -> None:
    """With cy,en a missing ``closed.cy.txt`` is an error naming it and the language."""
    folder = _folder(tmp_path)
    (folder / "closed.cy.txt").unlink()
    errors, _ = _check(_settings(tmp_path, folder))
    assert errors == [
        f"{folder / 'closed.cy.txt'}:1:1: file not found (the reply sent while the practice is "
        "closed, in Welsh (REPLY_LANGUAGES=cy,en))"
    ]


def test_check_shipped_welsh_and_english_make_every_point(tmp_path: Path) -> None:
    """The shipped texts in both languages pass every check, wording included, in Wales."""
    errors, warnings = _check(_settings(tmp_path, wording_checks="strict"))
    assert errors == []
    assert not [w for w in warnings if "it no longer says" in w]


def test_check_combined_length_over_instagram_limit_names_both_files(tmp_path: Path) -> None:
    """The limit applies to both languages together, and the error names both files."""
    folder = _folder(tmp_path, closed_cy=(SHIPPED / "closed.cy.txt").read_text() + "x" * 500)
    errors, _ = _check(_settings(tmp_path, folder))
    assert len(errors) == 1
    assert errors[0].startswith(
        f"{folder / 'closed.cy.txt'}:1:1: too long for Instagram together with closed.txt "
        "(REPLY_LANGUAGES=cy,en):"
    )


def test_render_welsh_channel_text_overrides_the_welsh_base(tmp_path: Path) -> None:
    """``closed.cy.instagram.txt`` is Instagram's Welsh text; the other apps keep the base."""
    short = "Neges awtomatig. Ffoniwch {phone}. Argyfwng: 999, brys: {urgent_help}."
    texts = _texts(_settings(tmp_path, _folder(tmp_path, closed_cy_instagram=short)))
    assert texts.render(Channel.INSTAGRAM, CHRISTMAS).source == "closed.cy.instagram.txt+closed.txt"
    assert texts.render(Channel.MESSENGER, CHRISTMAS).source == "closed.cy.txt+closed.txt"


def test_closures_welsh_label_after_a_bar() -> None:
    """``Christmas | cy: Nadolig`` is the label and its Welsh form."""
    closures, problems = parse_closures("2026-12-24..2027-01-02 Christmas | cy: Nadolig\n", "c")
    assert problems == []
    assert closures[0].label == "Christmas"
    assert closures[0].label_in("cy") == "Nadolig"


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("2026-12-24 Christmas | fr: Noël", "c:1:21: after '|' write a language"),
        ("2026-12-24 | cy: Nadolig", "c:1:12: write the English label before the bar"),
        ("2026-12-24 Cy", "c:1:12: the label 'Cy' is also the name of a language"),
    ],
)
def test_closures_welsh_label_mistakes_are_placed(line: str, says: str) -> None:
    """A wrong language, a Welsh label alone, or a label named like a language is refused."""
    _, problems = parse_closures(line + "\n", "c")
    assert len(problems) == 1
    assert str(problems[0]).startswith(says)


def test_render_closure_reason_in_each_language(tmp_path: Path) -> None:
    """During a labelled closure each language's ``{closed_reason}`` is its own label."""
    folder = _folder(
        tmp_path,
        closed_cy="Neges awtomatig: ar gau ({closed_reason}). Ffoniwch {phone}.",
        closed="Automatic reply: closed ({closed_reason}). Call {phone}.",
        closures="2026-12-24..2027-01-02 Christmas | cy: Nadolig\n",
    )
    text = _texts(_settings(tmp_path, folder)).render(Channel.WHATSAPP, CHRISTMAS).text
    assert "ar gau (Nadolig)." in text
    assert "closed (Christmas)." in text


def test_check_closure_without_welsh_label_warns(tmp_path: Path) -> None:
    """A labelled closure with no Welsh label gets a warning when replies are in Welsh."""
    folder = _folder(tmp_path, closures="2026-12-24..2027-01-02 Christmas\n")
    _, warnings = _check(_settings(tmp_path, folder))
    assert f"{folder / 'closures.txt'}: the closure 'Christmas' has no Welsh label" in "\n".join(
        warnings
    )


def test_render_closure_welsh_text_used_during_the_closure(tmp_path: Path) -> None:
    """``closed.christmas.cy.txt`` is the Welsh text during the closure labelled Christmas."""
    folder = _folder(
        tmp_path,
        closed_christmas_cy="Neges awtomatig: ar gau dros y Nadolig. Ffoniwch {phone}.",
        closures="2026-12-24..2027-01-02 Christmas | cy: Nadolig\n",
    )
    reply = _texts(_settings(tmp_path, folder)).render(Channel.WHATSAPP, CHRISTMAS)
    assert reply.source == "closed.christmas.cy.txt+closed.txt"
    assert reply.text.startswith("Neges awtomatig: ar gau dros y Nadolig.")


def _preview(tmp_path: Path, capsys: pytest.CaptureFixture[str], channel: str) -> str:
    env = tmp_path / "practice.env"
    env.write_text(
        f"META_APP_SECRET={APP_SECRET}\nMETA_VERIFY_TOKEN={VERIFY_TOKEN}\n"
        f"PSEUDONYM_KEY={PSEUDONYM_KEY}\n"
        "PRACTICE_NAME=Practis Deintyddol Llanfair\nPRACTICE_PHONE=+44 1248 123456\n"
        "PRACTICE_EMAIL=derbynfa@deintyddol-llanfair.example.cymru\n"
        "PRACTICE_BOOKING_URL=https://deintyddol-llanfair.example.cymru/archebu\n"
        f"OPENING_HOURS={HOURS}\nBANK_HOLIDAYS=GB-WLS\nREPLY_LANGUAGES=cy,en\n"
        f"TEMPLATES_DIR={SHIPPED}\nDATABASE_URL=sqlite:///{tmp_path}/bot.sqlite3\n"
        "WHATSAPP_PHONE_NUMBER_ID=1\nMESSENGER_PAGE_ID=2\nINSTAGRAM_ACCOUNT_ID=3\n",
        encoding="utf-8",
    )
    argv = ["templates", "preview", "--env-file", str(env), "--channel", channel]
    assert main([*argv, "--at", "2026-12-25T11:00"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("channel", [c.value for c in Channel])
def test_preview_cy_en_on_a_welsh_bank_holiday_fits_every_channel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], channel: str
) -> None:
    """On Christmas Day the preview shows Welsh then English, Welsh dates, within the limit."""
    out = _preview(tmp_path, capsys, channel)
    assert "from closed.cy.txt+closed.txt" in out
    assert "Byddwn yn agor eto: Dydd Mawrth 29 Rhagfyr am 08:30." in out
    assert "I gael help brys, defnyddiwch GIG 111 Cymru ar-lein neu ffoniwch 111." in out
    assert "We open again on Tuesday 29 December at 08:30." in out
    assert out.index("Llanfair: diolch am eich neges") < out.index("Thank you for contacting")
    size, limit = out.split(": from closed.cy.txt+closed.txt, ", 1)[1].split(" ")[0:3:2]
    assert int(size) <= int(limit)


async def test_webhook_cy_en_sends_one_message_with_both_languages(
    tmp_path: Path, graph: FakeGraph
) -> None:
    """A patient of a cy,en practice gets one message, Welsh then English, and the record
    names both files."""
    settings = make_settings(tmp_path, graph.url, reply_languages="cy,en", bank_holidays="GB-WLS")
    async with running_service(settings) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        store = service.store
        assert isinstance(store, SQLiteStore)
        (template,) = store.db.execute("SELECT template FROM contact_log").fetchone()
    (request,) = graph.requests
    sent = request.json
    # Short enough for the "Book online" button, or plain text.
    body = sent["interactive"]["body"]["text"] if "interactive" in sent else sent["text"]["body"]
    assert body.startswith("Test Dental Practice: diolch am eich neges.")
    assert "\n\nThank you for contacting Test Dental Practice." in body
    assert template in {"reply.cy.txt+reply.txt", "closed.cy.txt+closed.txt"}


def test_check_length_counts_the_longest_closure_label(tmp_path: Path) -> None:
    """A text's length is checked with the longest ``{closed_reason}`` it can say: here a
    closure's label, which pushes it over Instagram's limit."""
    phone = "+44 20 7946 0000"
    text = "x" * (1000 - 2 - len(phone) - 10) + " {closed_reason} {phone}"
    folder = _folder(tmp_path, closed_instagram=text)
    plain = _settings(
        tmp_path, folder, reply_languages="en", bank_holidays="none", urgent_help="call 111"
    )
    assert _check(plain)[0] == []
    (folder / "closures.txt").write_text("2027-01-04 Stocktaking and training\n")
    errors, _ = _check(plain)
    assert len(errors) == 1
    assert "closed.instagram.txt:1:1: too long for Instagram: 1014 bytes" in errors[0]


@pytest.mark.parametrize(
    ("nation", "route"),
    [
        ("GB-ENG", "I gael help brys, defnyddiwch NHS 111 ar-lein neu ffoniwch 111."),
        ("GB-WLS", "I gael help brys, defnyddiwch GIG 111 Cymru ar-lein neu ffoniwch 111."),
        ("GB-SCT", "I gael help brys, ffoniwch NHS 24 ar 111."),
    ],
)
def test_render_welsh_closed_reply_names_the_nations_route_and_999(
    tmp_path: Path, nation: str, route: str
) -> None:
    """Out of hours the Welsh text gives the nation's urgent route in Welsh, then 999."""
    evening = datetime(2027, 3, 9, 19, 30, tzinfo=LONDON)
    text = _texts(_settings(tmp_path, bank_holidays=nation)).render(Channel.WHATSAPP, evening).text
    assert route in text
    assert "Mewn argyfwng sy'n peryglu bywyd, ffoniwch 999." in text


def test_check_welsh_text_without_999_warns_naming_the_file(tmp_path: Path) -> None:
    """A Welsh closed text that drops 999 gets the wording warning with its file."""
    shipped = (SHIPPED / "closed.cy.txt").read_text(encoding="utf-8")
    folder = _folder(tmp_path, closed_cy=shipped.replace("ffoniwch 999", "ffoniwch ni"))
    _, warnings = _check(_settings(tmp_path, folder))
    assert f"{folder / 'closed.cy.txt'}:1:1: it no longer says to call 999" in "\n".join(warnings)


@pytest.mark.parametrize(
    ("languages", "titles"),
    [("cy,en", ["Archebu ar-lein", "Ffoniwch ni"]), ("en,cy", ["Book online", "Call us"])],
)
def test_buttons_are_worded_in_the_first_language(
    tmp_path: Path, languages: str, titles: list[str]
) -> None:
    """Messenger's buttons speak the reply's first language, within Meta's 20 characters."""
    folder = _folder(
        tmp_path,
        reply="Automatic reply: no clinical advice by message. Call {phone}.",
        reply_cy="Neges awtomatig: dim cyngor clinigol drwy neges. Ffoniwch {phone}.",
    )
    settings = _settings(
        tmp_path, folder, reply_languages=languages, opening_hours="Mon-Sun 00:00-24:00"
    )
    reply = _texts(settings).render(Channel.MESSENGER, CHRISTMAS.replace(month=11, day=30))
    buttons = REGISTRY.adapters[Channel.MESSENGER].buttons(reply)
    assert [button.title for button in buttons] == titles
    assert all(len(title) <= BUTTON_TITLE_LIMIT for title in titles)


def test_check_app_text_without_its_welsh_pair_warns(tmp_path: Path) -> None:
    """An English Instagram text with no Welsh one warns: the general Welsh text goes with it."""
    folder = _folder(tmp_path, reply_instagram="Automatic reply: no clinical advice. {phone}")
    _, warnings = _check(_settings(tmp_path, folder))
    assert (
        f"{folder / 'reply.instagram.txt'}: there is no Welsh reply.cy.instagram.txt to go with "
        "it, so the reply pairs it with the general Welsh text; add reply.cy.instagram.txt"
    ) in warnings


@pytest.mark.parametrize(
    "name",
    [
        "reply.txt",
        "closed.cy.txt",
        "reply.cy.whatsapp.txt",
        "closed.christmas.txt",
        "closed.staff-training.cy.instagram.txt",
    ],
)
def test_text_parts_reads_back_text_name(name: str) -> None:
    """Every text name reads back into the parts that make it."""
    parts = text_parts(name)
    assert parts is not None
    assert text_name(parts.kind, parts.channel, parts.closure, parts.language) == name


@pytest.mark.parametrize(
    "name", ["closed.en.txt", "reply.christmas.txt", "reply.a/b.txt", "closed..txt", "notes.txt"]
)
def test_text_parts_refuses_names_no_text_has(name: str) -> None:
    """English has no code in names, only closed texts have closures, and keys are plain."""
    assert text_parts(name) is None


def test_check_length_measures_the_reason_as_the_app_counts(tmp_path: Path) -> None:
    """Messenger counts characters, not bytes: the label with more characters is the one
    checked there, even when another has more bytes."""
    # 1970 + 2 spaces + 16 for the phone: 1998 with the 10-character label, 2003 with the
    # 15-character one; the first has more bytes (19).
    text = "x" * 1970 + " {closed_reason} {phone}"
    folder = _folder(tmp_path, closed_messenger=text)
    (folder / "closures.txt").write_text(
        "2027-01-04 Xŵŵŵŵŵŵŵŵŵ\n2027-01-05 abcdefghijklmno\n", encoding="utf-8"
    )
    settings = _settings(
        tmp_path,
        folder,
        reply_languages="en",
        bank_holidays="none",
        urgent_help="call 111",
        practice_phone="+44 20 7946 0000",
    )
    errors, _ = _check(settings)
    assert len(errors) == 1
    assert "closed.messenger.txt:1:1: too long for Messenger: 2003 characters" in errors[0]


def test_render_urgent_help_in_welsh_after_a_bar(tmp_path: Path) -> None:
    """``URGENT_HELP=… | cy: …`` gives each language its own words."""
    own = "call 028 9000 0000 | cy: ffoniwch 028 9000 0000"
    settings = _settings(tmp_path, bank_holidays="GB-NIR", urgent_help=own)
    text = _texts(settings).render(Channel.WHATSAPP, datetime(2027, 3, 9, 19, 30, tzinfo=LONDON))
    assert "I gael help brys, ffoniwch 028 9000 0000." in text.text
    assert "For urgent help, call 028 9000 0000." in text.text


def test_settings_urgent_help_without_welsh_warns(tmp_path: Path) -> None:
    """A cy,en practice whose URGENT_HELP has no Welsh is told its Welsh replies say English."""
    settings = _settings(tmp_path, bank_holidays="GB-NIR", urgent_help="call 028 9000 0000")
    assert any("URGENT_HELP has no Welsh words" in note for note in settings.warnings())


def test_settings_urgent_help_bad_translation_is_refused(tmp_path: Path) -> None:
    """Words after the bar must name a reply language."""
    with pytest.raises(ValidationError, match="after '\\|' write a language"):
        _settings(tmp_path, urgent_help="call 111 | fr: appelez le 111")
