"""``practice-bot contacts report``: the manager's contact chart as a page of its own, to keep
or print (the counts only: never who, never what)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import markupsafe

from bot.admin import PAGES
from bot.admin.chart import contacts_chart, daily_counts, totals
from bot.store import ContactRecord

__all__ = ["contacts_report"]


def contacts_report(
    records: Sequence[ContactRecord], *, days: int, today: date, practice: str
) -> str:
    """A standalone HTML page: the chart of the ``days`` days up to ``today``, and totals."""
    counts = daily_counts(records, days, today)
    by_app, by_outcome = totals(counts)
    return PAGES.get_template("report.html").render(
        practice=practice,
        days=days,
        first=counts[0].day,
        last=counts[-1].day,
        # The chart escapes each text it holds itself (tests/test_admin_chart.py).
        chart=markupsafe.Markup(contacts_chart(counts, title="Contacts per day")),  # noqa: S704
        totals=by_app,
        total=sum(by_app.values()),
        outcomes=by_outcome,
    )
