"""The webhook service end to end: real HTTP in, a fake Graph API out, real SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.events import Channel
from bot.settings import Settings
from bot.store import describe_store
from bot.store.sqlite import SQLiteStore
from tests.helpers.fake_graph import DEFAULT_TOKEN, Action, FakeGraph
from tests.helpers.fixtures import fixture_bytes
from tests.helpers.logs import captured_logs
from tests.helpers.service import (
    APP_SECRET,
    FIXTURE_TIME,
    IG_ID,
    PAGE_ID,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    Clock,
    Service,
    make_settings,
    running_service,
)
from tests.helpers.signing import sign

CASES = {
    Channel.WHATSAPP: ("text", "447700900123"),
    Channel.MESSENGER: ("text", "6000000000000001"),
    Channel.INSTAGRAM: ("text", "7000000000000001"),
}


def _contact_rows(service: Service) -> list[tuple[Any, ...]]:
    store = service.store
    assert isinstance(store, SQLiteStore)
    return store.db.execute("SELECT channel, kind, outcome FROM contact_log ORDER BY id").fetchall()


def _expected_request(service: Service, channel: Channel, recipient: str) -> dict[str, Any]:
    at = datetime.fromtimestamp(service.clock.now, UTC)
    reply = service.runtime.templates.current.render(channel, at)
    if channel is Channel.WHATSAPP:
        assert len(reply.text) <= 1024
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": recipient,
            "type": "interactive",
            "interactive": {
                "type": "cta_url",
                "body": {"text": reply.text},
                "action": {
                    "name": "cta_url",
                    "parameters": {"display_text": "Book online", "url": reply.booking_url},
                },
            },
        }
    if channel is Channel.MESSENGER:
        return {
            "recipient": {"id": recipient},
            "messaging_type": "RESPONSE",
            "message": {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "button",
                        "text": reply.text,
                        "buttons": [
                            {"type": "web_url", "url": reply.booking_url, "title": "Book online"},
                            {
                                "type": "phone_number",
                                "title": "Call us",
                                "payload": "+442079460000",
                            },
                        ],
                    },
                },
            },
        }
    return {"recipient": {"id": recipient}, "message": {"text": reply.text}}


@pytest.mark.parametrize("channel", list(CASES))
async def test_webhook_signed_message_gets_one_reply_and_one_record(
    settings: Settings, graph: FakeGraph, channel: Channel
) -> None:
    """A signed message from each channel yields one Graph request and one contact record."""
    case, recipient = CASES[channel]
    async with running_service(settings) as service:
        response = await service.post(fixture_bytes(channel.value, case))
        assert response.status == 200
        await service.drain()
        requests = await graph.wait_for_requests(1)
        assert len(requests) == 1
        sent = requests[0]
        assert sent.authorization == f"Bearer {DEFAULT_TOKEN}"
        node = {
            Channel.WHATSAPP: PHONE_NUMBER_ID,
            Channel.MESSENGER: PAGE_ID,
            Channel.INSTAGRAM: IG_ID,
        }[channel]
        assert sent.path == f"/v25.0/{node}/messages"
        body = dict(sent.json)
        tag = body.pop("biz_opaque_callback_data", None)
        if channel is Channel.MESSENGER:
            tag = body["message"].pop("metadata")
        if channel is not Channel.INSTAGRAM:
            assert isinstance(tag, str)
            assert tag.startswith("pb-")
        assert body == _expected_request(service, channel, recipient)
        assert _contact_rows(service) == [(channel.value, "message", "replied")]


@pytest.mark.parametrize("channel", list(CASES))
async def test_webhook_redelivery_gets_no_second_reply(
    settings: Settings, graph: FakeGraph, channel: Channel
) -> None:
    """Meta redelivering the same message produces no new reply and no new record."""
    body = fixture_bytes(channel.value, CASES[channel][0])
    async with running_service(settings) as service:
        assert (await service.post(body)).status == 200
        await service.drain()
        assert (await service.post(body)).status == 200
        await service.drain()
        assert len(graph.requests) == 1
        assert len(_contact_rows(service)) == 1


async def test_webhook_redelivery_after_restart_gets_no_reply(
    settings: Settings, graph: FakeGraph
) -> None:
    """Dedupe survives a restart: the store, not memory, remembers the message id."""
    body = fixture_bytes("whatsapp", "text")
    async with running_service(settings) as service:
        await service.post(body)
        await service.drain()
    async with running_service(settings) as service:
        assert (await service.post(body)).status == 200
        await service.drain()
        assert len(graph.requests) == 1


async def test_webhook_second_message_inside_cooldown_is_recorded_not_answered(
    settings: Settings, graph: FakeGraph
) -> None:
    """A new message from the same patient within the cooldown gets a record but no reply."""
    first = fixture_bytes("messenger", "text")
    second = first.replace(b'"mid":"m_bV86', b'"mid":"m_SECOND')
    async with running_service(settings) as service:
        await service.post(first)
        await service.drain()
    async with running_service(settings) as service:
        await service.post(second)
        await service.drain()
        assert len(graph.requests) == 1
        outcomes = [row[2] for row in _contact_rows(service)]
        assert outcomes == ["replied", "cooldown"]


async def test_webhook_message_after_cooldown_gets_a_reply(
    settings: Settings, graph: FakeGraph
) -> None:
    """Once the cooldown has passed, the same patient gets a reply again."""
    clock = Clock()
    first = fixture_bytes("messenger", "text")
    later = first.replace(b'"mid":"m_bV86', b'"mid":"m_LATER').replace(
        b"1767261600000", str(int((FIXTURE_TIME + 25 * 3600) * 1000)).encode()
    )
    async with running_service(settings, clock) as service:
        await service.post(first)
        await service.drain()
        clock.advance(25 * 3600)
        await service.post(later)
        await service.drain()
        assert len(graph.requests) == 2


async def test_webhook_batch_from_one_patient_gets_one_reply(
    settings: Settings, graph: FakeGraph
) -> None:
    """Several messages from one patient in one POST claim the cooldown once."""
    payload = json.loads(fixture_bytes("whatsapp", "text"))
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    payload["entry"][0]["changes"][0]["value"]["messages"] = [
        {**message, "id": f"wamid.BATCH{i}"} for i in range(5)
    ]
    async with running_service(settings) as service:
        assert (await service.post(payload)).status == 200
        await service.drain()
        assert len(graph.requests) == 1
        outcomes = sorted(row[2] for row in _contact_rows(service))
        assert outcomes == ["cooldown"] * 4 + ["replied"]


async def test_webhook_stale_message_is_recorded_not_answered(
    settings: Settings, graph: FakeGraph
) -> None:
    """A message older than REPLY_MAX_AGE_HOURS by its signed timestamp gets no reply."""
    clock = Clock(now=FIXTURE_TIME + 24 * 3600)
    async with running_service(settings, clock) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        assert graph.requests == []
        assert _contact_rows(service) == [("whatsapp", "message", "stale")]


async def test_webhook_staff_echo_silences_the_bot(settings: Settings, graph: FakeGraph) -> None:
    """After a reply typed in the Page inbox, the bot stays quiet for that patient."""
    async with running_service(settings) as service:
        await service.post(fixture_bytes("messenger", "echo_page_inbox"))
        await service.post(fixture_bytes("messenger", "text"))
        await service.drain()
        assert graph.requests == []
        assert _contact_rows(service) == [("messenger", "message", "staff_active")]


async def test_webhook_own_echo_does_not_silence_the_bot(
    settings: Settings, graph: FakeGraph
) -> None:
    """An echo of the bot's own reply (its app id) is not staff activity."""
    async with running_service(settings) as service:
        await service.post(fixture_bytes("messenger", "echo_bot"))
        await service.post(fixture_bytes("messenger", "text"))
        await service.drain()
        assert len(graph.requests) == 1


