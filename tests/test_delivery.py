"""Delivery through the worker: typed retries, ambiguous sends, stale jobs, requeue."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from adapters import REGISTRY
from bot.adapter import Outbound
from bot.events import Channel
from bot.job import UNEXPECTED_ERROR_CLAIMS
from bot.retry import RetryPolicy
from bot.settings import Settings
from bot.store.sqlite import SQLiteStore
from tests.helpers.fake_graph import Action, FakeGraph
from tests.helpers.fixtures import fixture_bytes
from tests.helpers.logs import captured_logs
from tests.helpers.service import (
    FIXTURE_TIME,
    PAGE_ID,
    PHONE_NUMBER_ID,
    Clock,
    Service,
    make_settings,
    running_service,
)


def _rows(service: Service, sql: str) -> list[tuple[Any, ...]]:
    store = service.store
    assert isinstance(store, SQLiteStore)
    return store.db.execute(sql).fetchall()


def _whatsapp_status(tag: str, status: str = "sent", code: int | None = None) -> dict[str, Any]:
    errors = [] if code is None else [{"code": code, "title": "failed"}]
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "184725930012345",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550001234",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            "statuses": [
                                {
                                    "id": "wamid.SENT1",
                                    "status": status,
                                    "timestamp": str(int(FIXTURE_TIME)),
                                    "recipient_id": "447700900123",
                                    "biz_opaque_callback_data": tag,
                                    **({"errors": errors} if errors else {}),
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def _messenger_echo(tag: str) -> dict[str, Any]:
    return {
        "object": "page",
        "entry": [
            {
                "id": PAGE_ID,
                "time": int(FIXTURE_TIME * 1000),
                "messaging": [
                    {
                        "sender": {"id": PAGE_ID},
                        "recipient": {"id": "6000000000000001"},
                        "timestamp": int(FIXTURE_TIME * 1000) + 500,
                        "message": {
                            "mid": "m_echo_of_bot",
                            "is_echo": True,
                            "metadata": tag,
                            "text": "x",
                        },
                    }
                ],
            }
        ],
    }


async def test_delivery_transient_503_then_success_sends_once(
    settings: Settings, graph: FakeGraph
) -> None:
    """A 503 is retried and exactly one reply lands."""
    graph.script(Action.error(503), Action.error(500, 2))
    async with running_service(settings) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        assert len(graph.requests) == 3
        assert _rows(service, "SELECT outcome FROM contact_log") == [("replied",)]


async def test_delivery_rate_limit_130429_is_retried(settings: Settings, graph: FakeGraph) -> None:
    """A 130429 throughput error is retried, then the reply lands once."""
    graph.script(Action.error(400, 130429, retry_after=0))
    async with running_service(settings) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        assert len(graph.requests) == 2
        assert _rows(service, "SELECT outcome FROM contact_log") == [("replied",)]


async def test_delivery_alert_error_fails_without_retry(
    settings: Settings, graph: FakeGraph
) -> None:
    """An expired token (190) fails the job after one request and counts an alert."""
    graph.script(Action.error(401, 190))
    async with running_service(settings) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        assert len(graph.requests) == 1
        assert _rows(service, "SELECT outcome FROM contact_log") == [("failed",)]
        metrics = await (await service.client.get("/metrics")).text()
        assert 'practice_bot_graph_errors_total{channel="whatsapp",class="alert"} 1.0' in metrics


async def test_delivery_window_closed_fails_and_releases_cooldown(
    settings: Settings, graph: FakeGraph
) -> None:
    """10/2018278 (window closed) fails the job and frees the contact for the next message."""
    graph.script(Action.error(400, 10, 2018278))
    second = fixture_bytes("messenger", "text").replace(b'"mid":"m_bV86', b'"mid":"m_AGAIN')
    async with running_service(settings) as service:
        await service.post(fixture_bytes("messenger", "text"))
        await service.drain()
        await service.post(second)
        await service.drain()
        assert len(graph.requests) == 2
        outcomes = _rows(service, "SELECT outcome FROM contact_log ORDER BY id")
        assert outcomes == [("failed",), ("replied",)]


async def test_delivery_outage_keeps_job_pending_then_sends(
    settings: Settings, graph: FakeGraph
) -> None:
    """When every attempt fails the job goes back to the queue, never dropped, and sends later."""
    clock = Clock()
    graph.script(*[Action.error(503)] * 3)
    async with running_service(settings, clock) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        assert len(graph.requests) == 3
        assert _rows(service, "SELECT state, outcome FROM reply_jobs") == [("pending", None)]
        assert _rows(service, "SELECT outcome FROM contact_log") == [("pending",)]
        clock.advance(601)
        await service.drain()
        assert len(graph.requests) == 4
        assert _rows(service, "SELECT outcome FROM contact_log") == [("replied",)]


async def test_delivery_reset_after_write_settled_by_status_is_not_resent(
    settings: Settings, graph: FakeGraph
) -> None:
    """A reset after the request was written waits; a status with the job's tag settles it."""
    clock = Clock()
    graph.script(Action.reset())
    async with running_service(settings, clock) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        assert _rows(service, "SELECT state FROM reply_jobs") == [("ambiguous",)]
        tag = graph.requests[0].json["biz_opaque_callback_data"]
        await service.post(_whatsapp_status(tag))
        await service.drain()
        clock.advance(200)
        await service.drain()
        assert len(graph.requests) == 1
        assert _rows(service, "SELECT outcome FROM contact_log") == [("replied",)]


