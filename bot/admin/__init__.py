"""The practice manager's page (SPEC §10)."""

from __future__ import annotations