async def test_webhook_channel_off_is_acknowledged_and_skipped(
    tmp_path: Path, graph: FakeGraph
) -> None:
    """Events for a channel without an id are acknowledged, with no record and no reply."""
    settings = make_settings(tmp_path, graph.url, instagram_account_id=None)
    async with running_service(settings) as service:
        assert (await service.post(fixture_bytes("instagram", "text"))).status == 200
        await service.drain()
        assert graph.requests == []
        assert _contact_rows(service) == []


async def test_webhook_other_account_is_acknowledged_and_skipped(
    tmp_path: Path, graph: FakeGraph
) -> None:
    """Events addressed to another phone number id are acknowledged and skipped."""
    settings = make_settings(tmp_path, graph.url, whatsapp_phone_number_id="999999999999999")
    async with running_service(settings) as service:
        assert (await service.post(fixture_bytes("whatsapp", "text"))).status == 200
        await service.drain()
        assert graph.requests == []
        assert _contact_rows(service) == []


async def test_webhook_dry_run_renders_and_records_without_sending(
    tmp_path: Path, graph: FakeGraph
) -> None:
    """A channel without a token records the outcome dry_run and sends nothing."""
    settings = make_settings(tmp_path, graph.url, whatsapp_access_token=None)
    async with running_service(settings) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        assert graph.requests == []
        assert _contact_rows(service) == [("whatsapp", "message", "dry_run")]


