"""Start-up self-checks: the C HTTP parser, a safe aiohttp and an explicit body limit."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import http_parser

from adapters import REGISTRY
from bot import selfcheck
from bot.app import MAX_BODY_BYTES, create_app
from bot.settings import Settings
from tests.helpers.service import live_templates


def test_selfcheck_passes_in_this_environment() -> None:
    """The installed aiohttp is new enough and uses its C parser."""
    assert selfcheck.startup_problems() == []


def test_selfcheck_reports_an_old_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    """An aiohttp older than 3.14.3 is reported."""
    monkeypatch.setattr(aiohttp, "__version__", "3.13.2")
    assert selfcheck.startup_problems() == ["aiohttp: version 3.13.2 is older than 3.14.3"]


def test_selfcheck_reports_the_pure_python_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Running on the pure-Python HTTP parser is reported."""
    monkeypatch.setattr(http_parser, "HttpRequestParser", http_parser.HttpRequestParserPy)
    problems = selfcheck.startup_problems()
    assert len(problems) == 1
    assert "C HTTP parser" in problems[0]


def test_app_body_limit_is_set_explicitly_to_4_mib(settings: Settings) -> None:
    """The app's client_max_size is the explicit 4 MiB limit, not aiohttp's 1 MiB default."""
    app = create_app(
        settings, platform=REGISTRY, templates=live_templates(settings), run_worker=False
    )
    assert MAX_BODY_BYTES == 4 * 1024 * 1024
    assert app._client_max_size == MAX_BODY_BYTES
