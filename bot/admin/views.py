"""The practice manager's page: sign-in, texts, closures and schedule, contact counts.

Served by the same app on the same port under ``/admin``, only when ``ADMIN_PASSWORD_HASH``
is set. Every page is rendered on the server (Jinja2, autoescaped) with no script at all, so
the Content-Security-Policy forbids every script. Nothing here touches the webhook path.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Protocol

import markupsafe
import structlog
from aiohttp import web
from multidict import MultiDictProxy

from bot import __version__
from bot.admin import PAGES
from bot.admin.auth import (
    ADMIN,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Account,
    Gate,
    new_login_token,
)
from bot.admin.chart import NAMES, contacts_chart, daily_counts, totals
from bot.admin.periods import describe, periods
from bot.admin.texts import check_draft, editable, on_disk, save, target_folder
from bot.compliance import build_pack, render_html, render_markdown
from bot.errors import StoreUnavailable
from bot.events import Channel
from bot.export import export
from bot.languages import ENGLISH
from bot.practices import Practices, ServedPractice
from bot.store import ContactRecord, Store
from bot.templates.closures import CLOSURES_FILE, closure_key
from bot.templates.files import TemplateKind, text_name, text_parts
from bot.templates.preview import channel_previews, moment_text

__all__ = ["add_admin"]

log = structlog.get_logger("bot.admin")

CHART_DAYS = 30
SCHEDULE_DAYS = 14
_HEADERS = {
    # No script at all: forms and links only. Styles from our own stylesheet.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_PURPOSES = {
    "reply.txt": "while the practice is open, on every app without a text of its own",
    "closed.txt": "while the practice is closed, on every app without a text of its own",
    CLOSURES_FILE: "the days the practice is closed (read with CLOSED_DATES)",
}


class Served(Protocol):
    """What the page needs of the running service (``bot.app.Runtime``)."""

    @property
    def practices(self) -> Practices:
        """The practices served now."""
        ...

    @property
    def store(self) -> Store:
        """The store (the contact log)."""
        ...

    @property
    def clock(self) -> Callable[[], float]:
        """The service's clock."""
        ...

    async def keep_texts(self, practices: Sequence[ServedPractice]) -> None:
        """Keep the texts in use of ``practices`` as their last good sets."""
        ...


gate_key = web.AppKey("admin_gate", Gate)
served_key = web.AppKey("admin_served", Served)
account_key = web.RequestKey("admin_account", Account)
form_key = web.RequestKey("admin_form", MultiDictProxy)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_admin(app: web.Application, gate: Gate, served: Served) -> None:
    """The page's routes, over the running service ``served``."""
    app[gate_key] = gate
    app[served_key] = served
    routes = [
        web.get("/admin", _front),
        web.get("/admin/login", _login_form),
        web.post("/admin/login", _login),
        web.post("/admin/logout", _signed_in(_logout)),
        web.get("/admin/texts", _signed_in(_texts)),
        web.get("/admin/texts/{name}", _signed_in(_edit)),
        web.post("/admin/texts/{name}", _signed_in(_edit_post)),
        web.get("/admin/schedule", _signed_in(_schedule)),
        web.get("/admin/contacts", _signed_in(_contacts)),
        web.get("/admin/contacts.csv", _signed_in(_contacts_csv)),
        web.get("/admin/evidence-pack.{kind:html|md}", _signed_in(_evidence_pack)),
        web.get("/admin/admin.css", _stylesheet),
    ]
    app.router.add_routes(routes)


# -- plumbing -------------------------------------------------------------------------


def _rt(request: web.Request) -> Served:
    return request.app[served_key]