async def test_webhook_change_me_secret_forces_dry_run(tmp_path: Path, graph: FakeGraph) -> None:
    """A CHANGE-ME secret (a copied example file) keeps every channel from sending."""
    settings = make_settings(tmp_path, graph.url, meta_app_secret="CHANGE-ME-secret")
    async with running_service(settings) as service:
        service.secret = "CHANGE-ME-secret"
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        assert graph.requests == []
        assert _contact_rows(service) == [("whatsapp", "message", "dry_run")]


async def test_webhook_permanent_graph_error_fails_the_job(
    settings: Settings, graph: FakeGraph
) -> None:
    """A permanent Graph error (131026) ends the job as failed after one request."""
    graph.script(Action.error(400, 131026))
    async with running_service(settings) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        assert len(graph.requests) == 1
        assert _contact_rows(service) == [("whatsapp", "message", "failed")]


async def test_webhook_acknowledges_before_sending(settings: Settings, graph: FakeGraph) -> None:
    """The 200 does not wait for Meta: a hanging Graph API does not delay it."""
    graph.script(Action.hang(30))
    async with running_service(settings) as service:
        response = await service.post(fixture_bytes("whatsapp", "text"))
        assert response.status == 200
        requests = await graph.wait_for_requests(1)
        assert len(requests) == 1
        rows = _contact_rows(service)
        assert rows == [("whatsapp", "message", "pending")]


# -- refusals -----------------------------------------------------------------------------


async def test_webhook_missing_signature_is_401(settings: Settings) -> None:
    """A POST without X-Hub-Signature-256 is refused with 401."""
    async with running_service(settings, run_worker=False) as service:
        response = await service.client.post("/webhook", data=b"{}")
        assert response.status == 401


@pytest.mark.parametrize(
    "header",
    [
        "sha1=" + "0" * 40,
        "sha256=" + "A" * 64,
        "sha256=" + "0" * 63,
        "SHA256=" + "0" * 64,
        "sha256=" + "g" * 64,
    ],
)
async def test_webhook_malformed_signature_is_401(settings: Settings, header: str) -> None:
    """A signature header that is not sha256= plus 64 lowercase hex digits gets 401."""
    async with running_service(settings, run_worker=False) as service:
        response = await service.client.post(
            "/webhook", data=b"{}", headers={"X-Hub-Signature-256": header}
        )
        assert response.status == 401


async def test_webhook_uppercase_hex_of_valid_signature_is_401(settings: Settings) -> None:
    """The right HMAC in uppercase hex is malformed: no case folding."""
    body = b'{"object":"page","entry":[]}'
    header = "sha256=" + sign(body, APP_SECRET).removeprefix("sha256=").upper()
    async with running_service(settings, run_worker=False) as service:
        response = await service.client.post(
            "/webhook", data=body, headers={"X-Hub-Signature-256": header}
        )
        assert response.status == 401


