"""The practice manager's page (SPEC §10)."""

from __future__ import annotations

import jinja2

__all__ = ["PAGES"]

# The page's and the report's HTML: autoescaped, and a missing value is an error, not "".
PAGES = jinja2.Environment(
    loader=jinja2.PackageLoader("bot.admin", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
