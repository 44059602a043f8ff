"""A dental group of N practices in one process, next to a single practice (issue 15, SPEC §9).

    python bench/group.py                  # full run: 3 paired rounds, 200 practices
    python bench/group.py --quick          # one short round: a smoke check of the apparatus
    python bench/group.py --practices 200 --json group.json

Generates the group (a main env file, ``PRACTICES_DIR/practice-NNN/practice.env``, every tenth
practice with its own ``templates/reply.txt``), then measures, against the single-practice
service bench/run.py starts: start-up to the first ``/healthz`` 200, acknowledgement
throughput in paired closed-loop rounds (webhooks for the first practice, for the last, and
spread over all), and the group's peak RSS after the load. Pinning, signed bodies, servers
and load generators are bench/run.py's; bench/README.md gives the method.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import run as harness  # noqa: E402 - bench/run.py's servers, pinning, closed loop
from tests.helpers import service  # noqa: E402
from tests.helpers.fake_graph import FakeGraph  # noqa: E402
from tests.helpers.process import free_port, whatsapp_text  # noqa: E402
from tests.helpers.signing import sign  # noqa: E402

TARGETS = {"start": 2.0, "rss_mb": 200.0, "ratio": 0.9, "position": 0.9}
STARTS = 3  # cold starts of each deployment
VARIANTS = ("single", "first", "last", "mix", "paced")
# "mix" spreads the webhooks over every practice, each sending at its own 80/s: the worker then
# sends about 200 times the single practice's replies, on the same core. "paced" is the same
# traffic with the group's sends paced to the single practice's total (80/s over all of them),
# so the acknowledgements are compared under the same sending work.
SINGLE_RATE = 80.0
HOURS = (
    "Mon-Fri 08:30-17:00",
    "Mon-Thu 08:00-18:00; Fri 08:00-16:00",
    "Mon-Fri 09:00-13:00,14:00-17:30; Sat 09:00-12:30",
    "Mon-Wed 09:00-17:00; Thu 09:00-19:30; Fri 09:00-16:00",
)
HOLIDAYS = ("GB-ENG", "GB-SCT", "GB-WLS")
OWN_REPLY = (
    "Thanks for writing to {practice_name} (branch NUMBER). This is an automatic reply.\n\n"
    "We can't give clinical advice by message. Call {phone} or email {email}.\n"
)
_ADDRESSED = f'"phone_number_id":"{service.PHONE_NUMBER_ID}"'.encode()


@dataclass(frozen=True, slots=True)
class Group:
    """The generated ``PRACTICES_DIR``; practice i's number and token are at index i - 1."""

    folder: Path
    numbers: list[str]
    tokens: list[str]


def write_group(folder: Path, count: int) -> Group:
    """``count`` practice folders with distinct numbers and tokens, varied hours and holidays."""
    width = max(3, len(str(count)))
    numbers: list[str] = []
    tokens: list[str] = []
    for i in range(1, count + 1):
        own = folder / f"practice-{i:0{width}d}"
        own.mkdir(parents=True)
        numbers.append(f"{100_000_000_000_000 + i}")
        tokens.append(f"bench-token-{i:0{width}d}")
        lines = [
            f"PRACTICE_NAME=Bench Dental {i:0{width}d}",
            f"PRACTICE_PHONE=+44 20 7946 {i:04d}",
            f"WHATSAPP_PHONE_NUMBER_ID={numbers[-1]}",
            f"WHATSAPP_ACCESS_TOKEN={tokens[-1]}",
            f"OPENING_HOURS={HOURS[i % len(HOURS)]}",
            f"BANK_HOLIDAYS={HOLIDAYS[i % len(HOLIDAYS)]}",
        ]
        (own / "practice.env").write_text("\n".join(lines) + "\n")
        if i % 10 == 0:
            (own / "templates").mkdir()
            (own / "templates" / "reply.txt").write_text(OWN_REPLY.replace("NUMBER", str(i)))
    return Group(folder, numbers, tokens)


