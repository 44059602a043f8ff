"""The languages a reply can be written in (SPEC §11 ``REPLY_LANGUAGES``): English and Welsh.

Day and month names come from Babel (CLDR), not from a table of our own. What CLDR does not
hold is kept here, each with its source: how a language joins days and times, the word
before the time, and the Welsh names of the UK's bank holidays (the ``holidays`` library
names them in English only).

Welsh day names are all "Dydd …" in CLDR. Inside a phrase they are written "dydd …", and
after "i" (to) "dydd" takes the soft mutation: "Dydd Llun i ddydd Gwener". Times are joined
with commas, because "a" (and) becomes "ac" before some numbers as they are spoken.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from babel import Locale
from babel.dates import format_datetime

__all__ = [
    "DEFAULT_LANGUAGES",
    "ENGLISH",
    "LANGUAGES",
    "WELSH",
    "Language",
    "join_words",
    "parse_languages",
    "parse_translation",
]

# Welsh names of the bank holidays in England and Wales as GOV.UK's Welsh bank holiday pages
# (gov.uk/gwyliau-banc) write them, keyed by the English name the ``holidays`` library
# gives. A holiday missing here (one-off days, Scotland's and Northern Ireland's own) gives
# no name, so a Welsh line with {closed_reason} is left out rather than shown in English.
_WELSH_HOLIDAYS = {
    "New Year's Day": "Dydd Calan",
    "Good Friday": "Dydd Gwener y Groglith",
    "Easter Monday": "Dydd Llun y Pasg",
    "May Day": "Gŵyl Banc Cyntaf Mai",
    "Spring Bank Holiday": "Gŵyl Banc y Gwanwyn",
    "Late Summer Bank Holiday": "Gŵyl Banc yr Haf",
    "Summer Bank Holiday": "Gŵyl Banc yr Haf",
    "Christmas Day": "Dydd Nadolig",
    "Boxing Day": "Gŵyl San Steffan",
}
_OBSERVED = " (observed)"
_TRANSLATION = re.compile(r"\s*(?P<code>[A-Za-z]{2})\s*:\s*(?P<text>.*)", flags=re.DOTALL)


def _same(name: str) -> str:
    return name


def _welsh_within(name: str) -> str:
    """A Welsh day name inside a phrase: "dydd Gwener"."""
    return name[:1].lower() + name[1:]


def _welsh_after_to(name: str) -> str:
    """A Welsh day name after "i" (to): "dydd" softens to "ddydd"."""
    within = _welsh_within(name)
    return f"d{within}" if within.startswith("dydd ") else within


@dataclass(frozen=True, slots=True)
class Language:
    """How replies in one language say dates, days and times."""

    code: str  # "en", "cy": as in REPLY_LANGUAGES and in file names (reply.cy.txt)
    name: str  # "Welsh", for messages to the manager
    locale: str  # Babel's locale for day and month names
    every_day: str
    at: str  # between the date and the time: "Tuesday 29 December at 09:00"
    to: str  # between the first and last day of a range
    and_: str  # before the last day of a list
    times_last_join: str  # before the last time of a list: " and "
    book_online: str  # the booking button's title (Meta allows 20 characters)
    call_us: str  # the phone button's title
    holidays: Mapping[str, str] | None = field(
        default=None, repr=False
    )  # None: the holidays library's names as they are
    observed: str = _OBSERVED  # after a substitute day's name
    within: Callable[[str], str] = field(default=_same, repr=False)  # a day's name inside a phrase
    after_to: Callable[[str], str] = field(default=_same, repr=False)  # a day's name after ``to``
    _locale: Locale = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_locale", Locale.parse(self.locale))

    @property
    def file_part(self) -> str:
        """What names this language's texts: ``.cy`` in ``reply.cy.txt``; English has none."""
        return "" if self.code == ENGLISH_CODE else f".{self.code}"

    def day_name(self, weekday: int) -> str:
        """The day's name (0 = Monday) as a sentence would start it."""
        return str(self._locale.days["format"]["wide"][weekday])

    def days(self, runs: Sequence[Sequence[int]]) -> str:
        """Runs of weekdays (0 = Monday) as a phrase: ``Monday to Thursday and Saturday``,
        ``Dydd Llun i ddydd Iau a dydd Sadwrn``."""
        texts = []
        for number, run in enumerate(runs):
            first = self.day_name(run[0])
            if number:
                first = self.within(first)
            if len(run) == 1:
                texts.append(first)
                continue
            last = self.within(self.day_name(run[-1]))
            if len(run) == 2:
                texts.append(f"{first} {self.and_} {last}")
            else:
                texts.append(f"{first} {self.to} {self.after_to(last)}")
        return join_words(texts, f" {self.and_} ")

    def times(self, items: Sequence[str]) -> str:
        """``08:30-13:00 and 14:00-17:30`` (Welsh: with a comma)."""
        return join_words(items, self.times_last_join)

    def date_and_time(self, moment: datetime) -> str:
        """``Tuesday 29 December at 09:00``, ``Dydd Mawrth 29 Rhagfyr am 09:00``: the wall
        time of ``moment``, no leading zero on the day."""
        day = format_datetime(moment, "EEEE d MMMM", locale=self._locale)
        return f"{day} {self.at} {moment:%H:%M}"

    @property
    def longest_date_and_time(self) -> str:
        """The longest text :meth:`date_and_time` can give, for the texts' length checks."""
        days = self._locale.days["format"]["wide"].values()
        months = self._locale.months["format"]["wide"].values()
        return f"{max(days, key=len)} 30 {max(months, key=len)} {self.at} 23:59"

    def holiday(self, name: str) -> str:
        """A bank holiday's name (as the ``holidays`` library gives it) in this language;
        empty when this language has no name for it."""
        if self.holidays is None:
            return name
        observed = name.endswith(_OBSERVED)
        own = self.holidays.get(name.removesuffix(_OBSERVED), "")
        return f"{own}{self.observed}" if own and observed else own


