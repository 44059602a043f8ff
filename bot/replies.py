"""The neutral reply: rendered text plus optional buttons, before a channel shapes it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.languages import ENGLISH

__all__ = ["Reply"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """What the patient gets: the full rendered text, and the contact routes for buttons.

    The adapter decides whether the text fits its channel's button form (SPEC §5); when it
    does not, or ``booking_url`` is empty, it sends ``text`` as plain text.
    """

    text: str
    booking_url: str | None = None
    phone: str | None = None
    source: str = ""  # which template file produced it, for previews and logs
    # The buttons' words, in the reply's first language (Meta allows 20 characters each).
    book_title: str = ENGLISH.book_online
    call_title: str = ENGLISH.call_us