def write_addressed(
    path: Path, set_id: int, count: int, timestamp: float, numbers: Sequence[str]
) -> harness.BodySet:
    """As ``bench.run.write_bodies``, but line k is sent to ``numbers[k % len(numbers)]``."""
    senders: list[str] = []
    with path.open("wb") as out:
        for k in range(count):
            sender = f"44{set_id}{k:09d}"
            body = whatsapp_text(sender, f"wamid.BENCH{set_id}{k:09d}", timestamp)
            if _ADDRESSED not in body:
                raise RuntimeError("whatsapp_text no longer names PHONE_NUMBER_ID as expected")
            number = numbers[k % len(numbers)]
            body = body.replace(_ADDRESSED, f'"phone_number_id":"{number}"'.encode())
            out.write(sign(body, service.APP_SECRET).encode("ascii") + b"\t" + body + b"\n")
            senders.append(sender)
    return harness.BodySet(path, senders)


def new_server(
    ctx: harness.Context, variant: str, name: str, graph: FakeGraph, group: Group
) -> harness.Server:
    """The single practice as bench/run.py starts it, or ``serve --env-file`` on the group."""
    if variant == "single":
        return ctx.bot(name, graph.url)
    data = ctx.work / name
    data.mkdir()
    port = free_port()
    paced = {"WHATSAPP_SENDS_PER_SECOND": f"{SINGLE_RATE / len(group.numbers):g}"}
    main = {
        "META_APP_SECRET": service.APP_SECRET,
        "META_VERIFY_TOKEN": service.VERIFY_TOKEN,
        "PSEUDONYM_KEY": service.PSEUDONYM_KEY,
        "GRAPH_API_URL": graph.url,
        "DATABASE_URL": f"sqlite:///{data}/practice-bot.sqlite3",
        "TEMPLATES_DIR": str(REPO / "templates"),
        "PRACTICES_DIR": str(group.folder),
        "PRACTICE_EMAIL": "hello@bench-dental.example",  # the group's default
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "info",
        "LOG_FORMAT": "json",
        **(paced if variant == "paced" else {}),
    }
    env_file = data / "group.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in main.items()))
    argv = [sys.executable, "-m", "bot", "serve", "--env-file", str(env_file)]
    # Only PATH from outside: real environment variables would win over the env file.
    env = {"PATH": os.environ.get("PATH", "")}
    group_server = harness.Server(name, ctx.cores.server_argv(argv), env, data / "bot.log", port)
    ctx.servers.append(group_server)
    return group_server


def _each() -> dict[str, list[Any]]:
    return {variant: [] for variant in VARIANTS}


@dataclass(slots=True)
class Results:
    """Everything measured; per-variant lists hold one entry per round."""

    profile: str
    practices: int
    pinned: bool
    tool: str = ""
    starts: dict[str, list[float]] = field(default_factory=lambda: {"single": [], "group": []})
    rounds: dict[str, list[harness.Closed]] = field(default_factory=_each)
    cpu_us: dict[str, list[float]] = field(default_factory=_each)  # per webhook
    sends_per_s: dict[str, list[float]] = field(default_factory=_each)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@asynccontextmanager
async def running(server: harness.Server, graph: FakeGraph, res: Results) -> AsyncIterator[float]:
    """Start ``server``, yielding its start-up seconds; then record its peak RSS, stop both."""
    try:
        yield await server.start()
    finally:
        if server.proc is not None and server.proc.returncode is None:
            res.peak_rss_mb[server.name] = server.peak_rss_mb()
        server.terminate()
        await graph.stop()
        await server.wait()


async def phase_start(ctx: harness.Context, res: Results, group: Group) -> None:
    """Cold starts, alternating single and group so a drift of the machine hits both."""
    for number in range(1, STARTS + 1):
        for kind in ("single", "group"):
            graph = FakeGraph(token=(harness.TOKEN, *group.tokens))
            await graph.start()
            server = new_server(ctx, kind, f"start-{kind}-{number}", graph, group)
            async with running(server, graph, res) as seconds:
                res.starts[kind].append(seconds)


