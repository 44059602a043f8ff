"""practice-bot: answers patients' WhatsApp, Messenger and Instagram messages automatically.

Exit codes: 0 success, 1 ``check`` found problems, 2 bad configuration or usage. Problems go to
stderr as ``VARIABLE: message`` or ``path:line:col: message``, warnings as ``warning: …``.

This is where the service is put together: the one module of ``bot/`` that names the adapter
registry (``adapters.REGISTRY``) and hands it to the parts that need channels.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters import REGISTRY
from bot import __version__
from bot.envfile import read_env_file
from bot.errors import ConfigError, StoreUnavailable, TemplateError
from bot.events import Channel, EventKind
from bot.export import export, utc_time
from bot.practices import (
    GroupFiles,
    Practice,
    ServedPractice,
    load_practices,
    practices_dir,
    serve_practice,
)
from bot.settings import Settings, load_settings
from bot.store import ContactRecord, LogFigures, Store, open_store
from bot.templates import check_templates, preview

__all__ = ["main"]

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_CONFIG = 2
SHUTDOWN_TIMEOUT = 3.0  # webhooks take milliseconds; the worker gets the rest of the 10 s grace
# The days --since, --until and --at may name: the contact log's clock starts in 1970, and a
# reply at a moment depends on the next opening up to 400 days later, which must still be a
# date Python can count (the last is 9999-12-31).
FIRST_DAY = date(1970, 1, 1)
# Binding the listening socket failed: another process has the port, or it is not ours to use.
_CANNOT_LISTEN = frozenset({errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL})
LAST_DAY = date(9997, 12, 31)


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 on usage errors (its default) with a plain message."""


def _env_file_option(parser: argparse.ArgumentParser, *, root: bool = False) -> None:
    parser.add_argument(
        "--env-file",
        type=Path,
        default=argparse.SUPPRESS if not root else None,
        metavar="PATH",
        help="file of KEY=value lines, read as docker run --env-file reads it (values "
        "verbatim: no quotes, no inline comments); real environment variables win",
    )


def _practice_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--practice",
        metavar="SLUG",
        default=argparse.SUPPRESS,
        help="in a group deployment (PRACTICES_DIR), the practice's folder name",
    )


