"""The retry policy of one send, against the fake Graph API: what is tried again, and when."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from structlog.testing import capture_logs

from adapters._meta.graph import GraphTransport
from bot.adapter import Outbound, SendResult
from bot.errors import DeliveryError, ErrorClass, GraphError
from bot.retry import RetryPolicy
from tests.helpers.fake_graph import Action, FakeGraph
from tests.helpers.sends import PHONE_ID, TOKEN, WA_BODY, closed_port, wa_send

T = ErrorClass.TRANSIENT
R = ErrorClass.RATE_LIMITED
P = ErrorClass.PERMANENT
A = ErrorClass.ALERT

FAST = RetryPolicy(
    max_attempts=4, initial=0.01, max_wait=0.02, jitter=0.0, deadline=10.0, max_retry_after=10.0
)


class Sleeps:
    """An injected sleep that records what it was asked for and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


class Sender:
    """One send under a policy: each attempt is one POST of the transport."""

    def __init__(
        self,
        transport: GraphTransport,
        policy: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._transport = transport
        self._policy = policy
        self._sleep = sleep

    async def send(self, outbound: Outbound) -> SendResult:
        return await self._policy.run(lambda: self._transport.post(outbound), sleep=self._sleep)


@pytest.fixture
def sleeps() -> Sleeps:
    """The recorded sleeps of one test."""
    return Sleeps()


@pytest.fixture
def sender(session: aiohttp.ClientSession, sleeps: Sleeps) -> Sender:
    """Sends with tiny waits and a recorded sleep."""
    return Sender(GraphTransport(session), FAST, sleeps)


@pytest.mark.parametrize("status", [500, 503])
async def test_retry_server_error_then_success_is_retried(
    graph: FakeGraph, sender: Sender, sleeps: Sleeps, status: int
) -> None:
    """A 5xx is resent and exactly one success lands."""
    graph.script(Action.error(status), Action.ok())
    result = await sender.send(wa_send(graph))
    assert result.message_id is not None
    assert len(graph.requests) == 2
    assert len(sleeps.calls) == 1


async def test_retry_transient_graph_code_is_retried(graph: FakeGraph, sender: Sender) -> None:
    """A transient Graph code in a 400 answer (131000) is resent."""
    graph.script(Action.error(400, 131000), Action.ok())
    await sender.send(wa_send(graph))
    assert len(graph.requests) == 2


async def test_retry_rate_limited_waits_retry_after(
    graph: FakeGraph, sender: Sender, sleeps: Sleeps
) -> None:
    """429 / 130429 with ``Retry-After: 3`` waits three seconds, then resends."""
    graph.script(Action.error(429, 130429, retry_after=3), Action.ok())
    await sender.send(wa_send(graph))
    assert sleeps.calls == [3.0]
    assert len(graph.requests) == 2


async def test_retry_pair_rate_limit_waits_meta_minimum(
    graph: FakeGraph, sender: Sender, sleeps: Sleeps
) -> None:
    """131056 without ``Retry-After`` still waits Meta's 6 s for the same user."""
    graph.script(Action.error(400, 131056), Action.ok())
    await sender.send(wa_send(graph))
    assert sleeps.calls == [6.0]


async def test_retry_backoff_grows_and_is_capped(
    graph: FakeGraph, session: aiohttp.ClientSession, sleeps: Sleeps
) -> None:
    """Waits double from ``initial`` and never pass ``max_wait``."""
    policy = RetryPolicy(max_attempts=5, initial=0.01, max_wait=0.03, jitter=0.0, deadline=10.0)
    sender = Sender(GraphTransport(session), policy, sleeps)
    graph.script(*[Action.error(503)] * 4)
    await sender.send(wa_send(graph))
    assert sleeps.calls == pytest.approx([0.01, 0.02, 0.03, 0.03])


async def test_retry_retry_after_beyond_limit_is_not_retried(
    graph: FakeGraph, session: aiohttp.ClientSession, sleeps: Sleeps
) -> None:
    """A ``Retry-After`` longer than ``max_retry_after`` goes back to the caller with its wait."""
    policy = RetryPolicy(initial=0.01, max_wait=0.02, jitter=0.0, max_retry_after=5.0)
    sender = Sender(GraphTransport(session), policy, sleeps)
    graph.script(Action.error(429, 4, retry_after=120))
    with pytest.raises(GraphError) as caught:
        await sender.send(wa_send(graph))
    assert caught.value.error_class is R
    assert caught.value.retry_after == 120.0
    assert sleeps.calls == []
    assert len(graph.requests) == 1


@pytest.mark.parametrize(
    "case",
    [(400, 131026, None), (400, 131047, None), (400, 10, 2018278), (400, 551, 1545041)],
    ids=str,
)
async def test_retry_permanent_error_is_not_retried(
    graph: FakeGraph, sender: Sender, sleeps: Sleeps, case: tuple[int, int, int | None]
) -> None:
    """Permanent answers end the send after one request."""
    status, code, subcode = case
    graph.script(Action.error(status, code, subcode))
    with pytest.raises(GraphError) as caught:
        await sender.send(wa_send(graph))
    assert caught.value.error_class is P
    assert (caught.value.code, caught.value.subcode) == (code, subcode)
    assert len(graph.requests) == 1
    assert sleeps.calls == []


@pytest.mark.parametrize(("status", "code"), [(401, 190), (403, 10), (403, 200)])
async def test_retry_alert_error_is_not_retried(
    graph: FakeGraph, sender: Sender, sleeps: Sleeps, status: int, code: int
) -> None:
    """Token and permission errors are alerts, sent once."""
    graph.script(Action.error(status, code))
    with pytest.raises(GraphError) as caught:
        await sender.send(wa_send(graph))
    assert caught.value.error_class is A
    assert not caught.value.ambiguous
    assert len(graph.requests) == 1
    assert sleeps.calls == []


async def test_retry_connection_refused_is_retried_then_not_ambiguous(
    session: aiohttp.ClientSession, sleeps: Sleeps
) -> None:
    """Nothing listening: every attempt is made, and the final error is not ambiguous."""
    policy = RetryPolicy(max_attempts=3, initial=0.01, max_wait=0.02, jitter=0.0)
    sender = Sender(GraphTransport(session), policy, sleeps)
    url = f"http://127.0.0.1:{closed_port()}/v25.0/{PHONE_ID}/messages"
    with pytest.raises(DeliveryError) as caught:
        await sender.send(Outbound(url=url, token=TOKEN, body=WA_BODY))
    assert not caught.value.ambiguous
    assert caught.value.error_class is T
    assert len(sleeps.calls) == 2


async def test_retry_attempts_are_capped(
    graph: FakeGraph, session: aiohttp.ClientSession, sleeps: Sleeps
) -> None:
    """A server that always fails gets ``max_attempts`` requests, then the last error."""
    graph.decide = lambda _request: Action.error(503, 2)
    policy = RetryPolicy(max_attempts=3, initial=0.01, max_wait=0.02, jitter=0.0)
    sender = Sender(GraphTransport(session), policy, sleeps)
    with pytest.raises(GraphError) as caught:
        await sender.send(wa_send(graph))
    assert (caught.value.status, caught.value.code) == (503, 2)
    assert not caught.value.ambiguous
    assert len(graph.requests) == 3


async def test_retry_deadline_stops_retries(
    graph: FakeGraph, session: aiohttp.ClientSession, sleeps: Sleeps
) -> None:
    """No attempt starts once its wait would pass the deadline."""
    graph.decide = lambda _request: Action.error(503)
    policy = RetryPolicy(max_attempts=10, initial=0.5, max_wait=1.0, jitter=0.0, deadline=0.2)
    sender = Sender(GraphTransport(session), policy, sleeps)
    with pytest.raises(GraphError):
        await sender.send(wa_send(graph))
    assert len(graph.requests) == 1
    assert sleeps.calls == []


async def test_retry_deadline_counts_real_time(
    graph: FakeGraph, session: aiohttp.ClientSession
) -> None:
    """Slow answers use up the deadline too, with real sleeps."""
    graph.decide = lambda _request: Action.error(503, delay=0.15)
    policy = RetryPolicy(max_attempts=10, initial=0.01, max_wait=0.01, jitter=0.0, deadline=0.4)
    sender = Sender(GraphTransport(session), policy, asyncio.sleep)
    with pytest.raises(GraphError):
        await sender.send(wa_send(graph))
    assert 2 <= len(graph.requests) <= 3


async def test_retry_retry_logs_numbers_only(graph: FakeGraph, sender: Sender) -> None:
    """Each retry logs one ``graph_retry`` line with the attempt, class and codes only."""
    graph.script(Action.error(503, 2, message="Patient Jane Doe"), Action.ok())
    with capture_logs() as logs:
        await sender.send(wa_send(graph))
    retries = [entry for entry in logs if entry["event"] == "graph_retry"]
    assert len(retries) == 1
    entry = retries[0]
    assert (entry["attempt"], entry["error_class"], entry["code"], entry["subcode"]) == (
        1,
        "transient",
        2,
        None,
    )
    shown = repr(logs)
    for secret in ("Jane", TOKEN, "447700900123", "Zoë"):
        assert secret not in shown


def test_retry_policy_rejects_nonsense() -> None:
    """Zero attempts or a negative wait cannot be configured."""
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=-1.0)


async def test_retry_ambiguous_send_is_not_retried(
    sender: Sender, graph: FakeGraph, sleeps: Sleeps
) -> None:
    """A reset after the request was read may have delivered: it is never sent again here."""
    graph.script(Action.reset())
    with pytest.raises(DeliveryError) as caught:
        await sender.send(wa_send(graph))
    assert caught.value.ambiguous
    assert len(graph.requests) == 1
    assert sleeps.calls == []


async def test_retry_other_exception_is_not_retried(sleeps: Sleeps) -> None:
    """Anything but a DeliveryError ends the send at once: retries are on a typed predicate."""
    calls: list[int] = []

    async def attempt() -> SendResult:
        calls.append(1)
        raise LookupError("not a delivery problem")

    with pytest.raises(LookupError):
        await FAST.run(attempt, sleep=sleeps)
    assert (calls, sleeps.calls) == ([1], [])