async def phase_throughput(ctx: harness.Context, res: Results, group: Group) -> None:
    """Closed loop on a fresh server of each variant per round; the order reverses each round."""
    for number in range(1, ctx.profile.rounds + 1):
        for variant in VARIANTS if number % 2 else VARIANTS[::-1]:
            graph = FakeGraph(token=(harness.TOKEN, *group.tokens))
            await graph.start()
            server = new_server(ctx, variant, f"{variant}-{number}", graph, group)
            warm, main = ctx.bodies[f"{variant}-warm"], ctx.bodies[f"{variant}-main"]
            async with running(server, graph, res):
                await harness.closed_loop(ctx, server.url, warm, ctx.profile.warmup)
                cpu, sent = server.cpu_seconds(), len(graph.requests)
                run = await harness.closed_loop(ctx, server.url, main, ctx.profile.measure)
                used = server.cpu_seconds() - cpu
                res.sends_per_s[variant].append((len(graph.requests) - sent) / run.seconds)
            res.rounds[variant].append(run)
            res.cpu_us[variant].append(1e6 * used / run.requests if run.requests else 0.0)
            res.tool = run.tool
            if run.errors:
                res.notes.append(f"{variant} round {number}: {run.errors} failed requests")
            if run.requests > len(main.senders):
                res.notes.append(f"{variant} round {number}: the body file ran out (dedupe path)")
        rates = ", ".join(f"{v} {res.rounds[v][-1].rate:,.0f}" for v in VARIANTS)
        print(f"  round {number}: {rates} req/s", flush=True)


def _label(variant: str, practices: int) -> str:
    return {
        "single": "single practice",
        "group": f"group of {practices}",
        "first": "group, all to practice 1",
        "last": f"group, all to practice {practices}",
        "mix": f"group, spread over all {practices}, each sending up to 80/s",
        "paced": f"group, spread over all {practices}, sending 80/s in all",
    }[variant]


def _row(figure: str, value: str, target: str = "", ok: bool | None = None) -> tuple[str, ...]:
    return figure, value, target, "info" if ok is None else "PASS" if ok else "MISS"


def table(res: Results) -> list[tuple[str, ...]]:
    """Rows of (figure, value, target, verdict)."""
    n, rows = res.practices, []
    for kind, starts in res.starts.items():
        if starts:
            figure = f"start-up to /healthz 200, {_label(kind, n)} (worst of {len(starts)})"
            value = f"{max(starts):.3f} s (median {statistics.median(starts):.3f} s)"
            ok = max(starts) <= TARGETS["start"] if kind == "group" else None
            limit = f"<= {TARGETS['start']:.0f} s" if ok is not None else ""
            rows.append(_row(figure, value, limit, ok))
    for variant in VARIANTS:
        if res.rounds[variant]:
            rate = statistics.median(run.rate for run in res.rounds[variant])
            cpu = statistics.median(res.cpu_us[variant])
            figure = f"ack throughput, {_label(variant, n)} (median)"
            rows.append(_row(figure, f"{rate:,.0f} req/s, {cpu:.0f} us CPU/webhook"))
    errors = sum(run.errors for runs in res.rounds.values() for run in runs)
    comparisons: list[tuple[str, str, float | None]] = [
        (v, "single", TARGETS["ratio"]) for v in ("first", "last", "paced")
    ]
    comparisons += [("mix", "single", None), ("last", "first", TARGETS["position"])]
    for variant, base, target in comparisons:
        pairs = zip(res.rounds[variant], res.rounds[base], strict=False)
        ratios = [run.rate / ref.rate for run, ref in pairs if ref.rate]
        if ratios:
            ratio = statistics.median(ratios)
            spread = f" (rounds {min(ratios):.3f}-{max(ratios):.3f})" if len(ratios) > 1 else ""
            figure = f"{_label(variant, n)} / {_label(base, n)}, median of {len(ratios)} rounds"
            ok = ratio >= target and errors == 0 if target is not None else None
            limit = f">= {target:.2f}x" if target is not None else ""
            rows.append(_row(figure, f"{ratio:.3f}x{spread}", limit, ok))
    after = {name: mb for name, mb in res.peak_rss_mb.items() if not name.startswith("start")}
    group = [mb for name, mb in after.items() if not name.startswith("single")]
    if group:
        figure = f"peak RSS of the group after the load (VmHWM, worst of {len(group)})"
        most = TARGETS["rss_mb"]
        rows.append(_row(figure, f"{max(group):.1f} MB", f"<= {most:.0f} MB", max(group) <= most))
    single = [mb for name, mb in after.items() if name.startswith("single")]
    if single:
        rows.append(_row("peak RSS of the single practice after the load", f"{max(single):.1f} MB"))
    return rows