def _contacts_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    """``contacts export|summary|report|forget|purge``."""
    contacts = commands.add_parser("contacts", help="the pseudonymous contact log")
    _env_file_option(contacts)
    _practice_option(contacts)
    contacts_cmd = contacts.add_subparsers(dest="contacts_command", required=True)
    export = contacts_cmd.add_parser("export", help="export contact records")
    _env_file_option(export)
    _practice_option(export)
    export.add_argument("--since", type=date.fromisoformat, metavar="DATE")
    export.add_argument("--until", type=date.fromisoformat, metavar="DATE")
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    summary = contacts_cmd.add_parser("summary", help="counts per day, channel and outcome")
    _env_file_option(summary)
    _practice_option(summary)
    summary.add_argument("--days", type=_positive_int, default=14)
    report = contacts_cmd.add_parser(
        "report", help="the contact counts as a page with a chart (HTML), to keep or print"
    )
    _env_file_option(report)
    _practice_option(report)
    report.add_argument("--out", type=Path, required=True, metavar="FILE.html")
    report.add_argument("--days", type=_positive_int, default=30)
    forget = contacts_cmd.add_parser("forget", help="erase every record of one person")
    _env_file_option(forget)
    _practice_option(forget)
    forget.add_argument("--channel", required=True, choices=[c.value for c in Channel])
    forget.add_argument("--sender-id", required=True, metavar="ID")
    purge = contacts_cmd.add_parser("purge", help="apply retention now")
    _env_file_option(purge)
    _practice_option(purge)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="practice-bot", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"practice-bot {__version__}")
    _env_file_option(parser, root=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the webhook service")
    _env_file_option(serve)
    check = commands.add_parser("check", help="validate configuration and templates")
    _env_file_option(check)
    _practice_option(check)

    templates = commands.add_parser("templates", help="the practice manager's reply texts")
    _env_file_option(templates)
    templates_cmd = templates.add_subparsers(dest="templates_command", required=True)
    show = templates_cmd.add_parser("preview", help="show the exact reply a patient would get")
    _env_file_option(show)
    _practice_option(show)
    show.add_argument("--channel", choices=[c.value for c in Channel])
    show.add_argument(
        "--at",
        metavar="WHEN",
        help="a date and time in the practice's time zone, e.g. '2026-12-25 10:00' (default: now)",
    )

    _contacts_parser(commands)

    compliance = commands.add_parser(
        "compliance",
        help="write the data protection evidence pack (Markdown and a printable page)",
        description="Write the evidence pack a practice keeps or gives the ICO or the CQC: a "
        "record of processing, DPIA screening notes, a paragraph for the privacy notice and "
        "the contact log's current figures, from the configuration and the database in use. "
        "In a group, one pack per practice, each in a folder named after it.",
    )
    _env_file_option(compliance)
    _practice_option(compliance)
    compliance.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder to write evidence-pack.md and evidence-pack.html into (made if missing)",
    )

    admin = commands.add_parser("admin", help="the practice manager's page")
    admin_cmd = admin.add_subparsers(dest="admin_command", required=True)
    admin_cmd.add_parser(
        "hash-password",
        help="read a password (not shown as you type it) and print its hash for "
        "ADMIN_PASSWORD_HASH or MANAGER_PASSWORD_HASH",
    )

    simulate = commands.add_parser(
        "simulate",
        help="send a signed test message to the running service and show what it did",
        description="Send one signed test message, as Meta would, to the running service, "
        "and show the answer, the decision, the template used, the outcome and the reply a "
        "patient would see. The test sender is recorded with kind 'test' and its reply is "
        "never sent to Meta.",
    )
    _env_file_option(simulate)
    _practice_option(simulate)
    simulate.add_argument("--channel", required=True, choices=[c.value for c in Channel])
    simulate.add_argument(
        "--url",
        metavar="URL",
        help="the service's webhook address (default: http://127.0.0.1:PORT/webhook)",
    )
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def _store_unavailable(error: StoreUnavailable) -> int:
    """The one report of a store that cannot be opened or used: one line, exit code 2.

    ``StoreUnavailable`` carries paths, fixed words and error class names, never the URL, so
    a password in ``DATABASE_URL`` cannot reach the terminal.
    """
    _err(f"DATABASE_URL: {error}")
    return EXIT_CONFIG


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, after a warning for each env-file value another reader takes otherwise.

    Warnings come first: a value read differently often explains a problem that follows.
    """
    if args.env_file is not None:
        for note in read_env_file(args.env_file).warnings:
            _err(f"warning: {note}")
    return load_settings(args.env_file)


_NOT_A_GROUP = (
    "--practice: this deployment serves one practice; only a group (PRACTICES_DIR) has "
    "practices to choose from"
)


@dataclass(frozen=True, slots=True)
class _Deployment:
    """What the command works on: one practice (slug ""), or each practice of a group.

    App-level settings (secrets, store, address) are the same in every practice's settings,
    so ``settings`` is the first practice's.
    """

    served: list[ServedPractice]
    group: bool
    files: GroupFiles | None = None  # a group's configuration, for ``serve`` to watch

    @property
    def settings(self) -> Settings:
        return self.served[0].settings

    def chosen(self, args: argparse.Namespace) -> ServedPractice:
        """The practice ``--practice`` names; the only one outside a group.

        Raises:
            ConfigError: a group and no or an unknown ``--practice``.
        """
        slug = getattr(args, "practice", None)
        if not self.group:
            if slug:
                raise ConfigError([_NOT_A_GROUP])
            return self.served[0]
        for practice in self.served:
            if practice.slug == slug:
                return practice
        names = ", ".join(p.slug for p in self.served)
        raise ConfigError([f"--practice: name one of the group's practices: {names}"])


def _deployment(args: argparse.Namespace) -> _Deployment:
    """Load the practice, or the group's practices, with their texts. ``serve`` starts with
    broken texts too: it serves the last good set its store kept.

    Raises:
        ConfigError, TemplateError: one line per problem.
    """
    strict = args.command != "serve"
    group_dir = practices_dir(args.env_file)
    if group_dir is None:
        settings = _settings(args)
        return _Deployment(
            [
                serve_practice(
                    Practice("", settings, (settings.templates_dir,)),
                    REGISTRY.adapters,
                    strict=strict,
                )
            ],
            group=False,
        )
    practices = _load_group(args.env_file, group_dir)
    served = [serve_practice(p, REGISTRY.adapters, strict=strict) for p in practices]
    return _Deployment(served, group=True, files=GroupFiles(args.env_file, group_dir))


def _load_group(env_file: Path | None, group_dir: Path) -> list[Practice]:
    """A group's practices, after a warning for each value another reader takes otherwise.

    Raises:
        ConfigError: one line per problem, each naming its file.
    """
    if env_file is not None:
        for note in read_env_file(env_file).warnings:
            _err(f"warning: {note}")
    practices = load_practices(env_file, group_dir)
    for practice in practices:
        for note in practice.warnings:
            _err(f"warning: {note}")
    return practices


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "check":
        return _check(args)
    if args.command == "admin":
        return _hash_password()
    try:
        deployment = _deployment(args)
    except (ConfigError, TemplateError) as error:
        for line in error.problems:
            _err(line)
        return EXIT_CONFIG
    for practice in deployment.served:
        prefix = f"{practice.slug}: " if practice.slug else ""
        texts = practice.templates
        for note in [
            *practice.settings.warnings(),
            *(texts.current.warnings if texts.has_set else []),
        ]:
            _err(f"warning: {prefix}{note}")
    handlers: dict[str, Callable[[argparse.Namespace, _Deployment], int]] = {
        "serve": _serve,
        "templates": _preview,
        "contacts": _contacts,
        "compliance": _compliance,
        "simulate": _simulate,
    }
    try:
        return handlers[args.command](args, deployment)
    except ConfigError as error:
        for line in error.problems:
            _err(line)
        return EXIT_CONFIG


MIN_PASSWORD = 12


def _hash_password() -> int:
    """Ask for a password twice without echo (or read one line from a pipe) and print its
    argon2id hash: the hash, never the password, goes in the env file."""
    from bot.admin.auth import HASHER  # noqa: PLC0415 - only this command needs it

    if sys.stdin.isatty():
        import getpass  # noqa: PLC0415

        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            _err("the two passwords differ; nothing was printed")
            return EXIT_PROBLEMS
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        _err(f"use at least {MIN_PASSWORD} characters (a few words make a good password)")
        return EXIT_PROBLEMS
    # Every "$" twice: docker compose's env_file would expand "$argon2id" as a variable.
    print(HASHER.hash(password).replace("$", "$$"))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    try:
        targets = _check_targets(args)
    except ConfigError as error:
        for line in error.problems:
            _err(line)
        return EXIT_PROBLEMS
    found = False
    for slug, settings, overlays in targets:
        prefix = f"{slug}: " if slug else ""
        for state in settings.channel_states().values():
            print(f"{prefix}{state.channel.value}: {state.label}")
        problems, template_warnings = check_templates(
            settings.templates_dir,
            settings.practice(),
            settings.schedule(),
            REGISTRY.adapters,
            overlays=overlays,
        )
        for note in [*settings.warnings(), *template_warnings]:
            _err(f"warning: {prefix}{note}")
        for line in problems:
            _err(line)  # each names its file, the practice's own folder included
        found = found or bool(problems)
    if found:
        return EXIT_PROBLEMS
    print("templates: ok")
    return EXIT_OK


def _check_targets(args: argparse.Namespace) -> list[tuple[str, Settings, tuple[Path, ...]]]:
    """What ``check`` checks: the practice, or every practice of a group (or the one named).

    Raises:
        ConfigError: the configuration does not load; ``--practice`` names no practice.
    """
    group_dir = practices_dir(args.env_file)
    wanted = getattr(args, "practice", None)
    if group_dir is None:
        if wanted:
            raise ConfigError([_NOT_A_GROUP])
        return [("", _settings(args), ())]
    practices = _load_group(args.env_file, group_dir)
    chosen = [p for p in practices if wanted in (None, p.slug)]
    if not chosen:
        names = ", ".join(p.slug for p in practices)
        raise ConfigError([f"--practice: name one of the group's practices: {names}"])
    return [(p.slug, p.settings, p.templates_dirs[:-1]) for p in chosen]


def _serve(args: argparse.Namespace, deployment: _Deployment) -> int:
    from aiohttp import web  # noqa: PLC0415 - keep the other commands quick to start

    from bot.app import SERVER_OPTIONS, AccessLogger, create_app  # noqa: PLC0415
    from bot.logging import configure_logging, flush_logs  # noqa: PLC0415
    from bot.selfcheck import startup_problems  # noqa: PLC0415

    del args
    first = deployment.served[0]
    settings = first.settings
    configure_logging(settings.log_level, settings.resolved_log_format(), batched=True, cache=True)
    problems = startup_problems()
    if problems:
        for line in problems:
            _err(line)
        return EXIT_CONFIG
    app = create_app(
        settings,
        platform=REGISTRY,
        templates=first.templates,
        group=deployment.served if deployment.group else (),
        group_files=deployment.files,
    )
    # Start-up garbage (imports, settings, templates) never changes: keep the collector off
    # it, so its pauses stay short while webhooks are being answered.
    gc.collect()
    gc.freeze()
    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            access_log_class=AccessLogger,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            print=None,
            handle_signals=True,
            **SERVER_OPTIONS,
        )
    except StoreUnavailable as error:
        # The store opens as the app starts, before the service has answered anything.
        return _store_unavailable(error)
    except TemplateError as error:
        # Broken texts and no good set kept to serve meanwhile: nothing to answer with.
        for line in error.problems:
            _err(line)
        return EXIT_CONFIG
    except OSError as error:
        if error.errno not in _CANNOT_LISTEN:
            raise
        _err(f"PORT: cannot listen on {settings.host}:{settings.port} ({os.strerror(error.errno)})")
        return EXIT_CONFIG
    finally:
        flush_logs()
    return EXIT_OK


def _preview(args: argparse.Namespace, deployment: _Deployment) -> int:
    practice = deployment.chosen(args)
    zone = ZoneInfo(practice.settings.practice_timezone)
    if args.at is None:
        at = datetime.now(zone)
    else:
        try:
            at = datetime.fromisoformat(args.at.strip())
        except ValueError:
            _err(
                "--at: not a date and time; write it as 2026-12-25 10:00 "
                "(or 2026-12-25T10:00, optionally with an offset such as +01:00)"
            )
            return EXIT_CONFIG
        if not FIRST_DAY <= at.date() <= LAST_DAY:
            _err(f"--at: must be a moment from {FIRST_DAY} to {LAST_DAY}")
            return EXIT_CONFIG
        if at.tzinfo is None:
            at = at.replace(tzinfo=zone)
    channel = Channel(args.channel) if args.channel else None
    print(preview(practice.templates.current, channel, at))
    return EXIT_OK


def _simulate(args: argparse.Namespace, deployment: _Deployment) -> int:
    from bot.simulate import SimulateError, simulate  # noqa: PLC0415 - loads the HTTP client

    practice = deployment.chosen(args)
    channel = Channel(args.channel)
    try:
        report = asyncio.run(
            simulate(
                practice.settings,
                channel,
                url=args.url,
                simulated_message=REGISTRY.adapters[channel].simulated_message,
                templates=practice.templates,
                practice=practice.slug,
            )
        )
    except SimulateError as error:
        _err(str(error))
        return EXIT_CONFIG
    except StoreUnavailable as error:
        return _store_unavailable(error)
    print("\n".join(report.lines()))
    return EXIT_OK if report.http_status == 200 and report.record is not None else EXIT_PROBLEMS


def _day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def _contacts_usage(args: argparse.Namespace) -> str | None:
    """A problem with the options of a ``contacts`` command, found before the store is opened."""
    if args.contacts_command == "forget":
        from bot.pseudonym import normalise_contact_id  # noqa: PLC0415 - loads cryptography

        if not normalise_contact_id(Channel(args.channel), args.sender_id.strip()):
            # It would match every sender whose id normalises to nothing. What was typed is
            # never echoed: it is a patient's number or id.
            return (
                "--sender-id: is empty once spaces and phone punctuation are removed; "
                "give the person's phone number or id"
            )
    if args.contacts_command == "export":
        for option, day in (("--since", args.since), ("--until", args.until)):
            if day is not None and not FIRST_DAY <= day <= LAST_DAY:
                return f"{option}: must be a date from {FIRST_DAY} to {LAST_DAY}"
    return None


def _contacts(args: argparse.Namespace, deployment: _Deployment) -> int:
    settings = deployment.settings
    # Erasure needs the practice (a pseudonym is keyed by it); the others may narrow to one.
    slug = (
        deployment.chosen(args).slug
        if args.contacts_command == "forget" or getattr(args, "practice", None)
        else None
    )
    problem = _contacts_usage(args)
    if problem is not None:
        _err(problem)
        return EXIT_CONFIG
    try:
        # These commands read or erase the log that exists: a mistyped DATABASE_URL must not
        # make a new, empty one and report success.
        store = open_store(settings.database_url, pool_size=1, create=False)
        retention = {
            p.slug: p.settings.contact_log_retention_days for p in deployment.served if p.slug
        }
        return asyncio.run(_contacts_async(args, settings, store, slug, retention))
    except StoreUnavailable as error:
        return _store_unavailable(error)


async def _contacts_async(
    args: argparse.Namespace,
    settings: Settings,
    store: Store,
    slug: str | None,
    retention: dict[str, int],
) -> int:
    """``retention``: each practice's days in a group (empty for a single practice)."""
    group = bool(retention)
    await store.open()
    try:
        command = args.contacts_command
        if command == "export":
            since = _day_start(args.since) if args.since else None
            until = _day_start(args.until + timedelta(days=1)) if args.until else None
            records = _of(await store.contacts(since, until), slug)
            sys.stdout.write(export(records, args.format, group=group))
        elif command == "report":
            from bot.admin.report import contacts_report  # noqa: PLC0415 - loads Jinja2

            now = time.time()
            since = _day_start(datetime.fromtimestamp(now, UTC).date()) - (args.days - 1) * 86400
            records = _of(await store.contacts(since, None), slug)
            page = contacts_report(
                records,
                days=args.days,
                today=datetime.fromtimestamp(now, UTC).date(),
                practice=slug or settings.practice_name,
            )
            args.out.write_text(page, encoding="utf-8")
            print(f"wrote {args.out}")
        elif command == "summary":
            records = _of(await store.contacts(time.time() - args.days * 86400, None), slug)
            print(_summary(records, args.days, by_practice=group and slug is None))
        elif command == "forget":
            from bot.pseudonym import Keyring  # noqa: PLC0415

            channel = Channel(args.channel)
            keyring = Keyring(settings.pseudonym_key.get_secret_value())
            sender = args.sender_id.strip()
            pseudonym = keyring.contact(channel, sender, practice=slug or "")
            deleted = await store.forget(channel, pseudonym, practice=slug or "")
            print(f"deleted {deleted}")
        else:
            days = settings.contact_log_retention_days
            counts = await store.purge(time.time(), days, practices=retention)
            period = "each practice's retention period" if group else f"{days} days"
            print(
                f"deleted {counts.contacts} contact records older than {period}, "
                f"{counts.seen} dedupe keys, {counts.jobs} ended reply jobs"
            )
    finally:
        await store.close()
    return EXIT_OK


