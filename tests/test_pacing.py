"""Each channel's pace: Meta's throughput per number, slowed or paused as Graph reports."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.adapter import Usage
from bot.events import Channel
from bot.job import Queue
from bot.metrics import Metrics
from bot.worker import Pacer, TokenBucket, pace_factor


@dataclass
class Ticks:
    """A monotonic clock the test moves."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_at_its_rate() -> None:
    """A bucket spends its burst, then earns ``rate`` tokens a second."""
    ticks = Ticks()
    bucket = TokenBucket(10, ticks)
    bucket.take(bucket.available())
    ticks.now += 0.5
    assert bucket.available() == 5


def test_token_bucket_paused_gives_nothing_until_the_pause_ends() -> None:
    """A paused bucket holds no token, says how long to wait, and refills after the pause."""
    ticks = Ticks()
    bucket = TokenBucket(10, ticks)
    bucket.pace(1.0, pause=60)
    assert bucket.available() == 0
    assert bucket.wait() == pytest.approx(60.1)
    ticks.now += 60.5
    assert bucket.available() == 5


def test_token_bucket_slowed_earns_at_its_new_rate() -> None:
    """A slowed bucket earns tokens at its share of the base rate."""
    ticks = Ticks()
    bucket = TokenBucket(80, ticks)
    bucket.take(bucket.available())
    bucket.pace(0.25)
    ticks.now += 1.0
    assert bucket.available() == 20


@pytest.mark.parametrize(
    ("percent", "factor"), [(0, 1.0), (74.9, 1.0), (75, 1.0), (87.5, 0.5), (100, 0.1), (180, 0.1)]
)
def test_pace_factor_slows_as_usage_nears_the_limit(percent: float, factor: float) -> None:
    """Full pace below 75 % of the limit, then less and less, never below a tenth."""
    assert pace_factor(percent) == pytest.approx(factor)


WHATSAPP_A = Queue("a", Channel.WHATSAPP)
MESSENGER_A = Queue("a", Channel.MESSENGER)
WHATSAPP_B = Queue("b", Channel.WHATSAPP)


def test_pacer_pauses_only_the_throttled_queue() -> None:
    """A regain time pauses that practice's channel; its other channel and the other
    practice keep their pace."""
    ticks = Ticks()
    pacer = Pacer({WHATSAPP_A: 80, MESSENGER_A: 250, WHATSAPP_B: 80}, Metrics(), ticks)
    pacer.observe(WHATSAPP_A, Usage(percent=100, regain_after=300))
    assert pacer.buckets[WHATSAPP_A].available() == 0
    assert pacer.buckets[MESSENGER_A].available() == 250
    assert pacer.buckets[WHATSAPP_B].available() == 80


def test_pacer_exposes_usage_per_channel() -> None:
    """The last usage Graph reported is a gauge per channel."""
    metrics = Metrics()
    pacer = Pacer({Queue("", Channel.WHATSAPP): 80}, metrics, Ticks())
    pacer.observe(Queue("", Channel.WHATSAPP), Usage(percent=42))
    value = metrics.registry.get_sample_value(
        "practice_bot_graph_usage_percent", {"channel": "whatsapp"}
    )
    assert value == 42.0


def test_pacer_in_a_group_exposes_usage_per_practice() -> None:
    """In a group the usage gauge carries the practice's slug as well."""
    metrics = Metrics(group=True)
    pacer = Pacer({WHATSAPP_A: 80, WHATSAPP_B: 80}, metrics, Ticks())
    pacer.observe(WHATSAPP_B, Usage(percent=42))
    value = metrics.registry.get_sample_value(
        "practice_bot_graph_usage_percent", {"practice": "b", "channel": "whatsapp"}
    )
    assert value == 42.0


def test_pacer_configure_keeps_a_kept_queues_pause() -> None:
    """New rates add and drop queues; a queue Meta paused stays paused at its new rate."""
    ticks = Ticks()
    pacer = Pacer({WHATSAPP_A: 80, WHATSAPP_B: 80}, Metrics(), ticks)
    pacer.observe(WHATSAPP_A, Usage(percent=100, regain_after=300))
    pacer.configure({WHATSAPP_A: 20, MESSENGER_A: 250})
    assert set(pacer.buckets) == {WHATSAPP_A, MESSENGER_A}
    assert pacer.buckets[WHATSAPP_A].available() == 0
    assert pacer.buckets[WHATSAPP_A].base_rate == 20