async def test_delivery_messenger_echo_with_tag_settles_ambiguous_send(
    settings: Settings, graph: FakeGraph
) -> None:
    """On Messenger an echo carrying the job's tag in metadata settles the send."""
    clock = Clock()
    graph.script(Action.reset())
    async with running_service(settings, clock) as service:
        await service.post(fixture_bytes("messenger", "text"))
        await service.drain()
        tag = graph.requests[0].json["message"]["metadata"]
        await service.post(_messenger_echo(tag))
        clock.advance(200)
        await service.drain()
        assert len(graph.requests) == 1
        assert _rows(service, "SELECT outcome FROM contact_log") == [("replied",)]
        # The bot's own echo is not staff activity.
        assert _rows(service, "SELECT COUNT(*) FROM staff_activity") == [(0,)]


async def test_delivery_unsettled_ambiguous_send_is_resent_once_and_counted(
    settings: Settings, graph: FakeGraph
) -> None:
    """With no status within 120 s the reply is resent once, counted, and never a third time."""
    clock = Clock()
    graph.script(Action.reset(), Action.reset())
    async with running_service(settings, clock) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        clock.advance(60)
        await service.drain()
        assert len(graph.requests) == 1
        clock.advance(61)
        await service.drain()
        assert len(graph.requests) == 2
        clock.advance(121)
        await service.drain()
        assert len(graph.requests) == 2
        assert _rows(service, "SELECT outcome FROM contact_log") == [("ambiguous",)]
        metrics = await (await service.client.get("/metrics")).text()
        assert 'practice_bot_ambiguous_resends_total{channel="whatsapp"} 1.0' in metrics


async def test_delivery_job_older_than_window_ends_stale(
    settings: Settings, graph: FakeGraph
) -> None:
    """A job that comes up after REPLY_MAX_AGE_HOURS ends stale and is not sent."""
    clock = Clock()
    graph.script(*[Action.error(503)] * 3)
    async with running_service(settings, clock) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        clock.advance(23 * 3600)
        await service.drain()
        assert len(graph.requests) == 3
        assert _rows(service, "SELECT outcome FROM contact_log") == [("stale",)]
        assert _rows(service, "SELECT COUNT(*) FROM cooldowns") == [(0,)]


async def test_delivery_recipient_is_erased_when_job_ends(
    settings: Settings, graph: FakeGraph
) -> None:
    """The sealed recipient is kept only while the job is pending."""
    async with running_service(settings) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        assert _rows(service, "SELECT recipient FROM reply_jobs") == [(None,)]
        assert len(graph.requests) == 1


async def test_delivery_whatsapp_request_carries_no_context(
    settings: Settings, graph: FakeGraph
) -> None:
    """The raw inbound message id is not kept, so the reply never quotes it."""
    async with running_service(settings) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        body = json.dumps(graph.requests[0].json)
        assert "context" not in graph.requests[0].json
        assert "wamid" not in body


async def test_delivery_job_is_not_on_the_wire_between_attempts(
    settings: Settings, graph: FakeGraph
) -> None:
    """While waiting to retry a 503 the job is pending, so a crash then is no ambiguous send."""
    graph.script(Action.error(503))
    slow = RetryPolicy(max_attempts=2, initial=0.5, max_wait=0.5, jitter=0.0, deadline=5.0)
    async with running_service(settings, retry_policy=slow) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await graph.wait_for_requests(1)
        await asyncio.sleep(0.2)
        assert _rows(service, "SELECT state FROM reply_jobs") == [("pending",)]
        await service.drain()
        assert _rows(service, "SELECT outcome FROM contact_log") == [("replied",)]


async def test_delivery_failed_resend_keeps_the_job_ambiguous_and_resends_later(
    settings: Settings, graph: FakeGraph
) -> None:
    """A resend answered 503 undoes the resend: the next round may still resend once."""
    clock = Clock()
    graph.script(Action.reset(), *[Action.error(503)] * 3)
    async with running_service(settings, clock) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        clock.advance(121)
        await service.drain()
        assert len(graph.requests) == 4
        assert _rows(service, "SELECT state, resent FROM reply_jobs") == [("ambiguous", 0)]
        clock.advance(700)
        await service.drain()
        assert len(graph.requests) == 5
        assert _rows(service, "SELECT outcome FROM contact_log") == [("ambiguous",)]


