"""Prometheus metrics (SPEC §7, §9).

Labels carry channel names, fixed words and, in a group, the slugs of configured practices:
never an identifier from a payload.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from bot.logging import dropped_keys

__all__ = ["Labelled", "Metrics"]

# ``*_created`` timestamps double the exposition and carry nothing an alert needs.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream


class Labelled:
    """A labelled counter whose children are looked up once per label set.

    ``prometheus_client`` checks and converts the label values on every ``labels()`` call;
    the hot paths count the same few label sets thousands of times a second.
    """

    __slots__ = ("_children", "metric")

    def __init__(self, metric: Counter) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], Counter] = {}

    def inc(self, *labels: str) -> None:
        """Add one to the child for ``labels``."""
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self.metric.labels(*labels)
        child.inc()


class PracticeLabelled(Labelled):
    """A :class:`Labelled` counter whose first label is the practice, kept only in a group."""

    __slots__ = ("_group",)

    def __init__(self, metric: Counter, *, group: bool) -> None:
        super().__init__(metric)
        self._group = group

    def inc(self, *labels: str) -> None:
        """Add one for ``(practice, *rest)``; without a group the practice is left out."""
        super().inc(*(labels if self._group else labels[1:]))


class Metrics:
    """One registry per app, so several apps (tests, replicas in one process) never collide.

    In a group (``group``) the families that describe one practice's traffic (events,
    replies, Graph errors and usage, resends) carry a ``practice`` label first; a single
    practice's metrics are exactly those of SPEC §7.
    """

    def __init__(self, *, group: bool = False) -> None:
        self.group = group
        practice = ["practice"] if group else []
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhooks = Counter(
            "practice_bot_webhooks",
            "Webhook POSTs by channel and HTTP status.",
            ["channel", "status"],
            registry=self.registry,
        )
        self.events = Counter(
            "practice_bot_events",
            "Webhook events by channel, kind and ingest decision.",
            [*practice, "channel", "kind", "decision"],
            registry=self.registry,
        )
        self.replies = Counter(
            "practice_bot_replies",
            "Reply jobs ended, by channel and outcome.",
            [*practice, "channel", "outcome"],
            registry=self.registry,
        )
        self.graph_errors = Counter(
            "practice_bot_graph_errors",
            "Failed Graph API send attempts by channel and error class.",
            [*practice, "channel", "class"],
            registry=self.registry,
        )
        self.ambiguous_resends = Counter(
            "practice_bot_ambiguous_resends",
            "Sends repeated once because an earlier attempt may or may not have reached Meta.",
            [*practice, "channel"],
            registry=self.registry,
        )
        self.send_seconds = Histogram(
            "practice_bot_send_seconds",
            "Time of one Graph API send, retries included.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.graph_usage = Gauge(
            "practice_bot_graph_usage_percent",
            "Share of Meta's rate limit in use, as the channel's last Graph answer reported it.",
            [*practice, "channel"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "practice_bot_queue_depth",
            "Reply jobs not yet ended.",
            registry=self.registry,
        )
        self.template_reloads = Counter(
            "practice_bot_template_reloads",
            "Template reloads by result (ok, failed).",
            ["result"],
            registry=self.registry,
        )
        self.log_keys_dropped = Gauge(
            "practice_bot_log_keys_dropped",
            "Log fields dropped by the allow-list since start-up (a key nobody reviewed).",
            registry=self.registry,
        )
        self.log_keys_dropped.set_function(dropped_keys)

        self.count_webhook = Labelled(self.webhooks).inc
        self.count_event = PracticeLabelled(self.events, group=group).inc
        self.count_reply = PracticeLabelled(self.replies, group=group).inc

    def scoped(self, practice: str, *labels: str) -> tuple[str, ...]:
        """The label values of a per-practice family: ``practice`` first, in a group only."""
        return (practice, *labels) if self.group else labels

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