async def test_webhook_wrong_secret_is_403_and_records_nothing(
    settings: Settings, graph: FakeGraph
) -> None:
    """A well-formed signature by another secret is refused with 403; nothing is stored."""
    async with running_service(settings) as service:
        response = await service.post(fixture_bytes("whatsapp", "text"), secret="other-secret")
        assert response.status == 403
        await service.drain()
        assert _contact_rows(service) == []
        assert graph.requests == []


async def test_webhook_rotated_secret_is_accepted(tmp_path: Path, graph: FakeGraph) -> None:
    """With META_APP_SECRET=new,old a body signed with the old secret is accepted."""
    settings = make_settings(tmp_path, graph.url, meta_app_secret=f"new-secret,{APP_SECRET}")
    async with running_service(settings) as service:
        assert (await service.post(fixture_bytes("whatsapp", "text"))).status == 200


async def test_webhook_instagram_secret_is_accepted(tmp_path: Path, graph: FakeGraph) -> None:
    """A body signed with INSTAGRAM_APP_SECRET (Instagram Login apps) is accepted."""
    settings = make_settings(tmp_path, graph.url, instagram_app_secret="ig-secret")
    async with running_service(settings) as service:
        response = await service.post(fixture_bytes("instagram", "text"), secret="ig-secret")
        assert response.status == 200


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"text"',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": 1e999}',
        b'{"a": -1e999}',
        b"\xff\xfe{}",
        b"[" * 5000 + b"]" * 5000,
        b'{"n": ' + b"9" * 5000 + b"}",
        b'{"object": "page"',
    ],
)
async def test_webhook_signed_body_that_is_not_a_json_object_is_400(
    settings: Settings, body: bytes
) -> None:
    """A correctly signed body that is not a UTF-8 JSON object gets 400."""
    async with running_service(settings, run_worker=False) as service:
        response = await service.post(body)
        assert response.status == 400


async def test_webhook_body_over_4_mib_is_413(settings: Settings) -> None:
    """A body over 4 MiB is refused with 413 before the signature is checked."""
    body = b'{"x":"' + b"a" * (4 * 1024 * 1024) + b'"}'
    async with running_service(settings, run_worker=False) as service:
        response = await service.post(body)
        assert response.status == 413


async def test_webhook_body_of_3_mb_is_accepted(settings: Settings) -> None:
    """A signed 3 MB batch is within the limit."""
    body = b'{"object":"page","entry":[],"pad":"' + b"a" * (3 * 1000 * 1000) + b'"}'
    async with running_service(settings, run_worker=False) as service:
        response = await service.post(body)
        assert response.status == 200


async def test_webhook_compressed_body_is_not_decompressed(settings: Settings) -> None:
    """Content-Encoding is ignored: the HMAC applies to the bytes on the wire."""
    body = b'{"object":"page","entry":[]}'
    async with running_service(settings, run_worker=False) as service:
        response = await service.client.post(
            "/webhook",
            data=body,
            headers={"X-Hub-Signature-256": sign(body, APP_SECRET), "Content-Encoding": "gzip"},
        )
        assert response.status == 200


async def test_webhook_unknown_object_is_acknowledged(settings: Settings) -> None:
    """A signed body with an unknown object is acknowledged with 200 and skipped."""
    async with running_service(settings, run_worker=False) as service:
        response = await service.post({"object": "user", "entry": [{"id": "1"}]})
        assert response.status == 200


async def test_webhook_store_down_answers_503_and_records_nothing(
    settings: Settings, graph: FakeGraph
) -> None:
    """When the store cannot write, the webhook answers 503 so Meta redelivers."""
    async with running_service(settings) as service:
        store = service.store
        assert isinstance(store, SQLiteStore)
        store.db.execute("PRAGMA query_only = ON")
        response = await service.post(fixture_bytes("whatsapp", "text"))
        assert response.status == 503
        store.db.execute("PRAGMA query_only = OFF")
        assert _contact_rows(service) == []
        response = await service.post(fixture_bytes("whatsapp", "text"))
        assert response.status == 200
        await service.drain()
        assert len(graph.requests) == 1


