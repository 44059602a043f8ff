"""Privacy by construction: canaries driven through the real service land nowhere (SPEC §6).

Every recorded fixture carries ``CANARY-…`` strings in its content fields (text, captions,
file names, locations, shared contacts, profile names, usernames, referral text, edits). Each
test rewrites the fixtures' sender and message ids to fresh made-up ones, drives them through
the real service (real HTTP, a fake Graph API, real SQLite, the production access logger), and
then looks for every content string, raw id, message id, secret and token in:

* all log output: structlog and the standard library's loggers (aiohttp, asyncio) as
  ``configure_logging`` renders them, at ``debug`` and ``info``, plus anything written to the
  process's stdout / stderr;
* every file under the data directory after the service stopped (SQLite main file, ``-wal``,
  ``-shm``), and while a reply is still pending;
* every HTTP response the service sent, ``/metrics`` included.

The expected number of hits is always zero.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import logging
import secrets
import sqlite3
import struct
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog
from aiohttp import ClientResponse

from adapters import REGISTRY, MetaPlatform
from bot import cli
from bot.events import Channel, ContactKind, Event
from bot.pseudonym import Keyring
from bot.settings import Settings
from bot.store import Store
from tests.helpers.fake_graph import Action, FakeGraph, RecordedRequest
from tests.helpers.fixtures import all_fixtures, fixture_json
from tests.helpers.logs import captured_logs
from tests.helpers.service import (
    APP_ID,
    FIXTURE_TIME,
    IG_ID,
    PAGE_ID,
    PHONE_NUMBER_ID,
    Clock,
    Service,
    make_settings,
    running_service,
    with_parser,
)
from tests.helpers.stores import postgres_schema

WABA_ID = "184725930012345"  # the fixtures' WhatsApp Business Account (entry[].id)
DISPLAY_NUMBER = "15550001234"  # the fixtures' practice number (metadata.display_phone_number)
PRACTICE_IDS = frozenset({PHONE_NUMBER_ID, PAGE_ID, IG_ID, WABA_ID, DISPLAY_NUMBER, APP_ID})

# Keys whose values are Meta's fixed vocabulary (or the practice's own ids): the bot may log or
# store the same words as its own (channel names, kinds, statuses), so they are not canaries.
FIXED_KEYS = frozenset(
    {
        "object",
        "field",
        "type",
        "messaging_product",
        "status",
        "timestamp",
        "mime_type",
        "media_type",
        "source_type",
        "category",
        "pricing_model",
        "display_phone_number",
        "phone_number_id",
    }
)
# Keys that hold a person's id: a phone number / BSUID (WhatsApp), or the "id" of a party.
CONTACT_KEYS = frozenset(
    {
        "wa_id",
        "from",
        "to",
        "recipient_id",
        "recipient_user_id",
        "user_id",
        "from_user_id",
        "to_user_id",
        "previous_user_id",
        "parent_user_id",
        "previous_parent_user_id",
    }
)
PARTY_KEYS = frozenset({"sender", "recipient", "from"})
MESSAGE_ID_KEYS = frozenset({"mid", "mids"})

# The one fixture without CANARY strings: its content is checked by value.
UNMARKED_CONTENT = ("Ejemplo", "pueden darme una cita")

LEVELS = ("debug", "info")


def _digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


def _canary(label: str) -> str:
    return f"CANARY-{label}-{secrets.token_hex(6)}"


# -- what must never appear -----------------------------------------------------------------


@dataclass
class Identities:
    """Fresh made-up identifiers for one test, and every string that must land nowhere."""

    mapping: dict[str, str] = field(default_factory=dict)  # fixture id -> fresh (last rewrite)
    message_ids: dict[str, str] = field(default_factory=dict)  # message id -> fresh (same)
    phones: set[str] = field(default_factory=set)
    raw_ids: set[str] = field(default_factory=set)
    forbidden: set[str] = field(default_factory=set)
    forbidden_bytes: set[bytes] = field(default_factory=set)

    def phone(self) -> str:
        """A unique made-up UK mobile number in wa_id form (digits only)."""
        number = "4477009" + _digits(5)
        while number in self.raw_ids:  # a number drawn twice would be one patient, not two
            number = "4477009" + _digits(5)
        self.phones.add(number)
        self._raw(number)
        return number

    def scoped(self) -> str:
        """A unique made-up PSID / IGSID."""
        return self._raw("4477009" + _digits(9))

    def bsuid(self) -> str:
        """A unique made-up WhatsApp business-scoped user id."""
        return self._raw("GB." + _digits(20))

    def canary_id(self) -> str:
        """A sender id that is itself a canary (Messenger accepts any id string)."""
        return self._raw(_canary("psid"))

    def secret(self, value: str) -> str:
        """Register a secret or token that must never be printed."""
        self.forbidden.add(value)
        return value

    def content(self, value: str) -> str:
        """Register a content string that must never be kept."""
        self.forbidden.add(value)
        return value

    def sent_message(self, message_id: str) -> None:
        """A message id Meta returned for the bot's own send (kept only as a keyed hash)."""
        self.forbidden.add(message_id)

    def _raw(self, value: str) -> str:
        self.raw_ids.add(value)
        self.forbidden.add(value)
        return value

    def rewrite(self, channel: str, payload: dict[str, Any]) -> dict[str, Any]:
        """``payload`` with its sender and message ids replaced by fresh ones (and noted).

        Every call makes new ids, so each rewritten fixture comes from new people.
        """
        originals: set[str] = set()
        _collect_contacts(payload, None, originals)
        self.mapping = {}
        self.message_ids = {}
        for original in sorted(originals):
            if original.startswith("GB."):
                self.mapping[original] = self.bsuid()
            elif channel == "whatsapp":
                self.mapping[original] = self.phone()
            else:
                self.mapping[original] = self.scoped()
        rewritten = self._rewrite(payload, None)
        assert isinstance(rewritten, dict)
        self.note(rewritten)
        return rewritten

    def _rewrite(self, node: Any, key: str | None) -> Any:
        if isinstance(node, dict):
            return {k: self._rewrite(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [self._rewrite(item, key) for item in node]
        if not isinstance(node, str):
            return node
        if node in self.mapping:
            return self.mapping[node]
        if node.startswith("wamid."):
            return self._memo(node, self._wamid)
        if key in MESSAGE_ID_KEYS:
            return self._memo(node, lambda _: "m_" + secrets.token_urlsafe(33))
        for original, fresh in self.mapping.items():
            node = node.replace(original, fresh)
        return node

    def _memo(self, original: str, make: Callable[[str], str]) -> str:
        if original not in self.message_ids:
            self.message_ids[original] = make(original)
        return self.message_ids[original]

    def _wamid(self, original: str) -> str:
        """A fresh wamid that, like Meta's, embeds the (fresh) sender id in its base64."""
        encoded = original.removeprefix("wamid.")
        try:
            decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            decoded = b""
        who = (
            next((new for old, new in self.mapping.items() if old.encode() in decoded), None)
            or self.phone()
        )
        return _make_wamid(who)

    def text_message(self, channel: Channel, sender: str) -> dict[str, Any]:
        """A text from ``sender`` (a canary text, a fresh message id), like the ``text`` fixture."""
        payload = fixture_json(channel.value, "text")
        entry = payload["entry"][0]
        text = self.content(_canary(f"{channel.value}-text"))
        if channel is Channel.WHATSAPP:
            value = entry["changes"][0]["value"]
            value["contacts"][0]["wa_id"] = sender
            message = value["messages"][0]
            message.update(id=self.content(_make_wamid(sender)), text={"body": text})
            message["from"] = sender
        else:
            item = entry["messaging"][0]
            item["sender"]["id"] = sender
            item["message"] = {"mid": self.content("m_" + secrets.token_urlsafe(30)), "text": text}
        return payload

    def note(self, payload: Any, key: str | None = None) -> None:
        """Add every content string, id and coordinate of ``payload`` to the forbidden set."""
        if isinstance(payload, dict):
            for k, v in payload.items():
                self.note(v, k)
        elif isinstance(payload, list):
            for item in payload:
                self.note(item, key)
        elif isinstance(payload, str):
            if key in FIXED_KEYS or payload in PRACTICE_IDS:
                return
            if len(payload) >= 6 or not payload.isascii():
                self.forbidden.add(payload)
        elif isinstance(payload, float):
            # Locations: as text (logs) and as SQLite stores a REAL (big-endian IEEE 754).
            self.forbidden.add(repr(payload))
            self.forbidden_bytes.add(struct.pack(">d", payload))

    def needles(self) -> set[bytes]:
        """Everything to search for, as bytes."""
        found = {value.encode("utf-8", errors="surrogatepass") for value in self.forbidden}
        for phone in self.phones:
            found.add(base64.b64encode(phone.encode()).rstrip(b"="))
        return found | self.forbidden_bytes


def _make_wamid(who: str) -> str:
    """A wamid shaped like Meta's: base64 of a header, the sender id and a random part."""
    inner = (
        b"\x1c\x18"
        + bytes([len(who)])
        + who.encode()
        + b"\x15\x02\x00\x12\x18\x14"
        + secrets.token_hex(10).upper().encode()
        + b"\x00"
    )
    return "wamid." + base64.b64encode(inner).decode()


def _collect_contacts(node: Any, key: str | None, found: set[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            is_contact = k in CONTACT_KEYS or (k == "id" and key in PARTY_KEYS)
            if isinstance(v, str) and is_contact and v not in PRACTICE_IDS:
                found.add(v)
            _collect_contacts(v, k, found)
    elif isinstance(node, list):
        for item in node:
            _collect_contacts(item, key, found)


# -- where things could land ----------------------------------------------------------------


@dataclass
class Capture:
    """All log output of the process as ``configure_logging`` renders it."""

    level: str
    stream: io.StringIO

    def records(self) -> list[dict[str, Any]]:
        """Every rendered line, decoded."""
        lines = [line for line in self.stream.getvalue().splitlines() if line.strip()]
        decoded = [json.loads(line) for line in lines]
        assert all(isinstance(item, dict) for item in decoded)
        return decoded

    def text(self) -> str:
        """The raw lines, plus each line re-encoded without ASCII escapes."""
        raw = self.stream.getvalue()
        unescaped = "\n".join(json.dumps(r, ensure_ascii=False) for r in self.records())
        return raw + "\n" + unescaped

    def events(self) -> list[str]:
        """The ``event`` of every line."""
        return [str(record.get("event")) for record in self.records()]


@pytest.fixture(params=LEVELS)
def capture(request: pytest.FixtureRequest) -> Iterator[Capture]:
    """Log output at LOG_LEVEL=debug and at info."""
    level = str(request.param)
    with captured_logs(level) as stream:
        yield Capture(level, stream)


@dataclass
class Recorder:
    """Talks to the service and keeps every response it sent (status, headers, body)."""

    service: Service
    responses: list[bytes] = field(default_factory=list)

    async def post(self, body: bytes | dict[str, Any], *, secret: str | None = None) -> int:
        """POST a signed body; returns the status."""
        return await self._keep(await self.service.post(body, secret=secret))

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> int:
        """GET ``path``; returns the status."""
        return await self._keep(await self.service.client.get(path, params=params))

    async def _keep(self, response: ClientResponse) -> int:
        body = await response.read()
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items()).encode()
        self.responses.append(headers + b"\n\n" + body)
        return response.status


@dataclass
class Setup:
    """One test's made-up secrets and the settings built on them."""

    ids: Identities
    settings: Settings
    app_secret: str
    verify_token: str
    pseudonym_key: str
    token: str
    data_dir: Path  # where the SQLite store keeps its files (nothing there for PostgreSQL)

    @property
    def keyring(self) -> Keyring:
        """The keyring of this test's PSEUDONYM_KEY."""
        return Keyring(self.pseudonym_key)


def _setup(tmp_path: Path, graph_url: str, **overrides: Any) -> Setup:
    ids = Identities()
    tag = secrets.token_hex(6)
    app_secret = ids.secret(f"app-secret-{tag}")
    verify_token = ids.secret(f"verify-token-{tag}")
    pseudonym_key = ids.secret(f"pseudonym-key-{tag}-" + secrets.token_hex(16))
    token = ids.secret(f"access-token-{tag}")
    settings = make_settings(
        tmp_path,
        graph_url,
        meta_app_secret=app_secret,
        meta_verify_token=verify_token,
        pseudonym_key=pseudonym_key,
        whatsapp_access_token=token,
        messenger_page_access_token=token,
        instagram_access_token=token,
        **overrides,
    )
    return Setup(ids, settings, app_secret, verify_token, pseudonym_key, token, tmp_path / "data")


@asynccontextmanager
async def serving(
    setup: Setup,
    clock: Clock | None = None,
    *,
    run_worker: bool = True,
    platform: MetaPlatform = REGISTRY,
) -> AsyncIterator[Recorder]:
    """The real app as ``practice-bot serve`` runs it (its own access logger) on loopback."""
    async with running_service(
        setup.settings, clock, run_worker=run_worker, platform=platform
    ) as service:
        service.secret = setup.app_secret
        yield Recorder(service)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


def _leaks(needles: Iterable[bytes], places: Mapping[str, bytes]) -> list[str]:
    """``place: needle`` for every forbidden string found, plus any ``canary`` at all."""
    found: list[str] = []
    for place, data in places.items():
        if b"canary" in data.lower():
            found.append(f"{place}: CANARY")
        found.extend(f"{place}: {needle!r}" for needle in needles if needle and needle in data)
    return found


def assert_nothing_leaked(
    setup: Setup,
    capture: Capture,
    capfd: pytest.CaptureFixture[str],
    responses: Iterable[bytes] = (),
) -> None:
    """No forbidden string in the logs, stdout/stderr, the data files or the HTTP responses."""
    out, err = capfd.readouterr()
    places: dict[str, bytes] = {
        "log": capture.text().encode("utf-8", errors="surrogatepass"),
        "stdout": out.encode("utf-8", errors="surrogatepass"),
        "stderr": err.encode("utf-8", errors="surrogatepass"),
        "http": b"\n".join(responses),
    }
    places.update({f"file {name}": data for name, data in _files(setup.data_dir).items()})
    assert _leaks(setup.ids.needles(), places) == []


def _sqlite(setup: Setup) -> sqlite3.Connection:
    return sqlite3.connect(setup.settings.database_url.removeprefix("sqlite:///"))


def _db(store: Store) -> sqlite3.Connection:
    db = getattr(store, "db", None)
    assert isinstance(db, sqlite3.Connection)
    return db


# -- Meta's callbacks for the bot's own sends -----------------------------------------------


def _callback(request: RecordedRequest, answer: Mapping[str, Any]) -> dict[str, Any]:
    """The status (WhatsApp) or echo (Messenger / Instagram) Meta sends after a bot reply."""
    body = request.json
    assert isinstance(body, dict)
    ms = int((FIXTURE_TIME + 61) * 1000)
    if body.get("messaging_product") == "whatsapp":
        status: dict[str, Any] = {
            "id": answer["messages"][0]["id"],
            "status": "delivered",
            "timestamp": str(ms // 1000),
            "biz_opaque_callback_data": body["biz_opaque_callback_data"],
        }
        if "to" in body:
            status["recipient_id"] = body["to"]
        else:
            status["recipient_user_id"] = body["recipient"]
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": DISPLAY_NUMBER,
                "phone_number_id": PHONE_NUMBER_ID,
            },
            "statuses": [status],
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}],
        }
    account = IG_ID if request.node == IG_ID else PAGE_ID
    message: dict[str, Any] = {"mid": answer["message_id"], "is_echo": True}
    tag = body.get("message", {}).get("metadata")
    if tag is not None:
        message.update(app_id=int(APP_ID), metadata=tag)
    item = {
        "sender": {"id": account},
        "recipient": {"id": body["recipient"]["id"]},
        "timestamp": ms,
        "message": message,
    }
    return {
        "object": "instagram" if account == IG_ID else "page",
        "entry": [{"id": account, "time": ms, "messaging": [item]}],
    }


