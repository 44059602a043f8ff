"""The neutral reply: rendered text plus optional buttons, before a channel shapes it."""

from __future__ import annotations

from dataclasses import dataclass

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
