"""Who may use the manager's page: passwords, sessions, form tokens and the sign-in throttle.

Sessions are signed cookies (``bot.pseudonym.Keyring.session_mac``), not server state, so any
replica accepts a session another replica started. A session names its account and ends at
a fixed time; its signature covers the account's password hash, so changing the password
ends every session of that account. Each form carries a token derived from the session;
the sign-in form, before there is a session, a token that must match a cookie of its own.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.practices import ServedPractice
from bot.pseudonym import Keyring
from bot.settings import Settings

__all__ = [
    "ADMIN",
    "HASHER",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "Account",
    "Gate",
    "Throttle",
    "password_hashes",
]

ADMIN = "admin"  # the group's (or the one practice's) admin: every practice
SESSION_COOKIE = "pb_session"
LOGIN_COOKIE = "pb_login"
SESSION_SECONDS = 8 * 3600.0  # a working day; then sign in again
WINDOW = 15 * 60.0  # seconds over which failed sign-ins are counted
PER_CLIENT = 5  # failed sign-ins from one address per window
OVERALL = 30  # failed sign-ins from anywhere per window: a spread-out guess is slowed too


# New hashes use OWASP's argon2id parameters (19 MiB, 2 passes, 1 lane): a check costs tens of
# milliseconds and 19 MiB for that moment, where argon2-cffi's default profile takes 64 MiB,
# too much beside a service that stays under 150 MB. A hash keeps its own parameters, so one
# made with other parameters still verifies.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# A hash of a password nobody knows, checked when the account does not exist, so the time of a
# refusal does not tell whether the account does.
_NOBODY = (
    "$argon2id$v=19$m=19456,t=2,p=1$8BWkLjq+LJTcj5KI/0VM3Q$"
    "3jFQRyYErW4WBsWjgpPGOjD0R1F2l06PNch3y5di/uY"
)


@dataclass(frozen=True, slots=True)
class Account:
    """A signed-in person: the admin (``practices`` is None: all) or one practice's manager."""

    name: str
    practices: frozenset[str] | None

    def may_see(self, slug: str) -> bool:
        """Whether this account may see and change ``slug``'s texts and counts."""
        return self.practices is None or slug in self.practices


class Throttle:
    """Failed sign-ins per client address and overall, over a sliding window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_client: dict[str, deque[float]] = {}
        self._overall: deque[float] = deque()

    def wait(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: now)."""
        now = self._clock()
        waits = [
            self._wait(self._by_client.get(client, deque()), PER_CLIENT, now),
            self._wait(self._overall, OVERALL, now),
        ]
        return max(waits)

    def failed(self, client: str) -> None:
        """Count a failed sign-in from ``client``."""
        now = self._clock()
        self._by_client.setdefault(client, deque()).append(now)
        self._overall.append(now)
        if len(self._by_client) > 10_000:  # many addresses: forget those with nothing recent
            self._by_client = {c: q for c, q in self._by_client.items() if q[-1] > now - WINDOW}

    @staticmethod
    def _wait(failures: deque[float], limit: int, now: float) -> float:
        while failures and failures[0] <= now - WINDOW:
            failures.popleft()
        if len(failures) < limit:
            return 0.0
        return failures[-limit] + WINDOW - now


class Gate:
    """Checks passwords and reads and writes the session cookie's value.

    ``hashes`` maps each account that may sign in to its argon2 hash: ``admin`` always, and in
    a group each practice with a ``MANAGER_PASSWORD_HASH``; it is asked afresh each time, as
    a practice's file may change while the service runs.
    """

    def __init__(
        self,
        keyring: Keyring,
        hashes: Callable[[], Mapping[str, str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keyring = keyring
        self._hashes = hashes
        self._clock = clock
        self._checking = asyncio.Semaphore(1)  # one hash at a time: bounded CPU under attack
        self.throttle = Throttle()

    async def check_password(self, name: str, password: str) -> Account | None:
        """The account, if ``password`` is its password. Hashing runs off the event loop,
        so webhooks are answered meanwhile."""
        known = self._hashes().get(name)
        async with self._checking:
            ok = await asyncio.to_thread(self._verify, known or _NOBODY, password)
        if known is None or not ok:
            return None
        return _account(name)

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return HASHER.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    def start(self, account: Account) -> str:
        """A session cookie's value for ``account``."""
        body = {"a": account.name, "e": int(self._clock() + SESSION_SECONDS)}
        payload = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
        return f"{payload}.{self._mac(payload, account.name)}"

    def session(self, value: str | None) -> Account | None:
        """The account of a session cookie's value, if it is genuine and not expired."""
        if not value or value.count(".") != 1:
            return None
        payload, mac = value.split(".")
        try:
            body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            name, expires = str(body["a"]), float(body["e"])
        except (ValueError, KeyError, TypeError):
            return None
        if name not in self._hashes() or not hmac.compare_digest(mac, self._mac(payload, name)):
            return None
        if expires < self._clock():
            return None
        return _account(name)

    def form_token(self, session: str) -> str:
        """The token every form of this session carries."""
        return self._keyring.session_mac(f"form:{session}")[:32]

    def form_token_ok(self, session: str, token: str | None) -> bool:
        """Whether a form posted with this session carries its token."""
        return token is not None and hmac.compare_digest(self.form_token(session), token)

    def _mac(self, payload: str, name: str) -> str:
        hashed = self._hashes().get(name, "")
        return self._keyring.session_mac(f"session:{payload}:{hashed}")


def password_hashes(settings: Settings, practices: Sequence[ServedPractice]) -> dict[str, str]:
    """Who may sign in, and their argon2 hashes: the admin (``ADMIN_PASSWORD_HASH``), and in a
    group each practice that has a ``MANAGER_PASSWORD_HASH`` (read afresh: its file may
    change while the service runs)."""
    admin = settings.admin_password_hash
    hashes = {ADMIN: admin.get_secret_value()} if admin is not None else {}
    for practice in practices:
        own = practice.settings.manager_password_hash
        if practice.slug and own is not None:
            hashes[practice.slug] = own.get_secret_value()
    return hashes


def new_login_token() -> str:
    """A random token for the sign-in form and its cookie (double submit)."""
    return secrets.token_urlsafe(24)


def _account(name: str) -> Account:
    return Account(name, None if name == ADMIN else frozenset({name}))
