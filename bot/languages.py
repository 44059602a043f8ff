"""The languages a reply can be written in (SPEC §11 ``REPLY_LANGUAGES``): English and Welsh.

Day and month names come from Babel (CLDR), not from a table of our own. What CLDR does not
hold is kept here, each with its source: how a language joins days and times, the word
before the time, and the Welsh names of the UK's bank holidays (the ``holidays`` library
names them in English only).

Welsh writes day ranges and lists with an en dash and commas rather than "i" and "a": a
range word would mutate the next day's name ("i ddydd Gwener") and "a" becomes "ac" before
a vowel; the dash and comma read correctly whatever follows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    "parse_languages",
]

EN_DASH = "\u2013"

# Welsh names of the bank holidays in England and Wales, as GOV.UK's Welsh pages
# (gov.uk/gwyliau-banc) and Business Wales (businesswales.gov.wales/cy) write them, keyed by
# the English name the ``holidays`` library gives. A holiday missing here (one-off days,
# Scotland's and Northern Ireland's own) gives no name, so a Welsh line with
# {closed_reason} is left out rather than shown in English.
_WELSH_HOLIDAYS = {
    "New Year's Day": "Dydd Calan",
    "Good Friday": "Dydd Gwener y Groglith",
    "Easter Monday": "Dydd Llun y Pasg",
    "May Day": "Gŵyl Banc Calan Mai",
    "Spring Bank Holiday": "Gŵyl Banc y Gwanwyn",
    "Late Summer Bank Holiday": "Gŵyl Banc yr Haf",
    "Summer Bank Holiday": "Gŵyl Banc yr Haf",
    "Christmas Day": "Dydd Nadolig",
    "Boxing Day": "Gŵyl San Steffan",
}
_OBSERVED = " (observed)"


@dataclass(frozen=True, slots=True)
class Language:
    """How replies in one language say dates, days and times."""

    code: str  # "en", "cy": as in REPLY_LANGUAGES and in file names (reply.cy.txt)
    name: str  # "Welsh", for messages to the manager
    locale: str  # Babel's locale for day and month names
    every_day: str
    at: str  # between the date and the time: "Tuesday 29 December at 09:00"
    day_range: str  # "{first} to {last}"
    day_pair: str  # "{first} and {last}"
    last_join: str  # before the last item of a list: " and "
    book_online: str  # the booking button's title (Meta allows 20 characters)
    call_us: str  # the phone button's title
    holidays: Mapping[str, str] | None = None  # None: the holidays library's names as they are
    observed: str = _OBSERVED  # after a substitute day's name
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

    def join(self, items: Sequence[str]) -> str:
        """``a, b and c`` (Welsh: ``a, b, c``)."""
        if len(items) == 1:
            return items[0]
        return ", ".join(items[:-1]) + self.last_join + items[-1]

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


ENGLISH_CODE = "en"
ENGLISH = Language(
    code=ENGLISH_CODE,
    name="English",
    locale="en_GB",
    every_day="Every day",
    at="at",
    day_range="{first} to {last}",
    day_pair="{first} and {last}",
    last_join=" and ",
    book_online="Book online",
    call_us="Call us",
)
WELSH = Language(
    code="cy",
    name="Welsh",
    locale="cy",
    every_day="Bob dydd",
    at="am",
    day_range=f"{{first}}{EN_DASH}{{last}}",
    day_pair="{first}, {last}",
    last_join=", ",
    book_online="Archebu ar-lein",
    call_us="Ffoniwch ni",
    holidays=_WELSH_HOLIDAYS,
    observed=" (diwrnod yn ei le)",
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