PACK_NAME = "evidence-pack"


def _compliance(args: argparse.Namespace, deployment: _Deployment) -> int:
    """Write each chosen practice's evidence pack; print the paths written."""
    from bot.compliance import build_pack, render_html, render_markdown  # noqa: PLC0415 - Jinja2

    # A group without --practice: every practice, each in a folder of its own.
    each = deployment.group and not getattr(args, "practice", None)
    targets = list(deployment.served) if each else [deployment.chosen(args)]
    now = time.time()
    try:
        # Like the contacts commands: report on the log that exists, never a new empty one.
        store = open_store(deployment.settings.database_url, pool_size=1, create=False)
        slugs = [p.slug if deployment.group else None for p in targets]
        figures = asyncio.run(_pack_figures(store, slugs, now))
    except StoreUnavailable as error:
        return _store_unavailable(error)
    generated = datetime.fromtimestamp(now, UTC)
    for practice, counted in zip(targets, figures, strict=True):
        pack = build_pack(
            practice.settings,
            counted,
            generated=generated,
            version=__version__,
            slug=practice.slug,
            group_size=len(deployment.served),
        )
        folder = args.out / practice.slug if each else args.out
        pages = {
            folder / f"{PACK_NAME}.md": render_markdown(pack),
            folder / f"{PACK_NAME}.html": render_html(pack),
        }
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for path, text in pages.items():
                path.write_text(text, encoding="utf-8")
        except OSError as error:
            _err(f"--out: cannot write in {folder}: {error.strerror or type(error).__name__}")
            return EXIT_CONFIG
        for path in pages:
            print(f"wrote {path}")
    return EXIT_OK


