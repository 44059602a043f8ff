"""The shipped example group (examples/group) as tests serve it: a token per practice and the
fake Graph API."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters import REGISTRY
from bot.practices import ServedPractice, load_practices, serve_practice
from tests.helpers.service import APP_SECRET, PSEUDONYM_KEY, REPO, VERIFY_TOKEN

__all__ = [
    "CARDIFF_INSTAGRAM",
    "OPEN",
    "SLUGS",
    "TOKENS",
    "WHATSAPP",
    "group_files",
    "served_group",
]

SLUGS = ("cardiff-bay", "glasgow-west", "leeds-riverside")
TOKENS = tuple(f"token-{slug}" for slug in SLUGS)
WHATSAPP = {
    "cardiff-bay": "109876543210003",
    "glasgow-west": "109876543210002",
    "leeds-riverside": "109876543210001",
}
CARDIFF_INSTAGRAM = "17841400000000103"
# A Tuesday morning in January: every practice of the example is open.
OPEN = datetime(2026, 1, 6, 10, 0, tzinfo=ZoneInfo("Europe/London")).timestamp()


def group_files(tmp_path: Path, graph_url: str) -> Path:
    """The example group with live secrets, a token per practice and the fake Graph API."""
    shutil.copytree(REPO / "examples" / "group" / "practices", tmp_path / "practices")
    main = tmp_path / "group.env"
    main.write_text(
        "\n".join(
            [
                f"META_APP_SECRET={APP_SECRET}",
                f"META_VERIFY_TOKEN={VERIFY_TOKEN}",
                f"PSEUDONYM_KEY={PSEUDONYM_KEY}",
                f"GRAPH_API_URL={graph_url}",
                f"INSTAGRAM_API_URL={graph_url}",
                f"DATABASE_URL=sqlite:///{tmp_path}/data/bot.sqlite3",
                f"TEMPLATES_DIR={REPO / 'templates'}",
                f"PRACTICES_DIR={tmp_path / 'practices'}",
                "PRACTICE_EMAIL=reception@example-smiles.co.uk",
                "PRACTICE_BOOKING_URL=https://example-smiles.co.uk/book",
                "OPENING_HOURS=Mon-Fri 08:30-17:00",
                "",
            ]
        )
    )
    for slug, token in zip(SLUGS, TOKENS, strict=True):
        path = tmp_path / "practices" / slug / "practice.env"
        tokens = (
            f"WHATSAPP_ACCESS_TOKEN={token}\nMESSENGER_PAGE_ACCESS_TOKEN={token}\n"
            f"INSTAGRAM_ACCESS_TOKEN={token}\n"
        )
        path.write_text(path.read_text() + tokens)
    return main


def served_group(main: Path) -> list[ServedPractice]:
    """The practices as ``serve`` runs them: each with its own live texts."""
    return [
        serve_practice(p, REGISTRY.adapters)
        for p in load_practices(main, main.parent / "practices")
    ]
