"""The pseudonymous export of the contact log (SPEC §7), for the CLI and the manager's page."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime

from bot.store import ContactRecord

__all__ = ["FIELDS", "GROUP_FIELDS", "export", "utc_time"]

FIELDS = ("time", "channel", "pseudonym", "kind", "outcome", "template")
GROUP_FIELDS = ("time", "practice", *FIELDS[1:])  # SPEC §7: with PRACTICES_DIR, after time


def utc_time(ts: float) -> str:
    """``2026-11-30T09:15:00Z``: how the export writes times."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def export(records: Iterable[ContactRecord], fmt: str, *, group: bool) -> str:
    """``records`` as CSV (``fmt`` ``csv``) or JSON, with a ``practice`` column in a group."""
    rows = [
        {
            "time": utc_time(r.time),
            **({"practice": r.practice} if group else {}),
            "channel": r.channel,
            "pseudonym": r.pseudonym,
            "kind": r.kind,
            "outcome": r.outcome,
            "template": r.template or "",
        }
        for r in records
    ]
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=GROUP_FIELDS if group else FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