async def _pack_figures(store: Store, slugs: Sequence[str | None], now: float) -> list[LogFigures]:
    """Each practice's figures (None: the whole store, for a single practice)."""
    await store.open()
    try:
        return [await store.figures(slug, now) for slug in slugs]
    finally:
        await store.close()


def _of(records: list[ContactRecord], slug: str | None) -> list[ContactRecord]:
    """The records of one practice, or all of them."""
    return records if slug is None else [r for r in records if r.practice == slug]


def _summary(records: Sequence[ContactRecord], days: int, *, by_practice: bool = False) -> str:
    counts: Counter[tuple[str, str, str, str]] = Counter()
    tests = 0
    for record in records:
        if record.kind == EventKind.TEST:
            tests += 1  # practice-bot simulate: not a patient
            continue
        practice = record.practice if by_practice else ""
        counts[(utc_time(record.time)[:10], practice, record.channel, record.outcome)] += 1
    left_out = f" ({tests} test messages left out)" if tests else ""
    if not counts:
        return f"no contacts in the last {days} days{left_out}"
    width = max((len(key[1]) for key in counts), default=0)
    practice_head = f"{'practice':<{max(width, 8)}}  " if by_practice else ""
    lines = [f"{'day':<10}  {practice_head}{'channel':<9}  {'outcome':<12}  {'count':>5}"]
    lines.extend(
        f"{day:<10}  "
        + (f"{practice:<{max(width, 8)}}  " if by_practice else "")
        + f"{channel:<9}  {outcome:<12}  {n:>5}"
        for (day, practice, channel, outcome), n in sorted(counts.items())
    )
    blank = " " * len(practice_head)
    lines.append(f"{'total':<10}  {blank}{'':<9}  {'':<12}  {sum(counts.values()):>5}{left_out}")
    return "\n".join(lines)
