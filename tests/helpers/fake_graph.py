"""A fake Graph API on 127.0.0.1 that answers sends the way Meta does, and can misbehave on cue.

Usable from pytest and from a plain script::

    async with FakeGraph(token="t") as graph:
        graph.script(Action.error(503), Action.ok())   # the next two requests
        url = graph.messages_url("123456")             # http://127.0.0.1:<port>/v25.0/123456/messages
        ...
        assert len(graph.requests) == 2

Routes (POST only): ``/{version}/{id}/messages`` and ``/{version}/me/messages``. A body with
``"messaging_product": "whatsapp"`` gets WhatsApp's answer
(``{"messaging_product","contacts":[{"input","wa_id"}],"messages":[{"id":"wamid.…"}]}``),
any other body Messenger / Instagram's (``{"recipient_id","message_id":"m_…"}``). A missing or
wrong bearer token gets 401 with code 190, like Meta; that check comes before any scripted
action and does not consume one.

What happens to a request is decided by, in order: the bearer check, the ``decide`` callable
(if set and it returns an ``Action``), the queue filled by ``script()``, else a normal answer.
Every request is recorded in ``requests`` before it is answered, even one that is then reset
or left hanging. ``on_sent`` is called with each successful send and Meta's answer (an async
``on_sent`` runs as a task, so it can post a status webhook back while the send returns).

Run alone: ``python -m tests.helpers.fake_graph --port 8999 --token t``.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import itertools
import json
import math
import re
import secrets
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

__all__ = ["DEFAULT_TOKEN", "Action", "FakeGraph", "RecordedRequest", "error_body"]

DEFAULT_TOKEN = "test-token"
_PATH = re.compile(r"^/(?P<version>v\d+\.\d+)/(?P<node>[A-Za-z0-9_]+)/messages$")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake saw it; ``json`` is the decoded body or ``None`` if unreadable."""

    method: str
    path: str
    authorization: str | None
    content_type: str | None
    raw: bytes = field(repr=False)
    json: Any = field(repr=False)
    at: float  # time.monotonic() when the body had been read
    index: int  # 0-based arrival order

    @property
    def version(self) -> str | None:
        """The Graph version of the path (``v25.0``), if it is a send path."""
        match = _PATH.match(self.path)
        return match["version"] if match else None

    @property
    def node(self) -> str | None:
        """The id (or ``me``) the send was addressed to, if it is a send path."""
        match = _PATH.match(self.path)
        return match["node"] if match else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """What the fake does with one request. Build with the class methods."""

    kind: str = "ok"  # ok | error | reset | hang
    status: int = 200
    code: int | None = None
    subcode: int | None = None
    error_type: str = "OAuthException"
    message: str = "An error occurred"
    retry_after: str | None = None
    body: bytes | None = None  # exact bytes to answer with instead of Meta's shape
    delay: float = 0.0  # seconds before answering (or before resetting)
    hang_for: float = math.inf  # for ``hang``: seconds, or until the server stops
    headers: tuple[tuple[str, str], ...] = ()  # extra answer headers, e.g. usage reports

    @classmethod
    def ok(
        cls,
        *,
        delay: float = 0.0,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Self:
        """Answer like Meta's success (or with ``body``, still 200), after ``delay`` seconds."""
        return cls(kind="ok", delay=delay, body=body, headers=tuple((headers or {}).items()))

    @classmethod
    def error(
        cls,
        status: int,
        code: int | None = None,
        subcode: int | None = None,
        *,
        retry_after: float | str | None = None,
        error_type: str = "OAuthException",
        message: str | None = None,
        body: bytes | None = None,
        delay: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> Self:
        """Answer ``status`` with Meta's error body (no body at all when ``code`` is None)."""
        return cls(
            kind="error",
            status=status,
            code=code,
            subcode=subcode,
            error_type=error_type,
            message=message if message is not None else f"(#{code}) An error occurred",
            retry_after=None if retry_after is None else str(retry_after),
            body=body,
            delay=delay,
            headers=tuple((headers or {}).items()),
        )

    @classmethod
    def reset(cls, *, delay: float = 0.0) -> Self:
        """Read the request, then close the connection without answering."""
        return cls(kind="reset", delay=delay)

    @classmethod
    def hang(cls, seconds: float = math.inf) -> Self:
        """Read the request, answer nothing for ``seconds`` (default: until stop), then reset."""
        return cls(kind="hang", hang_for=seconds)


Decide = Callable[[RecordedRequest], Action | None]
OnSent = Callable[[RecordedRequest, dict[str, Any]], Awaitable[None] | None]


def error_body(
    code: int, subcode: int | None = None, *, error_type: str = "OAuthException", message: str = ""
) -> bytes:
    """A Graph error body shaped like Meta's."""
    error: dict[str, Any] = {
        "message": message or f"(#{code}) An error occurred",
        "type": error_type,
        "code": code,
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
    return json.dumps({"error": error}).encode()


class FakeGraph:
    """The fake Graph API server. ``async with`` starts and stops it."""

    def __init__(
        self,
        *,
        token: str | Collection[str] | None = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        version: str = "v25.0",
        decide: Decide | None = None,
        on_sent: OnSent | None = None,
    ) -> None:
        """``token``: the accepted bearer token(s); ``None`` accepts any non-empty token."""
        if isinstance(token, str):
            self._tokens: frozenset[str] | None = frozenset({token})
        elif token is None:
            self._tokens = None
        else:
            self._tokens = frozenset(token)
        self._host = host
        self._port = port
        self.version = version
        self.decide = decide
        self.on_sent = on_sent
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Action] = deque()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._arrived = asyncio.Condition()

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on ``host`` (a random free port unless one was given)."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self._port = int(address[1])
        self._stopping.clear()

    async def stop(self) -> None:
        """Release hanging requests, wait for ``on_sent`` tasks, and close the server."""
        self._stopping.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- addresses ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port the server listens on (after ``start``)."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL, no trailing slash: what ``GRAPH_API_URL`` is set to in tests."""
        return f"http://{self._host}:{self._port}"

    def messages_url(self, node: str = "me", *, version: str | None = None) -> str:
        """``{url}/{version}/{node}/messages``."""
        return f"{self.url}/{version or self.version}/{node}/messages"

    # -- scripting ------------------------------------------------------------------------
    def script(self, *actions: Action) -> None:
        """Queue actions for the next requests, in order; afterwards requests succeed."""
        self._queue.extend(actions)

    def clear(self) -> None:
        """Forget recorded requests and queued actions."""
        self.requests.clear()
        self._queue.clear()

    @property
    def pending(self) -> int:
        """How many scripted actions are still queued."""
        return len(self._queue)

    async def wait_for_requests(self, count: int, *, within: float = 5.0) -> list[RecordedRequest]:
        """Wait (at most ``within`` seconds) until ``count`` requests have been recorded."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return list(self.requests)

    # -- the server -----------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            decoded: Any = json.loads(raw)
        except (ValueError, RecursionError):
            decoded = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            authorization=request.headers.get("Authorization"),
            content_type=request.headers.get("Content-Type"),
            raw=raw,
            json=decoded,
            at=time.monotonic(),
            index=len(self.requests),
        )
        async with self._arrived:
            self.requests.append(record)
            self._arrived.notify_all()

        if not self._authorised(record.authorization):
            return self._error(
                401,
                error_body(190, message="Invalid OAuth access token - Cannot parse access token"),
            )
        action = self.decide(record) if self.decide is not None else None
        if action is None and self._queue:
            action = self._queue.popleft()
        if action is None:
            action = Action.ok()

        if action.delay > 0:
            await self._pause(action.delay)
        if action.kind == "hang":
            await self._pause(action.hang_for)
        if action.kind in {"reset", "hang"}:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=204)  # never written: the transport is gone
        if action.kind == "error":
            headers = dict(action.headers)
            if action.retry_after:
                headers["Retry-After"] = action.retry_after
            if action.body is not None:
                body = action.body
            elif action.code is not None:
                body = error_body(
                    action.code,
                    action.subcode,
                    error_type=action.error_type,
                    message=action.message,
                )
            else:
                body = b""
            return self._error(action.status, body, headers)
        return self._success(record, action)

    def _authorised(self, authorization: str | None) -> bool:
        if authorization is None or not authorization.startswith("Bearer "):
            return False
        token = authorization.removeprefix("Bearer ")
        if not token:
            return False
        return self._tokens is None or token in self._tokens

    async def _pause(self, seconds: float) -> None:
        if math.isinf(seconds):
            await self._stopping.wait()
            return
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            return

    @staticmethod
    def _error(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            status=status,
            body=body,
            headers=headers,
            content_type="application/json" if body else None,
        )

    def _success(self, record: RecordedRequest, action: Action) -> web.Response:
        match = _PATH.match(record.path)
        if record.method != "POST" or match is None:
            return self._error(
                400,
                error_body(2500, message="Unknown path components", error_type="OAuthException"),
            )
        body = record.json if isinstance(record.json, dict) else None
        answer = self._answer(body)
        if answer is None:
            return self._error(400, error_body(100, message="(#100) Invalid parameter"))
        if self.on_sent is not None:
            result = self.on_sent(record, answer)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        if action.body is not None:
            return web.Response(status=200, body=action.body, headers=dict(action.headers))
        return web.json_response(answer, headers=dict(action.headers))

    def _answer(self, body: dict[str, Any] | None) -> dict[str, Any] | None:
        """Meta's success answer for a send body, or None when Meta would reject it (#100)."""
        if body is None:
            return None
        n = next(self._ids)
        unique = f"{n:08d}{secrets.token_hex(8)}"
        if body.get("messaging_product") == "whatsapp":
            to = body.get("to")
            user = body.get("recipient")
            if isinstance(to, str) and to:
                contact = {"input": to, "wa_id": "".join(c for c in to if c.isdigit())}
            elif isinstance(user, str) and user:
                contact = {"input": user, "user_id": user}
            else:
                return None
            return {
                "messaging_product": "whatsapp",
                "contacts": [contact],
                "messages": [{"id": f"wamid.{unique}"}],
            }
        recipient = body.get("recipient")
        if not isinstance(recipient, dict) or not isinstance(recipient.get("id"), str):
            return None
        if not isinstance(body.get("message"), dict):
            return None
        return {"recipient_id": recipient["id"], "message_id": f"m_{unique}"}


async def _serve(host: str, port: int, token: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with FakeGraph(token=token, host=host, port=port) as graph:
        sys.stdout.write(f"fake graph listening on {graph.url}\n")
        sys.stdout.flush()
        await stop.wait()
        sys.stdout.write(f"requests: {len(graph.requests)}\n")


def main(argv: list[str] | None = None) -> None:
    """Run the fake alone until SIGINT / SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=None, help="accepted bearer token (default: any)")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, args.token))


if __name__ == "__main__":
    main()
