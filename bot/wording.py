"""What every reply must say, by nation: the urgent-help route (SPEC §11).

NHS urgent care is reached differently in each UK nation: NHS 111 in England, NHS 111 Wales,
NHS 24 (on 111) in Scotland. Northern Ireland's dental out-of-hours care is arranged by
area, not through one number, so it has no default: the practice says its own in
``URGENT_HELP``. Each value completes "For urgent help, …".
"""

from __future__ import annotations

__all__ = ["URGENT_HELP_BY_NATION", "urgent_help"]

URGENT_HELP_BY_NATION = {
    "GB-ENG": "use NHS 111 online or call 111",
    "GB-WLS": "use NHS 111 Wales online or call 111",
    "GB-SCT": "call NHS 24 on 111",
}


def urgent_help(bank_holidays: str, own: str | None) -> str:
    """The practice's own wording if set, else its nation's (``BANK_HOLIDAYS``), else empty."""
    if own and own.strip():
        return own.strip()
    return URGENT_HELP_BY_NATION.get(bank_holidays.upper(), "")