def print_report(res: Results) -> None:
    """The table, then each round and run, then notes."""
    rows = table(res)
    headers = ("figure", "value", "target", "result")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    pinned = "pinned" if res.pinned else "NOT pinned"
    print(
        f"\npractice-bot group benchmark ({res.profile} run, {res.practices} practices, {pinned})"
    )
    print(f"{line}\n{'-' * len(line)}")
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print()
    details = [f"closed loop: 32 connections, {res.tool}"]
    for variant in VARIANTS:
        rounds = ", ".join(f"{run.rate:,.0f}" for run in res.rounds[variant])
        sends = ", ".join(f"{s:,.0f}" for s in res.sends_per_s[variant])
        details.append(f"{variant}: rounds {rounds} req/s; worker sends {sends} /s")
    for kind, starts in res.starts.items():
        details.append(f"starts {kind}: " + ", ".join(f"{s:.3f} s" for s in starts))
    details.append("peak RSS: " + ", ".join(f"{k} {v:.1f}" for k, v in res.peak_rss_mb.items()))
    for text in [*details, *res.notes]:
        print(f"  {text}")
    for text in res.failed:
        print(f"  FAILED {text}")


async def run(profile: harness.Profile, practices: int) -> Results:
    """Generate the group and the bodies, then each phase; servers are always stopped."""
    cores = harness.Cores.detect()
    cores.pin_self()
    wrk = shutil.which("wrk")
    if wrk is None:
        print("note: wrk is not installed: bench/loadgen.py drives the closed loops (slower)")
    res = Results(profile=profile.name, practices=practices, pinned=cores.server is not None)
    busy = await harness.busy_share()
    if busy > harness.BUSY_WARNING:
        res.notes.append(f"the machine was {busy:.0%} busy before the run: expect noisy figures")
    with tempfile.TemporaryDirectory(prefix="practice-bot-group-") as tmp:
        work = Path(tmp)
        began = time.monotonic()
        group = write_group(work / "practices", practices)
        now, warm, main = time.time(), profile.warm_bodies, profile.main_bodies
        bodies = {
            "single-warm": harness.write_bodies(work / "single-warm.txt", 1, warm, now),
            "single-main": harness.write_bodies(work / "single-main.txt", 2, main, now),
        }
        addressed = {"first": group.numbers[:1], "last": group.numbers[-1:], "mix": group.numbers}
        set_ids = itertools.count(3)  # distinct senders and message ids in every file
        for variant, numbers in addressed.items():
            for part, count in (("warm", warm), ("main", main)):
                path = work / f"{variant}-{part}.txt"
                bodies[f"{variant}-{part}"] = write_addressed(
                    path, next(set_ids), count, now, numbers
                )
        bodies["paced-warm"], bodies["paced-main"] = bodies["mix-warm"], bodies["mix-main"]
        print(f"group of {practices} and bodies written in {time.monotonic() - began:.1f} s")
        ctx = harness.Context(profile=profile, cores=cores, work=work, wrk=wrk, bodies=bodies)
        phases = (
            (f"start-up: single and group, {STARTS} each", phase_start),
            (f"throughput: {profile.rounds} rounds of {', '.join(VARIANTS)}", phase_throughput),
        )
        try:
            for title, phase in phases:
                print(f"running {title} ...", flush=True)
                meter = harness.CpuMeter()
                # The fake Graph API runs in this process: keep collector pauses out of phases.
                gc.collect()
                gc.freeze()
                gc.disable()
                try:
                    await phase(ctx, res, group)
                except RuntimeError as error:
                    res.failed.append(f"{title}: {error}")
                    print(f"  FAILED: {error}", flush=True)
                finally:
                    gc.enable()
                foreign = meter.foreign_cores()
                if foreign > harness.FOREIGN_WARNING:
                    res.notes.append(f"{title}: other processes used {foreign:.0%} of a CPU")
        finally:
            for server in ctx.servers:
                if server.proc is not None and server.proc.returncode is None:
                    server.proc.kill()
                    await server.proc.wait()
        print(f"total {time.monotonic() - began:.1f} s")
    print_report(res)
    return res


def main(argv: list[str] | None = None) -> int:
    """Run the scenario; exit 0 when every target is met, 1 when one is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--practices", type=int, default=200, help="practices in the group")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    if args.practices < 1:
        parser.error("--practices must be at least 1")
    res = asyncio.run(run(harness.QUICK if args.quick else harness.FULL, args.practices))
    if args.json is not None:
        data: dict[str, Any] = asdict(res)
        data["table"] = [
            dict(zip(("figure", "value", "target", "result"), row, strict=True))
            for row in table(res)
        ]
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    missed = [row for row in table(res) if row[3] == "MISS"]
    return 1 if missed or res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