def _page(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    account = request.get(account_key)
    session = request.cookies.get(SESSION_COOKIE, "")
    body = PAGES.get_template(template).render(
        account=account,
        token=request.app[gate_key].form_token(session) if account else "",
        **context,
    )
    return web.Response(text=body, status=status, content_type="text/html", headers=_HEADERS)


def _signed_in(handler: Handler) -> Handler:
    """Only for a signed-in account; a form must carry the session's token."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        gate = request.app[gate_key]
        session = request.cookies.get(SESSION_COOKIE)
        account = gate.session(session)
        if account is None or session is None:
            if request.method == "GET":
                raise web.HTTPSeeOther("/admin/login")
            raise web.HTTPForbidden(text="Your session has ended: sign in again.")
        if request.method == "POST":
            form = await request.post()
            token = form.get("token")
            if not gate.form_token_ok(session, token if isinstance(token, str) else None):
                raise web.HTTPForbidden(text="This form has expired: go back and try again.")
            request[form_key] = form
        request[account_key] = account
        return await handler(request)

    return guarded


def _practice(request: web.Request) -> ServedPractice:
    """The practice the request is about (``practice=``), if this account may see it."""
    account = request[account_key]
    form = request.get(form_key)
    wanted = request.query.get("practice") or (form.get("practice") if form else None) or None
    served = [p for p in _rt(request).practices.served if account.may_see(p.slug)]
    if not served:
        raise web.HTTPNotFound
    if wanted is None:
        return served[0]
    for practice in served:
        if practice.slug == wanted:
            return practice
    raise web.HTTPNotFound(text="No such practice.")


def _common(request: web.Request, practice: ServedPractice, section: str) -> dict[str, Any]:
    account = request[account_key]
    return {
        "practice": practice,
        "practices": [p for p in _rt(request).practices.served if account.may_see(p.slug)],
        "section": section,
        "query": f"?practice={practice.slug}" if practice.slug else "",
    }


def _who(request: web.Request) -> str:
    account = request[account_key]
    return account.name


def _client(request: web.Request) -> str:
    return request.remote or "unknown"


def _secure(request: web.Request) -> bool:
    # Behind a TLS proxy the request reaches us as plain HTTP; the proxy says so.
    return request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"


# -- signing in ------------------------------------------------------------------------


async def _front(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/admin/texts")


async def _login_form(request: web.Request, *, status: int = 200, error: str = "") -> web.Response:
    login = new_login_token()
    response = _page(
        request,
        "login.html",
        status=status,
        login=login,
        error=error,
        group=_rt(request).practices.group,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        login,
        max_age=3600,
        path="/admin/login",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    return response


async def _login(request: web.Request) -> web.StreamResponse:
    gate = request.app[gate_key]
    client = _client(request)
    wait = gate.throttle.wait(client)
    if wait > 0:
        minutes = max(1, round(wait / 60))
        response = await _login_form(
            request, status=429, error=f"Too many attempts. Try again in {minutes} minutes."
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    form = await request.post()
    login = form.get("login")
    if not isinstance(login, str) or login != request.cookies.get(LOGIN_COOKIE):
        return await _login_form(request, status=403, error="The form expired: try again.")
    name = str(form.get("account") or ADMIN).strip().lower()
    password = str(form.get("password") or "")
    account = await gate.check_password(name, password)
    if account is None:
        gate.throttle.failed(client)
        log.warning("admin_sign_in_failed")
        return await _login_form(
            request, status=401, error="That password is not right for that account."
        )
    log.info("admin_action", who=account.name, action="sign_in")
    response = web.HTTPSeeOther("/admin/texts")
    response.set_cookie(
        SESSION_COOKIE,
        gate.start(account),
        max_age=int(SESSION_SECONDS),
        path="/admin",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    response.del_cookie(LOGIN_COOKIE, path="/admin/login")
    raise response


async def _logout(request: web.Request) -> web.StreamResponse:
    log.info("admin_action", who=_who(request), action="sign_out")
    response = web.HTTPSeeOther("/admin/login")
    response.del_cookie(SESSION_COOKIE, path="/admin")
    raise response


# -- texts -----------------------------------------------------------------------------


CHANNEL_NAMES = {Channel(value): name for value, name in NAMES.items()}


def _purpose(name: str, practice: ServedPractice) -> str:
    """When patients get the text ``name``, in a manager's words."""
    if name in _PURPOSES:
        return _PURPOSES[name]
    parts = text_parts(name)
    if parts is None:
        return "not used"
    kind = "open" if parts.kind is TemplateKind.REPLY else "closed"
    labels = {
        closure_key(c.label): c.label
        for c in practice.templates.current.schedule.closures
        if c.label
    }
    where = f"on {CHANNEL_NAMES[parts.channel]}" if parts.channel else "on every app"
    if parts.language is not ENGLISH:
        where += f", in {parts.language.name}"
    if not parts.closure:
        return f"while the practice is {kind}, {where}"
    return f"during the closure “{labels.get(parts.closure, parts.closure)}”, {where}"


def _new_names(practice: ServedPractice) -> list[str]:
    """Texts the manager may add: per app, and per labelled closure, in each reply language."""
    texts = practice.templates.current
    keys = ["", *(closure_key(c.label) for c in texts.schedule.closures if c.label)]
    names = [
        text_name(kind, channel, key, language)
        for language in texts.practice.reply_languages
        for key in keys
        for kind in (TemplateKind if not key else [TemplateKind.CLOSED])
        for channel in (*Channel, None)
        if channel is not None or key or language is not ENGLISH
    ]
    return [n for n in dict.fromkeys(names) if n not in texts.texts]


async def _texts(request: web.Request) -> web.StreamResponse:
    practice = _practice(request)
    templates = practice.templates
    live = templates.current.texts
    rows = [
        {"name": name, "purpose": _purpose(name, practice)}
        for name in live
        if name != CLOSURES_FILE
    ]
    differ = [name for name, text in live.items() if on_disk(templates, name) != text]
    return _page(
        request,
        "texts.html",
        **_common(request, practice, "texts"),
        rows=rows,
        differ=differ,
        new_names=_new_names(practice),
        problems=templates.error.problems if templates.error else [],
        folder=str(target_folder(templates)),
        saved=request.query.get("saved", ""),
    )


def _now(request: web.Request, practice: ServedPractice) -> datetime:
    """Now, on the practice's clock, to the minute."""
    zone = practice.templates.current.schedule.tz
    return datetime.fromtimestamp(_rt(request).clock(), zone).replace(second=0, microsecond=0)


def _moment(request: web.Request, practice: ServedPractice, value: str | None) -> datetime:
    """The moment the manager chose (their practice's clock), or now."""
    if value:
        try:
            zone = practice.templates.current.schedule.tz
            return datetime.fromisoformat(value).replace(tzinfo=zone)
        except ValueError:
            pass
    return _now(request, practice)


def _channel(value: object) -> Channel | None:
    try:
        return Channel(str(value))
    except ValueError:
        return None


async def _edit(request: web.Request) -> web.StreamResponse:
    practice = _practice(request)
    name = request.match_info["name"]
    if not editable(name):
        raise web.HTTPNotFound(text="That is not one of the texts.")
    templates = practice.templates
    text = on_disk(templates, name)
    if text is None:  # a new text starts as the one it replaces
        fallback = "closed.txt" if name.startswith("closed") else "reply.txt"
        text = "" if name == CLOSURES_FILE else templates.current.texts.get(fallback, "")
    return _editor(request, practice, name, text, channel=None, at=_now(request, practice))


def _editor(
    request: web.Request,
    practice: ServedPractice,
    name: str,
    text: str,
    *,
    channel: Channel | None,
    at: datetime,
    status: int = 200,
    problems: list[str] | None = None,
    previews: list[Any] | None = None,
    moment: str = "",
    warnings: list[str] | None = None,
) -> web.Response:
    return _page(
        request,
        "edit.html",
        status=status,
        **_common(request, practice, "schedule" if name == CLOSURES_FILE else "texts"),
        name=name,
        purpose=_purpose(name, practice),
        text=text,
        channels=CHANNEL_NAMES,
        channel=channel.value if channel else "",
        at=at.strftime("%Y-%m-%dT%H:%M"),
        problems=problems or [],
        warnings=warnings or [],
        previews=previews or [],
        moment=moment,
        live=practice.templates.current.texts.get(name),
    )


async def _edit_post(request: web.Request) -> web.StreamResponse:
    practice = _practice(request)
    name = request.match_info["name"]
    if not editable(name):
        raise web.HTTPNotFound(text="That is not one of the texts.")
    form = request[form_key]
    text = str(form.get("text") or "").replace("\r\n", "\n")
    channel = _channel(form.get("channel"))
    at = _moment(request, practice, str(form.get("at") or ""))
    checked = check_draft(practice.templates, name, text)
    again = functools.partial(_editor, request, practice, name, text, channel=channel, at=at)
    if checked.texts is None:
        return again(status=422, problems=checked.problems)
    if form.get("action") != "save":
        return again(
            previews=channel_previews(checked.texts, channel, at),
            moment=moment_text(checked.texts, at),
            warnings=checked.warnings,
        )
    save(practice.templates, name, text)
    if practice.templates.reload():
        await _rt(request).keep_texts([practice])
    log.info(
        "admin_action",
        who=_who(request),
        action="save",
        file=name,
        **({"practice": practice.slug} if practice.slug else {}),
    )
    back = "/admin/schedule" if name == CLOSURES_FILE else "/admin/texts"
    query = f"practice={practice.slug}&" if practice.slug else ""
    raise web.HTTPSeeOther(f"{back}?{query}saved={name}")


# -- schedule ----------------------------------------------------------------------------


async def _schedule(request: web.Request) -> web.StreamResponse:
    practice = _practice(request)
    texts = practice.templates.current
    now = _now(request, practice)
    # Whole days, from now to the midnight after the last one: no period ends at "now".
    midnight = now.replace(hour=0, minute=0)
    shown = []
    for period in periods(texts.schedule, midnight, SCHEDULE_DAYS + 1):
        if period.end <= now:
            continue
        period = replace(period, start=max(period.start, now))  # noqa: PLW2901 - clipped
        sent = texts.render(Channel.WHATSAPP, period.start).source
        shown.append({"text": describe(period), "open": period.open, "file": sent})
    return _page(
        request,
        "schedule.html",
        **_common(request, practice, "schedule"),
        periods=shown,
        closures=on_disk(practice.templates, CLOSURES_FILE) or "",
        saved=request.query.get("saved", ""),
        days=SCHEDULE_DAYS,
    )


# -- contacts ----------------------------------------------------------------------------


async def _records(
    request: web.Request, practice: ServedPractice, since: float
) -> list[ContactRecord]:
    try:
        records = await _rt(request).store.contacts(since, None)
    except StoreUnavailable:
        raise web.HTTPServiceUnavailable(text="The contact log cannot be read just now.") from None
    return [r for r in records if r.practice == practice.slug]


async def _contacts(request: web.Request) -> web.StreamResponse:
    practice = _practice(request)
    today = datetime.fromtimestamp(_rt(request).clock(), UTC).date()
    since = datetime.combine(today - timedelta(days=CHART_DAYS - 1), datetime.min.time(), UTC)
    records = await _records(request, practice, since.timestamp())
    days = daily_counts(records, CHART_DAYS, today)
    by_app, by_outcome = totals(days)
    return _page(
        request,
        "contacts.html",
        **_common(request, practice, "contacts"),
        # The chart escapes each text it holds itself (tests/test_admin_chart.py).
        chart=markupsafe.Markup(contacts_chart(days, title="Contacts per day")),  # noqa: S704
        totals=by_app,
        outcomes=by_outcome,
        total=sum(by_app.values()),
        days=CHART_DAYS,
    )


async def _contacts_csv(request: web.Request) -> web.StreamResponse:
    practice = _practice(request)
    records = await _records(request, practice, 0.0)
    log.info(
        "admin_action",
        who=_who(request),
        action="export",
        **({"practice": practice.slug} if practice.slug else {}),
    )
    stamp = datetime.fromtimestamp(_rt(request).clock(), UTC).strftime("%Y-%m-%d")
    filename = f"contacts-{practice.slug or 'practice'}-{stamp}.csv"
    return web.Response(
        text=export(records, "csv", group=_rt(request).practices.group),
        content_type="text/csv",
        headers={**_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _evidence_pack(request: web.Request) -> web.StreamResponse:
    """The practice's evidence pack (``practice-bot compliance``) as a download: the page to
    open and print (its own inline styles are only allowed outside the page's CSP), or
    Markdown."""
    practice = _practice(request)
    rt = _rt(request)
    now = rt.clock()
    try:
        figures = await rt.store.figures(practice.slug if rt.practices.group else None, now)
    except StoreUnavailable:
        raise web.HTTPServiceUnavailable(text="The contact log cannot be read just now.") from None
    pack = build_pack(
        practice.settings,
        figures,
        generated=datetime.fromtimestamp(now, UTC),
        version=__version__,
        slug=practice.slug,
        group_size=len(rt.practices.served),
    )
    kind = request.match_info["kind"]
    filename = f"evidence-pack-{practice.slug or 'practice'}.{kind}"
    log.info(
        "admin_action",
        who=_who(request),
        action="export",
        file=filename,
        **({"practice": practice.slug} if practice.slug else {}),
    )
    return web.Response(
        text=render_html(pack) if kind == "html" else render_markdown(pack),
        content_type="text/html" if kind == "html" else "text/markdown",
        headers={**_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _stylesheet(_: web.Request) -> web.StreamResponse:
    css = resources.files("bot.admin").joinpath("static/admin.css").read_text(encoding="utf-8")
    return web.Response(
        text=css,
        content_type="text/css",
        headers={**_HEADERS, "Cache-Control": "max-age=3600"},
    )