async def test_delivery_settled_pending_job_ends_without_sending(
    settings: Settings, graph: FakeGraph
) -> None:
    """A status carrying a queued job's tag proves delivery: the job ends with no new send."""
    clock = Clock()
    graph.script(*[Action.error(503)] * 3)
    async with running_service(settings, clock) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        assert _rows(service, "SELECT state FROM reply_jobs") == [("pending",)]
        tag = graph.requests[0].json["biz_opaque_callback_data"]
        await service.post(_whatsapp_status(tag))
        clock.advance(601)
        await service.drain()
        assert len(graph.requests) == 3
        assert _rows(service, "SELECT outcome FROM contact_log") == [("replied",)]


async def test_delivery_status_webhook_is_counted_once(
    settings: Settings, graph: FakeGraph
) -> None:
    """A status with the bot's tag counts one status event in /metrics, not two."""
    async with running_service(settings) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        tag = graph.requests[0].json["biz_opaque_callback_data"]
        await service.post(_whatsapp_status(tag))
        metrics = await (await service.client.get("/metrics")).text()
        assert (
            'practice_bot_events_total{channel="whatsapp",decision="status",kind="status"} 1.0'
            in metrics
        )


async def test_delivery_counts_every_failed_attempt(settings: Settings, graph: FakeGraph) -> None:
    """Each failed attempt counts one Graph error of its class, retried or not."""
    graph.script(Action.error(429, 130429, retry_after=0), Action.error(500))
    async with running_service(settings) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        metrics = await (await service.client.get("/metrics")).text()
    assert len(graph.requests) == 3
    assert 'practice_bot_graph_errors_total{channel="whatsapp",class="rate_limited"} 1.0' in metrics
    assert 'practice_bot_graph_errors_total{channel="whatsapp",class="transient"} 1.0' in metrics


async def test_delivery_recipient_that_cannot_be_encoded_fails_at_once(
    settings: Settings, graph: FakeGraph
) -> None:
    """A sender id that can never be sent (a lone surrogate) ends the job failed, unsent."""
    body = fixture_bytes("messenger", "text").replace(
        b'"sender":{"id":"6000000000000001"}', b'"sender":{"id":"600000\\ud800"}'
    )
    async with running_service(settings) as service:
        assert (await service.post(body)).status == 200
        await service.drain()
        assert _rows(service, "SELECT outcome FROM contact_log") == [("failed",)]
    assert graph.requests == []


async def test_delivery_error_after_sending_ends_replied_unresent(
    settings: Settings, graph: FakeGraph
) -> None:
    """1/1357046 says the message went out despite the error: replied, and never resent."""
    clock = Clock()
    graph.script(Action.error(500, 1, 1357046))
    async with running_service(settings, clock) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        clock.advance(200)
        await service.drain()
        assert _rows(service, "SELECT outcome FROM contact_log") == [("replied",)]
    assert len(graph.requests) == 1


async def test_delivery_code_2_fails_after_an_hour(settings: Settings, graph: FakeGraph) -> None:
    """Code 2 is retried while the message is under an hour old, then the job fails."""
    clock = Clock()
    graph.decide = lambda _request: Action.error(500, 2)
    async with running_service(settings, clock) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        assert _rows(service, "SELECT outcome FROM contact_log") == [("pending",)]
        clock.advance(3601)
        await service.drain()
        assert _rows(service, "SELECT outcome FROM contact_log") == [("failed",)]
        assert _rows(service, "SELECT COUNT(*) FROM cooldowns") == [(0,)]


async def test_delivery_failed_status_after_reply_fails_the_record_and_frees_the_contact(
    settings: Settings, graph: FakeGraph
) -> None:
    """A reply Meta later reports failed: the record says failed, the next message is answered."""
    second = fixture_bytes("whatsapp", "text").replace(b"MDAwMDEA", b"MDAwMDIA")
    async with running_service(settings) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        tag = graph.requests[0].json["biz_opaque_callback_data"]
        await service.post(_whatsapp_status(tag, "failed", 131026))
        await service.post(second)
        await service.drain()
        outcomes = _rows(service, "SELECT outcome FROM contact_log ORDER BY id")
    assert outcomes == [("failed",), ("replied",)]
    assert len(graph.requests) == 2


