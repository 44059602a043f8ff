"""``practice-bot simulate``: one signed test message to a running service, and what became of it.

The IT person's check that a deployment works end to end before (or after) Meta is connected:
the message goes through the signature, the policy, the store, the worker and the templates
exactly as a patient's would. Its sender is made up (``bot.events.TEST_SENDER_PREFIX``), so
the service records it with kind ``test`` and never sends its reply to Meta. The answer is
read back from the contact log the service wrote, which this command opens read-only.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bot.events import TEST_SENDER_PREFIX, Channel, Outcome
from bot.pseudonym import Keyring
from bot.settings import Settings
from bot.store import ContactRecord, open_store
from bot.templates import LiveTemplates

__all__ = ["SimulateError", "SimulationReport", "simulate"]

SimulatedMessage = Callable[[str, str, str, float], dict[str, Any]]

# Long enough for the worker's next look at the queue and a slow disk; short enough that a
# service that never answers is reported while the IT person is still watching.
WAIT_FOR_OUTCOME = 15.0

# What the policy decided, as the outcome of the record says it.
_DECISIONS = {
    Outcome.COOLDOWN: "cooldown (this contact got a reply recently)",
    Outcome.STAFF_ACTIVE: "staff active (a person answered this contact recently)",
    Outcome.STALE: "stale (the message is too old to answer)",
}


class SimulateError(Exception):
    """The test message could not be sent or its record not found: one plain line."""


@dataclass(frozen=True, slots=True)
class SimulationReport:
    """What the service answered and recorded for the test message."""

    url: str
    http_status: int
    record: ContactRecord | None
    reply_text: str | None

    def lines(self) -> list[str]:
        """The report in plain words, one fact per line."""
        lines = [f"sent a signed test message to {self.url}: HTTP {self.http_status}"]
        record = self.record
        if record is None:
            lines.append(
                "no record of it in the contact log: is this command using the service's "
                "DATABASE_URL?"
            )
            return lines
        outcome = Outcome(record.outcome)
        decision = _DECISIONS.get(outcome, "reply")
        lines.append(f"decision: {decision}")
        if decision == "reply":
            lines.append(f"template: {record.template or '(none)'}")
            lines.append(f"outcome: {_outcome_words(outcome)}")
        if self.reply_text is not None:
            lines.append("reply, as the patient would see it:")
            lines.extend(f"  {line}" for line in self.reply_text.splitlines())
        return lines


def _outcome_words(outcome: Outcome) -> str:
    if outcome is Outcome.DRY_RUN:
        return "dry-run (rendered and recorded; test messages are never sent to Meta)"
    if outcome is Outcome.PENDING:
        return "still waiting for the worker"
    return outcome.value


async def simulate(
    settings: Settings,
    channel: Channel,
    *,
    url: str | None,
    simulated_message: SimulatedMessage,
    templates: LiveTemplates,
    practice: str = "",
    wait: float = WAIT_FOR_OUTCOME,
) -> SimulationReport:
    """Send one test message on ``channel`` to the service at ``url`` and report its fate;
    in a group, to ``practice`` (its slug), whose own settings ``settings`` are.

    Raises:
        SimulateError: the channel is off, or the service could not be reached.
    """
    account_id = _account_id(settings, channel)
    target = url or f"http://127.0.0.1:{settings.port}/webhook"
    sender = TEST_SENDER_PREFIX + "".join(secrets.choice("0123456789") for _ in range(12))
    now = time.time()
    body = json.dumps(
        simulated_message(account_id, sender, f"simulated.{secrets.token_hex(12)}", now)
    ).encode()
    secret = settings.app_secrets[0]
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    status = await _post(target, body, signature)
    keyring = Keyring(settings.pseudonym_key.get_secret_value())
    pseudonym = keyring.contact(channel, sender, practice=practice)
    record = await _record(settings, pseudonym, now, wait)
    reply = None
    if record is not None and record.template is not None:
        reply = templates.render(channel, datetime.fromtimestamp(now, UTC)).text
    return SimulationReport(url=target, http_status=status, record=record, reply_text=reply)


def _account_id(settings: Settings, channel: Channel) -> str:
    config = settings.send_configs().get(channel)
    if config is None:
        variable = {
            Channel.WHATSAPP: "WHATSAPP_PHONE_NUMBER_ID",
            Channel.MESSENGER: "MESSENGER_PAGE_ID",
            Channel.INSTAGRAM: "INSTAGRAM_ACCOUNT_ID",
        }[channel]
        raise SimulateError(f"{variable}: not set, so {channel.value} is off; set it first")
    return config.account_id


async def _post(url: str, body: bytes, signature: str) -> int:
    headers = {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.post(url, data=body, headers=headers) as response,
        ):
            return response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        raise SimulateError(
            f"--url: cannot reach the service at {url} ({type(error).__name__}); "
            "is it running, and on this port?"
        ) from None


async def _record(
    settings: Settings, pseudonym: str, since: float, wait: float
) -> ContactRecord | None:
    """The test message's contact record once its reply job has ended (or ``wait`` passed)."""
    store = open_store(settings.database_url, pool_size=1, create=False)
    await store.open()
    try:
        deadline = time.monotonic() + wait
        while True:
            found = [r for r in await store.contacts(since - 60, None) if r.pseudonym == pseudonym]
            record = found[-1] if found else None
            ended = record is not None and record.outcome != Outcome.PENDING
            if ended or time.monotonic() >= deadline:
                return record
            await asyncio.sleep(0.2)
    finally:
        await store.close()