def join_words(items: Sequence[str], last: str) -> str:
    """``a, b`` then ``last`` then ``c``: a list in a sentence ("" when it is empty)."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + last + items[-1]


ENGLISH_CODE = "en"
ENGLISH = Language(
    code=ENGLISH_CODE,
    name="English",
    locale="en_GB",
    every_day="Every day",
    at="at",
    to="to",
    and_="and",
    times_last_join=" and ",
    book_online="Book online",
    call_us="Call us",
)
WELSH = Language(
    code="cy",
    name="Welsh",
    locale="cy",
    every_day="Bob dydd",
    at="am",
    to="i",
    and_="a",
    times_last_join=", ",
    book_online="Archebu ar-lein",
    call_us="Ffoniwch ni",
    holidays=_WELSH_HOLIDAYS,
    observed=" (diwrnod yn lle)",
    within=_welsh_within,
    after_to=_welsh_after_to,
)
LANGUAGES: dict[str, Language] = {language.code: language for language in (ENGLISH, WELSH)}
DEFAULT_LANGUAGES = (ENGLISH_CODE,)


def parse_languages(spec: str) -> tuple[str, ...]:
    """``cy,en`` → ``("cy", "en")``: the languages of every reply, in order.

    Raises:
        ValueError: an unknown code, a code given twice, or none at all.
    """
    codes = [part.strip().lower() for part in spec.split(",") if part.strip()]
    if not codes:
        raise ValueError("name at least one language, e.g. en, or cy,en for Welsh then English")
    for code in codes:
        if code not in LANGUAGES:
            known = ", ".join(f"{c} ({lang.name})" for c, lang in LANGUAGES.items())
            raise ValueError(f"{code!r} is not a language replies can be written in; use {known}")
    if len(set(codes)) != len(codes):
        raise ValueError("each language is listed once, e.g. cy,en")
    return tuple(codes)


def parse_translation(part: str) -> tuple[str, str] | None:
    """`` cy: Nadolig`` → ``("cy", "Nadolig")``: words in another reply language, as written
    after a ``|`` (a closure's label, ``URGENT_HELP``); ``None`` when ``part`` does not name
    one of the other languages."""
    match = _TRANSLATION.fullmatch(part)
    if match is None:
        return None
    code = match["code"].lower()
    if code not in LANGUAGES or code == ENGLISH_CODE:
        return None
    return code, " ".join(match["text"].split())