async def test_delivery_failed_status_of_an_ambiguous_send_ends_it_failed_unresent(
    settings: Settings, graph: FakeGraph
) -> None:
    """A send whose answer was lost and then reported failed ends failed, not resent."""
    clock = Clock()
    graph.script(Action.reset())
    async with running_service(settings, clock) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        tag = graph.requests[0].json["biz_opaque_callback_data"]
        await service.post(_whatsapp_status(tag, "failed", 131026))
        clock.advance(200)
        await service.drain()
        assert _rows(service, "SELECT outcome FROM contact_log") == [("failed",)]
        assert _rows(service, "SELECT COUNT(*) FROM cooldowns") == [(0,)]
    assert len(graph.requests) == 1


async def test_delivery_account_error_in_a_status_raises_the_alert(
    settings: Settings, graph: FakeGraph
) -> None:
    """131031 (account locked) only arrives in statuses: it counts an alert like a send's."""
    async with running_service(settings) as service:
        await service.post(_whatsapp_status("pb-019b79a2a1c0a1b2c3d4e5f6", "failed", 131031))
        metrics = await (await service.client.get("/metrics")).text()
    assert 'practice_bot_graph_errors_total{channel="whatsapp",class="alert"} 1.0' in metrics


async def test_delivery_throttled_channel_pauses_while_others_send(
    settings: Settings, graph: FakeGraph
) -> None:
    """Graph reports WhatsApp throttled for a minute: WhatsApp waits, Messenger still sends."""
    usage = (
        '{"109876543210987":[{"type":"whatsapp_business_messaging","call_count":100,'
        '"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":1}]}'
    )
    graph.script(Action.ok(headers={"X-Business-Use-Case-Usage": usage}))
    second = fixture_bytes("whatsapp", "text").replace(b"900123", b"900124")
    async with running_service(settings) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await graph.wait_for_requests(1)
        await service.post(second.replace(b"MDAwMDEA", b"MDAwMDIA"))
        await service.post(fixture_bytes("messenger", "text"))
        await graph.wait_for_requests(2)
        await asyncio.sleep(0.3)
        metrics = await (await service.client.get("/metrics")).text()
    assert [r.node for r in graph.requests] == [PHONE_NUMBER_ID, PAGE_ID]
    assert 'practice_bot_graph_usage_percent{channel="whatsapp"} 100.0' in metrics


async def test_delivery_unexpected_error_ends_failed_after_three_claims(
    settings: Settings, graph: FakeGraph
) -> None:
    """A send that keeps hitting an error nobody foresaw is tried three times, then fails."""

    def broken(*_args: object, **_kwargs: object) -> Outbound:
        raise RuntimeError("a bug, not Meta")

    clock = Clock()
    platform = REGISTRY.replace(Channel.WHATSAPP, build_send=broken)
    async with running_service(settings, clock, platform=platform) as service:
        assert (await service.post(fixture_bytes("whatsapp", "text"))).status == 200
        for _ in range(UNEXPECTED_ERROR_CLAIMS):
            await service.drain()
            clock.advance(3600)
        await service.drain()
        assert _rows(service, "SELECT outcome, attempts FROM reply_jobs") == [
            ("failed", UNEXPECTED_ERROR_CLAIMS)
        ]
        assert _rows(service, "SELECT outcome FROM contact_log") == [("failed",)]
    assert graph.requests == []


async def test_delivery_records_which_template_was_sent(
    settings: Settings, graph: FakeGraph
) -> None:
    """A sent reply's record and its reply_ended line name the template file, not the text."""
    with captured_logs("info") as stream:
        async with running_service(settings) as service:
            await service.post(fixture_bytes("instagram", "text"))
            await service.drain()
            records = await service.store.contacts(None, None)
    assert len(graph.requests) == 1
    assert [(r.outcome, r.template) for r in records] == [("replied", "closed.txt")]
    [line] = [json.loads(x) for x in stream.getvalue().splitlines() if "reply_ended" in x]
    assert line["template"] == "closed.txt"


async def test_delivery_dry_run_records_the_template_it_would_send(tmp_path: Path) -> None:
    """In dry run nothing is sent, but the record says which text would have gone out."""
    settings = make_settings(tmp_path, whatsapp_access_token=None)
    async with running_service(settings) as service:
        await service.post(fixture_bytes("whatsapp", "text"))
        await service.drain()
        records = await service.store.contacts(None, None)
    assert [(r.outcome, r.template) for r in records] == [("dry_run", "closed.txt")]


async def test_delivery_failed_send_records_no_template(
    settings: Settings, graph: FakeGraph
) -> None:
    """A reply Meta refused for good records no template: no text reached the patient."""
    graph.script(Action.error(400, 100, 2018001))
    async with running_service(settings) as service:
        await service.post(fixture_bytes("messenger", "text"))
        await service.drain()
        records = await service.store.contacts(None, None)
    assert [(r.outcome, r.template) for r in records] == [("failed", None)]
