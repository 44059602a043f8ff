"""What every reply must say (SPEC §11): the points a text must keep, and the urgent-help route
by nation.

NHS urgent care is reached differently in each UK nation: NHS 111 in England, NHS 111 Wales,
NHS 24 (on 111) in Scotland. Northern Ireland's dental out-of-hours care is arranged by
area, not through one number, so it has no default: the practice says its own in
``URGENT_HELP``. Each value completes "For urgent help, …".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.languages import parse_translation

__all__ = [
    "LONGEST_WORDS",
    "POINTS",
    "URGENT_HELP_BY_NATION",
    "WELSH_URGENT_HELP_BY_NATION",
    "Point",
    "check_urgent_help",
    "urgent_help",
    "wording_notes",
]

URGENT_HELP_BY_NATION = {
    "GB-ENG": "use NHS 111 online or call 111",
    "GB-WLS": "use NHS 111 Wales online or call 111",
    "GB-SCT": "call NHS 24 on 111",
}
# The same routes in Welsh: "I gael help brys, …". NHS 111 Wales is GIG 111 Cymru in Welsh;
# NHS 111 (England) and NHS 24 (Scotland) are names and stay as they are.
WELSH_URGENT_HELP_BY_NATION = {
    "GB-ENG": "defnyddiwch NHS 111 ar-lein neu ffoniwch 111",
    "GB-WLS": "defnyddiwch GIG 111 Cymru ar-lein neu ffoniwch 111",
    "GB-SCT": "ffoniwch NHS 24 ar 111",
}
_BY_LANGUAGE = {"en": URGENT_HELP_BY_NATION, "cy": WELSH_URGENT_HELP_BY_NATION}


def urgent_help(bank_holidays: str, own: str | None, language: str = "en") -> str:
    """``{urgent_help}`` in ``language``: the practice's own wording if set (``URGENT_HELP``,
    with its Welsh after a bar, ``call … | cy: ffoniwch …``; the English where it has none),
    else its nation's (``BANK_HOLIDAYS``), else empty."""
    if own and own.strip():
        first, *others = own.split("|")
        translations = dict(filter(None, map(parse_translation, others)))
        return translations.get(language) or " ".join(first.split())
    return _BY_LANGUAGE[language].get(bank_holidays.upper(), "")


def check_urgent_help(own: str) -> None:
    """Raises ValueError unless ``own`` (``URGENT_HELP``) is words, then optionally ``| cy: …``
    for each other language."""
    first, *others = own.split("|")
    if not first.strip():
        raise ValueError("write what patients should do first, e.g. call 111")
    for part in others:
        found = parse_translation(part)
        if found is None or not found[1]:
            raise ValueError(
                "after '|' write a language and the words in it, e.g. "
                "URGENT_HELP=call 0300 123 4567 | cy: ffoniwch 0300 123 4567"
            )


@dataclass(frozen=True, slots=True)
class Point:
    """One thing every reply (or every closed reply) must tell the patient, recognised by
    meaning: any of a few phrasings, in English or Welsh, counts."""

    says: str  # "that the reply is automatic", for the warning
    example: str
    phrasings: tuple[re.Pattern[str], ...]
    closed_only: bool = False

    def made_by(self, text: str) -> bool:
        """Whether ``text`` (a template as written) makes this point."""
        return any(phrasing.search(text) for phrasing in self.phrasings)


def _any(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


# An apostrophe typed straight or curly, as editors and phones write it.
_APOS = "['\u2019]?"
_NOT = (
    rf"(?:can{_APOS}t|cannot|can not|are unable to|aren{_APOS}t able to|don{_APOS}t|do not"
    rf"|won{_APOS}t|will not)"
)
POINTS = (
    Point(
        "that the reply is automatic",
        '"This is an automatic reply."',
        _any(r"\bautomatic", r"\bautomated\b", r"\bauto-?reply", r"\bawtomatig"),
    ),
    Point(
        "that clinical advice can't be given by message",
        '"We can\'t give clinical advice by message."',
        _any(
            rf"{_NOT}\s+(?:give|provide|offer)\s+(?:any\s+)?(?:clinical|medical|dental)\s+advice",
            r"\bno\s+(?:clinical|medical|dental)\s+advice",
            r"(?:\bni\s+(?:allwn|fedrwn|gallwn)|\ballwn\s+ni\s+ddim|\bmethu|\bdim)\b"
            r"[^.\n]{0,30}cyngor\s+(?:clinigol|meddygol)",
        ),
    ),
    Point(
        "not to send health details",
        '"Please don\'t send health details here."',
        _any(
            rf"(?:don{_APOS}t|do not|never|avoid)\s+(?:send|share|include|message)"
            r"[^.\n]{0,40}(?:health|medical|clinical|symptom|personal)",
            r"peidiwch\s+(?:ag|â|a)\s+(?:anfon|rhannu)[^.\n]{0,40}(?:iechyd|meddygol|symptomau)",
        ),
    ),
    Point(
        "where to get urgent help",
        '"For urgent help, {urgent_help}."',
        _any(r"\{urgent_help\}", r"\b111\b", r"NHS\s*24", r"\burgent\b", r"\bbrys"),
        closed_only=True,
    ),
    Point(
        "to call 999 in a life-threatening emergency",
        '"In a life-threatening emergency, call 999."',
        _any(r"\b999\b"),
        closed_only=True,
    ),
)
# NHS guidance for messages to patients: short, the most important point first, one action.
LONGEST_WORDS = 120


def wording_notes(source: str, *, closed: bool) -> list[str]:
    """What a text (as written) no longer says, and whether it is long for its purpose."""
    notes = [
        f"it no longer says {point.says} (for example {point.example}); every reply "
        "should, for the patient's safety"
        for point in POINTS
        if (closed or not point.closed_only) and not point.made_by(source)
    ]
    words = len(re.findall(r"\S+", source))
    if words > LONGEST_WORDS:
        notes.append(
            f"it is {words} words long; patients read the first lines of a message: keep it "
            f"under {LONGEST_WORDS} words, the most important point first and one way to act"
        )
    return notes
