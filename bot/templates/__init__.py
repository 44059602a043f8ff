"""The practice manager's reply texts (SPEC §5), in four parts read in this order.

- ``syntax``: placeholders and braces, and the ``file:line:col`` of every mistake;
- ``files``: which files there are, loading and validating a folder, rendering a reply;
- ``live``: the set in use, reloaded when the files change, the last good one kept;
- ``preview``: what a patient would get at a given moment, per channel.
"""

from __future__ import annotations

from bot.templates.files import (
    PracticeInfo,
    TemplateKind,
    TemplateSet,
    check_templates,
    files_in_force,
)
from bot.templates.live import LiveTemplates
from bot.templates.preview import preview
from bot.templates.syntax import (
    CONTACT_PLACEHOLDERS,
    PLACEHOLDERS,
    InvalidTemplatesError,
    Problem,
    Template,
    parse_template,
)

__all__ = [
    "CONTACT_PLACEHOLDERS",
    "PLACEHOLDERS",
    "InvalidTemplatesError",
    "LiveTemplates",
    "PracticeInfo",
    "Problem",
    "Template",
    "TemplateKind",
    "TemplateSet",
    "check_templates",
    "files_in_force",
    "parse_template",
    "preview",
]