# -- handshake and health -----------------------------------------------------------------


async def test_handshake_valid_returns_challenge_as_text(settings: Settings) -> None:
    """The subscription handshake echoes the challenge verbatim as text/plain."""
    async with running_service(settings, run_worker=False) as service:
        response = await service.client.get(
            "/webhook",
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "1158201444",
            },
        )
        assert response.status == 200
        assert response.content_type == "text/plain"
        assert await response.text() == "1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "123"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "123"},
        {"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "123"},
        {"hub.mode": "subscribe", "hub.challenge": "123"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": ""},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "a" * 65},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "<b>x</b>"},
    ],
)
async def test_handshake_invalid_is_403(settings: Settings, params: dict[str, str]) -> None:
    """Any handshake with a wrong mode, token or challenge gets 403 and no echo."""
    async with running_service(settings, run_worker=False) as service:
        response = await service.client.get("/webhook", params=params)
        assert response.status == 403
        assert params.get("hub.challenge", "x") not in await response.text() or not params.get(
            "hub.challenge"
        )


async def test_healthz_answers_200(settings: Settings) -> None:
    """GET /healthz answers 200 while the process runs."""
    async with running_service(settings, run_worker=False) as service:
        assert (await service.client.get("/healthz")).status == 200


async def test_readyz_answers_503_when_store_is_closed(settings: Settings) -> None:
    """GET /readyz answers 503 when the store does not answer."""
    async with running_service(settings, run_worker=False) as service:
        assert (await service.client.get("/readyz")).status == 200
        await service.store.close()
        assert (await service.client.get("/readyz")).status == 503
        await service.store.open()


async def test_readyz_names_a_template_edit_that_failed(settings: Settings) -> None:
    """A broken template edit keeps the service ready and names the file in /readyz."""
    async with running_service(settings, run_worker=False) as service:
        reply = Path(settings.templates_dir) / "reply.txt"
        reply.write_text(reply.read_text() + "\n{unknown_placeholder}\n")
        service.runtime.templates.reload()
        response = await service.client.get("/readyz")
        assert response.status == 200
        assert "reply.txt" in await response.text()


async def test_metrics_exposes_webhook_counts(settings: Settings) -> None:
    """GET /metrics returns Prometheus text with the webhook counter."""
    async with running_service(settings, run_worker=False) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        text = await (await service.client.get("/metrics")).text()
        assert 'practice_bot_webhooks_total{channel="whatsapp",status="200"} 1.0' in text
        assert "practice_bot_events_total" in text


async def test_startup_line_says_address_channels_store_and_templates(tmp_path: Path) -> None:
    """One INFO line at start-up: where it listens, each channel's state, the store (without
    credentials) and the templates folder's state."""
    settings = make_settings(
        tmp_path, host="127.0.0.1", instagram_account_id=None, whatsapp_access_token=None
    )
    with captured_logs("info") as stream:
        async with running_service(settings, run_worker=False):
            pass
    [line] = [json.loads(x) for x in stream.getvalue().splitlines() if "service_started" in x]
    assert line["level"] == "info"
    assert (line["host"], line["port"]) == ("127.0.0.1", 8080)
    assert line["channels"] == "whatsapp:dry-run,messenger:sending,instagram:off"
    assert line["store"] == f"sqlite {tmp_path}/data/practice-bot.sqlite3"
    assert line["templates"] == f"{tmp_path}/templates: ok"


def test_describe_store_never_shows_credentials() -> None:
    """A PostgreSQL URL is described by host, port and database: no user, no password."""
    described = describe_store("postgresql://bot:s3cret-pw@db.internal:6543/practice")
    assert described == "postgresql db.internal:6543/practice"
