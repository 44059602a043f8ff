"""Property tests on the signed POST path: odd input never 5xx, tampering changes nothing.

The service runs once per test on one event loop (``asyncio.Runner``); Hypothesis drives
examples through real HTTP against it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.store.sqlite import SQLiteStore
from tests.helpers.fake_graph import FakeGraph
from tests.helpers.fixtures import all_fixtures, fixture_bytes
from tests.helpers.service import APP_SECRET, Service, make_settings, running_service
from tests.helpers.signing import sign

META_KEYS = [
    "object",
    "entry",
    "id",
    "time",
    "changes",
    "field",
    "value",
    "messages",
    "statuses",
    "contacts",
    "metadata",
    "phone_number_id",
    "from",
    "wa_id",
    "user_id",
    "type",
    "text",
    "timestamp",
    "messaging",
    "standby",
    "sender",
    "recipient",
    "message",
    "mid",
    "is_echo",
    "app_id",
    "postback",
    "reaction",
    "read",
    "delivery",
    "is_deleted",
    "attachments",
]
OBJECTS = ["whatsapp_business_account", "page", "instagram"]

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from([*OBJECTS, "messages", "message", "text", "1767261600"])
)
_keys = st.sampled_from(META_KEYS) | st.text(max_size=8)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=30,
)
_payloads = st.builds(
    lambda obj, entry, extra: {"object": obj, "entry": entry, **extra},
    st.sampled_from(OBJECTS) | st.text(max_size=5),
    _json,
    st.dictionaries(_keys, _json, max_size=3),
)

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@contextmanager
def _service(tmp_path: Path) -> Iterator[tuple[asyncio.Runner, Service, FakeGraph]]:
    with asyncio.Runner() as runner:
        graph = FakeGraph()
        runner.run(graph.start())
        manager = running_service(make_settings(tmp_path, graph.url))
        service = runner.run(manager.__aenter__())
        try:
            yield runner, service, graph
        finally:
            runner.run(manager.__aexit__(None, None, None))
            runner.run(graph.stop())


def _post(runner: asyncio.Runner, service: Service, body: bytes, header: str) -> int:
    async def go() -> int:
        response = await service.client.post(
            "/webhook", data=body, headers={"X-Hub-Signature-256": header}
        )
        await service.drain(2.0)
        return response.status

    return runner.run(go())


def _rows(service: Service) -> tuple[int, ...]:
    store = service.store
    assert isinstance(store, SQLiteStore)
    tables = ("contact_log", "reply_jobs", "seen_messages", "cooldowns", "staff_activity")
    return tuple(store.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables)  # noqa: S608


def test_post_signed_meta_shaped_json_is_acknowledged(tmp_path: Path) -> None:
    """Any signed JSON object shaped like a Meta webhook gets 200, never a 5xx."""
    with _service(tmp_path) as (runner, service, _):

        @SETTINGS
        @given(payload=_payloads)
        def check(payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            assert _post(runner, service, body, sign(body, APP_SECRET)) == 200

        check()


def test_post_signed_arbitrary_bytes_never_5xx(tmp_path: Path) -> None:
    """Signed arbitrary bytes get 200 (a JSON object) or 400, never a 5xx."""
    with _service(tmp_path) as (runner, service, _):

        @SETTINGS
        @example(body=b"[" * 3000 + b"]" * 3000)
        @example(body=b'{"n":' + b"7" * 5000 + b"}")
        @example(body=b'{"a":NaN}')
        @example(body=b'{"object":"page","object":"instagram","entry":[]}')
        @example(body=b'{"object":"page","entry":[{"id":"\\ud800","messaging":[]}]}')
        @example(body=b'{"object":"page","entry":[\xed\xa0\x80]}')
        @example(body=b"")
        @given(body=st.binary(max_size=300) | _json.map(lambda v: json.dumps(v).encode()))
        def check(body: bytes) -> None:
            status = _post(runner, service, body, sign(body, APP_SECRET))
            assert status in (200, 400)

        check()


def test_post_thousand_item_batch_is_acknowledged(tmp_path: Path) -> None:
    """A signed batch of 1,000 messages from distinct patients is recorded in one go."""
    payload = json.loads(fixture_bytes("whatsapp", "text"))
    value = payload["entry"][0]["changes"][0]["value"]
    message = value["messages"][0]
    value["messages"] = [
        {**message, "from": f"4477009{i:05d}", "id": f"wamid.B{i}"} for i in range(1000)
    ]
    body = json.dumps(payload).encode()
    with _service(tmp_path) as (runner, service, _):
        assert _post(runner, service, body, sign(body, APP_SECRET)) == 200
        assert _rows(service)[0] == 1000


_FIXTURES = all_fixtures()
_VISIBLE = bytes(range(0x21, 0x7F))


def test_post_tampered_body_or_signature_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    """Flipping any byte of a signed body or its signature is refused with no write and no send."""
    with _service(tmp_path) as (runner, service, graph):
        before = _rows(service)

        @SETTINGS
        @given(
            case=st.sampled_from(_FIXTURES),
            where=st.sampled_from(["body", "signature"]),
            position=st.integers(min_value=0),
            flip=st.integers(min_value=1, max_value=255),
        )
        def check(case: tuple[str, str], where: str, position: int, flip: int) -> None:
            body = bytearray(fixture_bytes(*case))
            header = bytearray(sign(bytes(body), APP_SECRET).encode())
            if where == "body":
                body[position % len(body)] ^= flip
            else:
                # Headers can only carry visible ASCII: swap one hex digit for another character.
                index = len("sha256=") + position % 64
                replacement = _VISIBLE[flip % len(_VISIBLE)]
                if replacement == header[index]:
                    replacement = _VISIBLE[(flip + 1) % len(_VISIBLE)]
                header[index] = replacement
            status = _post(runner, service, bytes(body), header.decode("latin-1"))
            assert status in (401, 403)
            assert _rows(service) == before
            assert graph.requests == []

        check()