# -- the recorded fixtures ------------------------------------------------------------------


async def test_privacy_every_fixture_leaves_no_trace(
    tmp_path: Path, capture: Capture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Every fixture of every channel, its redelivery and Meta's callbacks leave no content."""
    async with FakeGraph(token=None) as graph:
        setup = _setup(tmp_path, graph.url)
        ids = setup.ids
        answers: list[tuple[RecordedRequest, dict[str, Any]]] = []

        def on_sent(request: RecordedRequest, answer: dict[str, Any]) -> None:
            answers.append((request, answer))
            ids.sent_message(
                answer["messages"][0]["id"] if "messages" in answer else answer["message_id"]
            )

        graph.on_sent = on_sent
        async with serving(setup) as http:
            bodies = [
                ids.rewrite(channel, fixture_json(channel, case))
                for channel, case in all_fixtures()
            ]
            for body in bodies:
                assert await http.post(body) == 200
            for body in bodies[:3]:  # Meta redelivers
                assert await http.post(body) == 200
            await http.service.drain()
            assert len(answers) >= 30  # most fixtures are patient messages from fresh senders
            for request, answer in answers:
                assert await http.post(_callback(request, answer)) == 200
            await http.service.drain()
            assert await http.get("/metrics") == 200
            assert await http.get("/readyz") == 200
            db = _db(http.service.store)
            assert db.execute(
                "SELECT COUNT(*) FROM reply_jobs WHERE recipient IS NOT NULL"
            ).fetchone() == (0,)
            assert db.execute("SELECT COUNT(*) FROM contact_log").fetchone()[0] >= len(answers)
    assert "webhook" in capture.events()
    for text in UNMARKED_CONTENT:
        ids.content(text)
    assert_nothing_leaked(setup, capture, capfd, http.responses)


async def test_privacy_data_files_hold_pseudonyms_not_ids(
    tmp_path: Path, capture: Capture, capfd: pytest.CaptureFixture[str]
) -> None:
    """The scan can see what is stored: the pseudonyms are in the file, the raw ids are not."""
    async with FakeGraph(token=None) as graph:
        setup = _setup(tmp_path, graph.url)
        phone = setup.ids.phone()
        async with serving(setup) as http:
            assert await http.post(setup.ids.text_message(Channel.WHATSAPP, phone)) == 200
            await http.service.drain()
            assert len(graph.requests) == 1
    pseudonym = setup.keyring.contact(Channel.WHATSAPP, phone, ContactKind.PHONE).encode()
    files = _files(setup.data_dir)
    assert any(pseudonym in data for data in files.values())
    assert_nothing_leaked(setup, capture, capfd, http.responses)


async def _postgres_rows(url: str) -> dict[str, bytes]:
    """Every row of every table in the test's schema, values as bytes (bytea kept raw)."""
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        dump: dict[str, bytes] = {}
        for row in tables:
            name = row["table_name"]
            records = await conn.fetch(f'SELECT * FROM "{name}"')  # noqa: S608 - catalogue names
            dump[f"table {name}"] = b"\n".join(
                value if isinstance(value, bytes) else str(value).encode()
                for record in records
                for value in record.values()
            )
        return dump
    finally:
        await conn.close()


async def test_privacy_postgres_rows_hold_no_content(
    tmp_path: Path, capture: Capture, capfd: pytest.CaptureFixture[str]
) -> None:
    """With PostgreSQL, no row holds content or a raw id; a pending recipient is only sealed."""
    async with postgres_schema() as url, FakeGraph(token=None) as graph:
        setup = _setup(tmp_path, graph.url, database_url=url)
        ids = setup.ids
        async with serving(setup) as first:
            for channel, case in all_fixtures():
                assert await first.post(ids.rewrite(channel, fixture_json(channel, case))) == 200
            await first.service.drain()
            assert len(graph.requests) >= 30
        phone = ids.phone()
        async with serving(setup, run_worker=False) as second:
            assert await second.post(ids.text_message(Channel.WHATSAPP, phone)) == 200
        rows = await _postgres_rows(url)
        conn = await asyncpg.connect(url)
        try:
            pending = await conn.fetch(
                "SELECT tag, recipient FROM reply_jobs WHERE recipient IS NOT NULL"
            )
        finally:
            await conn.close()
    assert [setup.keyring.unseal(row["recipient"], row["tag"]) for row in pending] == [phone]
    assert b"replied" in rows["table contact_log"]  # the dump holds what was stored
    assert _leaks(ids.needles(), rows) == []
    assert not setup.data_dir.exists()  # nothing written locally
    assert_nothing_leaked(setup, capture, capfd, [*first.responses, *second.responses])


# -- bodies of our own ----------------------------------------------------------------------


async def test_privacy_unparseable_signed_body_leaves_no_trace(
    tmp_path: Path, capture: Capture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Signed bodies that fail JSON decoding (canaries inside) get 400 and are not logged."""
    setup = _setup(tmp_path, "http://127.0.0.1:9")
    canary = setup.ids.content(_canary("unparseable"))
    bodies = [
        b'{"object":"page","entry":[{"text":"' + canary.encode(),
        b'{"object":"page","' + canary.encode() + b'": NaN}',
        b'{"a":"' + canary.encode() + b'"}' + b"\xff",
        b"[" * 5000 + canary.encode(),
        json.dumps([canary]).encode(),
    ]
    async with serving(setup, run_worker=False) as http:
        for body in bodies:
            assert await http.post(body) == 400
    reasons = {r.get("reason") for r in capture.records() if r.get("event") == "webhook"}
    assert reasons == {"not_json", "not_utf8", "not_object"}
    assert_nothing_leaked(setup, capture, capfd, http.responses)


def _wrong_shapes(canary: str, sender: str) -> list[dict[str, Any]]:
    """Valid JSON, signed, with canaries as keys and values where no Meta shape has them."""
    wa_value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
    }
    message = {"from": sender, "id": "wamid." + canary, "timestamp": "1767261600"}
    return [
        {"object": canary, "entry": [{"id": canary}]},
        {"object": [canary], canary: canary},
        {canary: {canary: [canary]}},
        {"object": "whatsapp_business_account", "entry": canary},
        {"object": "whatsapp_business_account", "entry": [canary, {canary: canary}]},
        {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": {canary: 1}}]},
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"field": canary, "value": {canary: canary}}]}],
        },
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": WABA_ID,
                    "changes": [
                        {"field": "messages", "value": {**wa_value, "messages": canary}},
                        {"field": "messages", "value": {**wa_value, "messages": [canary]}},
                        {
                            "field": "messages",
                            "value": {**wa_value, "messages": [{**message, "type": canary}]},
                        },
                        {
                            "field": "messages",
                            "value": {
                                **wa_value,
                                "messages": [{**message, "type": "text", "timestamp": canary}],
                            },
                        },
                        {
                            "field": "messages",
                            "value": {**wa_value, "statuses": [{"status": canary, canary: 1}]},
                        },
                        {
                            "field": "messages",
                            "value": {**wa_value, "errors": [{"code": canary}], canary: [canary]},
                        },
                        {"field": "smb_message_echoes", "value": {"message_echoes": [{canary: 1}]}},
                    ],
                }
            ],
        },
        {"object": "page", "entry": [{"id": PAGE_ID, "messaging": canary}]},
        {"object": "page", "entry": [{"id": PAGE_ID, canary: [canary]}]},
        {
            "object": "page",
            "entry": [
                {
                    "id": PAGE_ID,
                    "messaging": [
                        {canary: {"text": canary}, "sender": {"id": sender}},
                        {"message": canary, "sender": {"id": sender}},
                        {"message": {"text": canary}, "sender": {"id": {canary: canary}}},
                        {
                            "message": {"mid": canary, "text": canary},
                            "sender": {"id": sender},
                            "recipient": {"id": PAGE_ID},
                            "timestamp": canary,
                        },
                        {"postback": {"title": canary}, "sender": canary},
                    ],
                    "standby": [{canary: canary}],
                }
            ],
        },
        {
            "object": "instagram",
            "entry": [
                {
                    "id": IG_ID,
                    "changes": [{"field": canary, "value": {"text": canary}}, canary],
                    "messaging": [{"message": {"attachments": canary}, "sender": {"id": sender}}],
                }
            ],
        },
    ]


async def test_privacy_wrong_shapes_are_acknowledged_and_leave_no_trace(
    tmp_path: Path, capture: Capture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Signed JSON with canaries as object, field, type and messaging keys: 200, no trace."""
    async with FakeGraph(token=None) as graph:
        setup = _setup(tmp_path, graph.url)
        canary = setup.ids.content(_canary("shape"))
        sender = setup.ids.scoped()
        async with serving(setup) as http:
            for body in _wrong_shapes(canary, sender):
                assert await http.post(body) == 200
            await http.service.drain()
            assert await http.get("/metrics") == 200
    assert_nothing_leaked(setup, capture, capfd, http.responses)


async def test_privacy_body_signed_with_wrong_secret_leaves_no_trace(
    tmp_path: Path, capture: Capture, capfd: pytest.CaptureFixture[str]
) -> None:
    """A body signed with another secret (canary inside) gets 403 and is neither kept nor logged."""
    async with FakeGraph(token=None) as graph:
        setup = _setup(tmp_path, graph.url)
        phone = setup.ids.phone()
        other_secret = setup.ids.secret("other-secret-" + secrets.token_hex(8))
        body = setup.ids.text_message(Channel.WHATSAPP, phone)
        async with serving(setup) as http:
            assert await http.post(body, secret=other_secret) == 403
            await http.service.drain()
            assert graph.requests == []
            assert _db(http.service.store).execute(
                "SELECT COUNT(*) FROM contact_log"
            ).fetchone() == (0,)
    assert_nothing_leaked(setup, capture, capfd, http.responses)


async def test_privacy_handshake_query_string_is_never_logged(
    tmp_path: Path, capture: Capture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Verify tokens and challenges (canaries, right or wrong) never reach a log line."""
    setup = _setup(tmp_path, "http://127.0.0.1:9")
    wrong_token = setup.ids.content(_canary("token"))
    challenge = _canary("challenge")
    bad_challenge = setup.ids.content(_canary("challenge") + "!" * 80)
    async with serving(setup, run_worker=False) as http:
        base = {"hub.mode": "subscribe", "hub.challenge": challenge}
        assert await http.get("/webhook", {**base, "hub.verify_token": wrong_token}) == 403
        good = {"hub.mode": "subscribe", "hub.verify_token": setup.verify_token}
        assert await http.get("/webhook", {**good, "hub.challenge": bad_challenge}) == 403
        assert await http.get(f"/{wrong_token}", {"q": wrong_token}) == 404
        response = await http.service.client.get(
            "/webhook", params={**good, "hub.challenge": challenge}
        )
        assert (response.status, await response.text()) == (200, challenge)  # echoed by design
    setup.ids.content(challenge)  # ... and nowhere else
    assert capture.events().count("handshake") == 3
    if capture.level == "debug":
        routes = {r.get("route") for r in capture.records() if r.get("event") == "http_access"}
        assert routes == {"/webhook", "unmatched"}
    assert_nothing_leaked(setup, capture, capfd, http.responses)


# -- the Graph API failing ------------------------------------------------------------------


async def test_privacy_graph_failures_leave_no_trace(
    tmp_path: Path, capture: Capture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Permanent, alert, rate-limited and ambiguous sends to canary recipients leave no trace."""
    clock = Clock()
    async with FakeGraph(token=None) as graph:
        setup = _setup(tmp_path, graph.url)
        ids = setup.ids
        recipients = [ids.canary_id() for _ in range(4)]
        echo = ids.content(_canary("meta-error-message"))
        graph.script(
            Action.error(
                400, 100, 2018001, message=f"(#100) No matching user {recipients[0]} {echo}"
            ),
            Action.error(401, 190, message=f"Invalid OAuth access token {setup.token} {echo}"),
            Action.error(429, 613, retry_after=3600, message=f"Calls to {recipients[2]} {echo}"),
            Action.reset(),
        )
        async with serving(setup, clock) as http:
            for recipient in recipients:
                body = ids.text_message(Channel.MESSENGER, recipient)
                assert await http.post(body) == 200
                await http.service.drain()
            clock.advance(3601)  # the ambiguous send is resent once; the deferred one too
            await http.service.drain()
            assert len(graph.requests) == 6
            assert await http.get("/metrics") == 200
            outcomes = (
                _db(http.service.store)
                .execute("SELECT outcome FROM contact_log ORDER BY id")
                .fetchall()
            )
            assert [row[0] for row in outcomes] == ["failed", "failed", "replied", "ambiguous"]
    events = capture.events()
    for event in ("send_failed", "send_alert", "send_deferred", "send_ambiguous"):
        assert event in events
    assert_nothing_leaked(setup, capture, capfd, http.responses)


# -- raw ids at rest while a reply is pending -----------------------------------------------


def _pending_bodies(ids: Identities) -> tuple[list[dict[str, Any]], list[str]]:
    phone, psid, igsid = ids.phone(), ids.scoped(), ids.scoped()
    bodies = [
        ids.text_message(Channel.WHATSAPP, phone),
        ids.text_message(Channel.MESSENGER, psid),
        ids.text_message(Channel.INSTAGRAM, igsid),
        ids.rewrite("whatsapp", fixture_json("whatsapp", "bsuid_user")),
    ]
    return bodies, [phone, psid, igsid]


async def test_privacy_pending_recipients_are_sealed_in_the_files(
    tmp_path: Path, capture: Capture, capfd: pytest.CaptureFixture[str]
) -> None:
    """With no worker running, queued jobs hold AES-GCM-sealed recipients, never plain ids."""
    setup = _setup(tmp_path, "http://127.0.0.1:9")
    bodies, raw = _pending_bodies(setup.ids)
    async with serving(setup, run_worker=False) as http:
        for body in bodies:
            assert await http.post(body) == 200
        while_running = _files(setup.data_dir)
        assert any(name.endswith("-wal") for name in while_running)
    assert _leaks(setup.ids.needles(), while_running) == []
    assert_nothing_leaked(setup, capture, capfd, http.responses)
    with closing(_sqlite(setup)) as db:
        rows = db.execute(
            "SELECT tag, recipient FROM reply_jobs WHERE state = 'pending'"
        ).fetchall()
    unsealed = {setup.keyring.unseal(sealed, tag) for tag, sealed in rows}
    assert set(raw) <= unsealed  # the ids are there, but only sealed
    assert len(unsealed) == 4


async def test_privacy_recipient_stays_sealed_during_a_hanging_send(
    tmp_path: Path, capture: Capture, capfd: pytest.CaptureFixture[str]
) -> None:
    """While Meta hangs and after the reset, the in-flight job's recipient is only sealed."""
    async with FakeGraph(token=None) as graph:
        setup = _setup(tmp_path, graph.url)
        phone = setup.ids.phone()
        graph.script(Action.hang(0.5))
        async with serving(setup) as http:
            assert await http.post(setup.ids.text_message(Channel.WHATSAPP, phone)) == 200
            await graph.wait_for_requests(1)
            in_flight = _files(setup.data_dir)
            db = _db(http.service.store)
            for _ in range(200):
                state = db.execute("SELECT state FROM reply_jobs").fetchone()
                if state == ("ambiguous",):
                    break
                await asyncio.sleep(0.01)
            assert state == ("ambiguous",)
    assert _leaks(setup.ids.needles(), in_flight) == []
    assert_nothing_leaked(setup, capture, capfd, http.responses)


# -- exceptions -----------------------------------------------------------------------------


async def test_privacy_adapter_exception_is_summarised_without_content(
    tmp_path: Path,
    capture: Capture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """An adapter raising with the body in its message and locals: 200, type and frames only."""
    setup = _setup(tmp_path, "http://127.0.0.1:9")
    body = setup.ids.text_message(Channel.MESSENGER, setup.ids.scoped())

    def explode(payload: Mapping[str, Any]) -> list[Event]:
        raw_body = json.dumps(dict(payload))
        raise RuntimeError(f"cannot parse {raw_body}")

    async with serving(setup, platform=with_parser(Channel.MESSENGER, explode)) as http:
        assert await http.post(body) == 200
        await http.service.drain()
    [error] = [r for r in capture.records() if r.get("event") == "adapter_parse_error"]
    assert error["error_type"] == "RuntimeError"
    assert any(frame.endswith(":explode") for frame in error["frames"])
    [webhook] = [r for r in capture.records() if r.get("event") == "webhook"]
    assert (webhook["status"], webhook["reason"]) == (200, "parse_error")
    assert_nothing_leaked(setup, capture, capfd, http.responses)


async def test_privacy_unencodable_tag_is_acknowledged_not_a_server_error(
    tmp_path: Path, capture: Capture, capfd: pytest.CaptureFixture[str]
) -> None:
    """A lone surrogate in an echo's metadata or a status's callback data is not a 5xx."""
    setup = _setup(tmp_path, "http://127.0.0.1:9")
    canary = setup.ids.content("\ud800" + _canary("surrogate"))
    echo = fixture_json("messenger", "echo_other_app")
    echo["entry"][0]["messaging"][0]["message"]["metadata"] = canary
    status = fixture_json("whatsapp", "status_sent")
    status["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] = canary
    async with serving(setup, run_worker=False) as http:
        statuses = [
            await http.post(setup.ids.rewrite(ch, b))
            for ch, b in (("messenger", echo), ("whatsapp", status))
        ]
    assert_nothing_leaked(setup, capture, capfd, http.responses)
    assert statuses == [200, 200]  # SPEC §3: signed input never gets a 5xx


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_privacy_exception_locals_and_messages_are_not_rendered(fmt: str) -> None:
    """A logged exception shows its type and frames, never its message or the frame locals."""
    canary = _canary("local")

    def holds_the_body(body: str) -> None:
        raw_body = body * 2
        raise ValueError(raw_body)

    log = structlog.get_logger("tests.privacy")
    with captured_logs("debug", fmt) as stream:
        try:
            holds_the_body(canary)
        except ValueError as error:
            log.exception("probe_exception")
            log.error("probe_exc_info", exc_info=True)
            log.error("probe_exc_instance", exc_info=error)
            logging.getLogger("tests.privacy.stdlib").exception("stdlib %s", canary)
    text = stream.getvalue()
    assert "canary" not in text.lower()
    assert text.count("ValueError") == 4
    assert text.count("holds_the_body") == 4


def _fail_with(message: str) -> None:
    raise OSError(message)


def test_privacy_library_log_records_are_reduced_to_their_logger() -> None:
    """aiohttp's own access and error records are rendered without their text or arguments."""
    canary = _canary("library")
    with captured_logs("debug") as stream:
        logging.getLogger("aiohttp.access").info('"GET /webhook?hub.verify_token=%s" 200', canary)
        try:
            _fail_with(canary)
        except OSError:
            logging.getLogger("aiohttp.server").exception("Error handling request %s", canary)
        logging.getLogger("asyncio").error("Task exception was never retrieved: %r", {"b": canary})
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert "canary" not in stream.getvalue().lower()
    assert [(r["event"], r["logger"]) for r in records] == [
        ("library_log", "aiohttp.access"),
        ("library_log", "aiohttp.server"),
        ("library_log", "asyncio"),
    ]
    assert records[1]["error_type"] == "OSError"


def test_privacy_scanner_finds_planted_leaks(tmp_path: Path) -> None:
    """The scan is not vacuous: a raw id, a wamid, a coordinate and a canary are all found."""
    ids = Identities()
    payload = ids.rewrite("whatsapp", fixture_json("whatsapp", "location"))
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    phone, wamid = message["from"], message["id"]
    latitude = struct.pack(">d", message["location"]["latitude"])
    places = {
        "log": json.dumps({"event": "webhook", "channel": phone}).encode(),
        "wal": b"\x00" + wamid.encode() + b"\x00" + latitude,
        "http": base64.b64encode(phone.encode()),
        "stderr": b"oops canary",
    }
    leaks = _leaks(ids.needles(), places)
    assert {leak.split(":")[0] for leak in leaks} == set(places)
    assert _leaks(ids.needles(), {"clean": b"whatsapp message replied"}) == []


def test_privacy_settings_and_keyring_do_not_show_secrets(tmp_path: Path) -> None:
    """repr() of the settings, keyring and send configs shows no secret or token."""
    setup = _setup(tmp_path, "http://127.0.0.1:9")
    shown = repr(setup.settings) + repr(setup.keyring) + repr(setup.settings.send_configs())
    shown += str(setup.settings.model_dump())
    assert _leaks(setup.ids.needles(), {"repr": shown.encode()}) == []


# -- retention ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_privacy_retention_leaves_no_trace_of_a_person(
    tmp_path: Path, capture: Capture, capfd: pytest.CaptureFixture[str], kind: str
) -> None:
    """Once CONTACT_LOG_RETENTION_DAYS have passed, the start-up purge removes the pseudonym."""
    async with AsyncExitStack() as stack:
        overrides: dict[str, Any] = {"contact_log_retention_days": 90}
        if kind == "postgres":
            overrides["database_url"] = await stack.enter_async_context(postgres_schema())
        graph = await stack.enter_async_context(FakeGraph(token=None))
        setup = _setup(tmp_path, graph.url, **overrides)
        ids = setup.ids
        phone, psid = ids.phone(), ids.scoped()
        async with serving(setup) as first:
            assert await first.post(ids.text_message(Channel.WHATSAPP, phone)) == 200
            echo = fixture_json("messenger", "echo_page_inbox")  # staff answer psid by hand
            item = echo["entry"][0]["messaging"][0]
            item["recipient"]["id"] = psid
            item["message"]["mid"] = ids.content("m_" + secrets.token_urlsafe(30))
            assert await first.post(echo) == 200
            assert await first.post(ids.text_message(Channel.MESSENGER, psid)) == 200
            await first.service.drain()
            assert len(graph.requests) == 1
        later = Clock(now=FIXTURE_TIME + 91 * 86400)
        async with serving(setup, later, run_worker=False) as second:
            for _ in range(200):
                if capture.events().count("retention_purge") == 2:
                    break
                await asyncio.sleep(0.01)
            assert capture.events().count("retention_purge") == 2
            assert await second.get("/readyz") == 200
        if kind == "postgres":
            stored = await _postgres_rows(setup.settings.database_url)
        else:
            stored = _files(setup.data_dir)
    keyring = setup.keyring
    pseudonyms = {
        "whatsapp": keyring.contact(Channel.WHATSAPP, phone).encode(),
        "messenger": keyring.contact(Channel.MESSENGER, psid).encode(),
    }
    kept = [
        who for who, pseudonym in pseudonyms.items() if any(pseudonym in d for d in stored.values())
    ]
    assert kept == []  # SPEC §6: records older than the retention period are deleted
    assert_nothing_leaked(setup, capture, capfd, [*first.responses, *second.responses])


# -- erasure --------------------------------------------------------------------------------


def _env(monkeypatch: pytest.MonkeyPatch, setup: Setup) -> None:
    settings = setup.settings
    values = {
        "META_APP_SECRET": setup.app_secret,
        "META_VERIFY_TOKEN": setup.verify_token,
        "PSEUDONYM_KEY": setup.pseudonym_key,
        "PRACTICE_NAME": settings.practice_name,
        "PRACTICE_PHONE": settings.practice_phone,
        "PRACTICE_EMAIL": settings.practice_email or "",
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "MESSENGER_PAGE_ID": PAGE_ID,
        "DATABASE_URL": settings.database_url,
        "TEMPLATES_DIR": str(settings.templates_dir),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_privacy_forget_erases_every_trace_of_one_person(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After ``contacts forget`` the person's pseudonym is in no file; others' remain."""

    async def run() -> tuple[Setup, list[str]]:
        async with FakeGraph(token=None) as graph:
            setup = _setup(tmp_path, graph.url)
            ids = setup.ids
            people = [ids.phone(), ids.phone(), ids.scoped()]  # forgotten, kept, kept
            async with serving(setup) as http:
                for channel, sender in (
                    (Channel.WHATSAPP, people[0]),
                    (Channel.WHATSAPP, people[0]),
                    (Channel.WHATSAPP, people[1]),
                    (Channel.MESSENGER, people[2]),
                ):
                    assert await http.post(ids.text_message(channel, sender)) == 200
                    await http.service.drain()
                assert len(graph.requests) == 3
        return setup, people

    with captured_logs("debug") as stream:
        setup, (forgotten, kept, psid) = asyncio.run(run())
    _env(monkeypatch, setup)
    capsys.readouterr()
    spaced = f"+{forgotten[:2]} {forgotten[2:6]} {forgotten[6:]}"  # as a person would type it
    assert cli.main(["contacts", "forget", "--channel", "whatsapp", "--sender-id", spaced]) == 0
    assert capsys.readouterr().out == "deleted 2\n"
    assert cli.main(["contacts", "export", "--format", "json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    keyring = setup.keyring
    gone = keyring.contact(Channel.WHATSAPP, forgotten).encode()
    remaining = [keyring.contact(Channel.WHATSAPP, kept), keyring.contact(Channel.MESSENGER, psid)]
    assert sorted(row["pseudonym"] for row in exported) == sorted(remaining)
    files = _files(setup.data_dir)
    assert not any(gone in data for data in files.values())
    assert any(remaining[0].encode() in data for data in files.values())
    places = {**files, "export": json.dumps(exported).encode(), "log": stream.getvalue().encode()}
    assert _leaks(setup.ids.needles(), places) == []
