"""Benchmark driver: practice-bot against the floor and its targets, on loopback, two cores.

    python bench/run.py            # full run, about 2 minutes
    python bench/run.py --quick    # shorter windows, under 40 seconds

Servers (``practice-bot serve``, ``bench/floor.py``) run pinned to the first CPU; this driver,
the load generators (``wrk`` or ``bench/loadgen.py``) and the fake Graph API (in this process)
run pinned to the second. Every phase is bounded in time; the figures are printed as a table
with the target next to each and PASS / MISS. See bench/README.md for the method.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.hotspots import Hotspots, format_hotspots, summarize  # noqa: E402
from bench.loadgen import percentile  # noqa: E402
from tests.helpers.fake_graph import Action, FakeGraph, RecordedRequest  # noqa: E402
from tests.helpers.process import free_port, whatsapp_text  # noqa: E402
from tests.helpers.service import (  # noqa: E402
    APP_SECRET,
    PHONE_NUMBER_ID,
    PSEUDONYM_KEY,
    VERIFY_TOKEN,
)
from tests.helpers.signing import sign  # noqa: E402

__all__ = ["FULL", "QUICK", "Profile", "main"]

BENCH = REPO / "bench"
LUA = BENCH / "wrk_post.lua"
TOKEN = "bench-token"  # noqa: S105 - the fake Graph API's made-up bearer token
CONNECTIONS = 32
START_TIMEOUT = 15.0
STOP_TIMEOUT = 12.0
BUSY_WARNING = 0.10  # warn when other processes use more than this share of the CPUs
FOREIGN_WARNING = 0.15  # ... or more than this share of one CPU during a phase
SEND_WAIT = 5.0  # seconds to wait for the last replies of the webhook-to-send phase

TARGETS = {
    "ratio": 0.5,
    "ratio_stretch": 0.7,
    "ack_p99_500": 0.010,
    "ack_p99_hang": 0.050,
    "send_p99_60": 0.050,
    "rss_mb": 150.0,
    "cold_start": 1.0,
}


@dataclass(frozen=True, slots=True)
class Profile:
    """How long each phase runs, and how many distinct signed bodies it needs."""

    name: str
    warmup: float  # closed-loop warm-up, seconds (not measured)
    measure: float  # closed-loop measured window, seconds
    warm_bodies: int
    main_bodies: int
    rate_warmup: float  # open-loop: seconds at the start of each run that are not measured
    rate_measure: float  # open-loop: measured seconds
    rounds: int  # closed-loop throughput: paired floor-then-bot rounds


FULL = Profile("full", 3, 6, 60_000, 160_000, 2, 15, 3)
QUICK = Profile("quick", 1, 3, 15_000, 40_000, 1, 3.5, 1)


# ----------------------------------------------------------------------------------------
# pinning


@dataclass(frozen=True, slots=True)
class Cores:
    """The CPU the servers get and the CPU everything else shares (``None``: not pinned)."""

    server: int | None
    load: int | None

    @classmethod
    def detect(cls) -> Cores:
        """The first two CPUs this process may use, when there are two and taskset exists."""
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            print("note: fewer than 2 CPUs: server and load generator are not pinned apart")
            return cls(None, None)
        if shutil.which("taskset") is None:
            print("note: taskset not found (util-linux): servers are not pinned")
            return cls(None, None)
        return cls(cpus[0], cpus[1])

    def server_argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` pinned to the server CPU."""
        if self.server is None:
            return list(argv)
        return ["taskset", "-c", str(self.server), *argv]

    def load_argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` pinned to the load-generator CPU."""
        if self.load is None:
            return list(argv)
        return ["taskset", "-c", str(self.load), *argv]

    def pin_self(self) -> None:
        """Put this driver (and the fake Graph API it runs) on the load-generator CPU."""
        if self.load is not None:
            os.sched_setaffinity(0, {self.load})


class CpuMeter:
    """CPU time used by other processes (not this driver or its descendants) during a phase.

    Reads ``utime + stime`` of every process in ``/proc`` at the start and at the end; a
    process that both starts and ends inside the phase is missed, so this is a lower bound,
    enough to warn that a phase shared the machine with someone else's work.
    """

    def __init__(self) -> None:
        self._began = time.monotonic()
        self._start = self._others()

    @staticmethod
    def _processes() -> dict[int, tuple[int, int, int]]:
        """pid -> (parent pid, start time, CPU ticks)."""
        table: dict[int, tuple[int, int, int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue  # it ended meanwhile
            fields = text[text.rindex(")") + 2 :].split()
            table[int(entry.name)] = (
                int(fields[1]),
                int(fields[19]),
                int(fields[11]) + int(fields[12]),
            )
        return table

    @classmethod
    def _others(cls) -> dict[tuple[int, int], int]:
        table = cls._processes()
        ours = {os.getpid()}
        grew = True
        while grew:
            grew = False
            for pid, (parent, _, _) in table.items():
                if parent in ours and pid not in ours:
                    ours.add(pid)
                    grew = True
        return {
            (pid, started): ticks for pid, (_, started, ticks) in table.items() if pid not in ours
        }

    def foreign_cores(self) -> float:
        """Average number of CPUs the others kept busy (0.25 = a quarter of one CPU)."""
        try:
            end = self._others()
        except (OSError, ValueError, IndexError):
            return 0.0
        elapsed = time.monotonic() - self._began
        ticks = sum(t - self._start.get(key, 0) for key, t in end.items())
        return ticks / os.sysconf("SC_CLK_TCK") / elapsed if elapsed > 0 else 0.0


async def busy_share(seconds: float = 0.5) -> float:
    """Share of all CPUs' time that was not idle over ``seconds`` (from ``/proc/stat``)."""

    def snapshot() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return sum(fields), fields[3] + fields[4]  # idle + iowait

    try:
        total0, idle0 = snapshot()
        await asyncio.sleep(seconds)
        total1, idle1 = snapshot()
    except (OSError, ValueError, IndexError):
        return 0.0
    elapsed = total1 - total0
    return 1 - (idle1 - idle0) / elapsed if elapsed > 0 else 0.0


# ----------------------------------------------------------------------------------------
# signed bodies


@dataclass(frozen=True, slots=True)
class BodySet:
    """A file of pre-signed requests and the sender (WhatsApp ``wa_id``) of each line."""

    path: Path
    senders: list[str] = field(repr=False)


def write_bodies(path: Path, set_id: int, count: int, timestamp: float) -> BodySet:
    """``count`` WhatsApp text webhooks, each from its own sender with its own message id."""
    senders: list[str] = []
    with path.open("wb") as out:
        for k in range(count):
            sender = f"44{set_id}{k:09d}"
            body = whatsapp_text(sender, f"wamid.BENCH{set_id}{k:09d}", timestamp)
            out.write(sign(body, APP_SECRET).encode("ascii") + b"\t" + body + b"\n")
            senders.append(sender)
    return BodySet(path, senders)


# ----------------------------------------------------------------------------------------
# servers


class Server:
    """A server subprocess: started with its cold start timed, measured, stopped."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, port: int
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log = log
        self.port = port
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> float:
        """Spawn, then poll ``/healthz`` every 5 ms; returns seconds from spawn to first 200."""
        with self.log.open("ab") as out:
            spawned = time.monotonic()
            # cwd=REPO: ``python -m bot`` imports the bot of this checkout, whatever is installed.
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, cwd=REPO, env=self.env, stdout=out, stderr=asyncio.subprocess.STDOUT
            )
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while time.monotonic() - spawned < START_TIMEOUT:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return time.monotonic() - spawned
                if self.proc.returncode is not None:
                    code = self.proc.returncode
                    raise RuntimeError(f"{self.name} exited with {code}: {self.tail()}")
                await asyncio.sleep(0.005)
        raise RuntimeError(f"{self.name} did not answer /healthz within {START_TIMEOUT} s")

    def tail(self, lines: int = 5) -> str:
        """The last lines of the server's output (for error messages)."""
        try:
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """User plus system CPU time the running process has used so far."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} is not running")
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        """``VmHWM`` (peak resident set) of the running process, in MB (10^6 bytes)."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} is not running")
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
        raise RuntimeError("VmHWM not found")

    def terminate(self) -> None:
        """Ask the process to shut down (SIGTERM)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)

    async def wait(self) -> None:
        """Wait for the process to end; SIGKILL it after ``STOP_TIMEOUT``."""
        if self.proc is None:
            return
        try:
            await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            print(f"note: {self.name} did not stop within {STOP_TIMEOUT} s; killed")
            self.proc.kill()
            await self.proc.wait()

    async def stop(self) -> None:
        """SIGTERM and wait."""
        self.terminate()
        await self.wait()


@dataclass(slots=True)
class Context:
    """What every phase needs."""

    profile: Profile
    cores: Cores
    work: Path
    wrk: str | None
    bodies: dict[str, BodySet]
    cold_starts: list[float] = field(default_factory=list)
    peak_rss: dict[str, float] = field(default_factory=dict)
    servers: list[Server] = field(default_factory=list)
    bot_env: dict[str, str] = field(default_factory=dict)  # every bot's extra settings

    def bot(self, name: str, graph_url: str, **env: str) -> Server:
        """``practice-bot serve`` with a fresh data directory, pinned to the server CPU."""
        data = self.work / name
        data.mkdir()
        port = free_port()
        environment = {
            "PATH": os.environ.get("PATH", ""),
            "META_APP_SECRET": APP_SECRET,
            "META_VERIFY_TOKEN": VERIFY_TOKEN,
            "GRAPH_API_URL": graph_url,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "WHATSAPP_ACCESS_TOKEN": TOKEN,
            "PRACTICE_NAME": "Bench Dental",
            "PRACTICE_PHONE": "+44 20 7946 0000",
            "PRACTICE_EMAIL": "hello@bench-dental.example",
            "PSEUDONYM_KEY": PSEUDONYM_KEY,
            "DATABASE_URL": f"sqlite:///{data}/practice-bot.sqlite3",
            "TEMPLATES_DIR": str(REPO / "templates"),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "json",
            **self.bot_env,
            **env,
        }
        argv = self.cores.server_argv([sys.executable, "-m", "bot", "serve"])
        server = Server(name, argv, environment, data / "bot.log", port)
        self.servers.append(server)
        return server

    def floor(self, name: str = "floor") -> Server:
        """``bench/floor.py`` on a fresh SQLite file, pinned to the server CPU."""
        data = self.work / name
        data.mkdir()
        port = free_port()
        argv = self.cores.server_argv(
            [
                sys.executable,
                str(BENCH / "floor.py"),
                "--port",
                str(port),
                "--secret",
                APP_SECRET,
                "--db",
                str(data / "floor.sqlite3"),
            ]
        )
        env = {"PATH": os.environ.get("PATH", "")}
        server = Server(name, argv, env, data / "floor.log", port)
        self.servers.append(server)
        return server

    @asynccontextmanager
    async def running_bot(self, name: str, graph: FakeGraph, **env: str) -> AsyncIterator[Server]:
        """A bot for one phase: cold start and peak RSS recorded, stopped after ``graph``."""
        bot = self.bot(name, graph.url, **env)
        try:
            self.cold_starts.append(await bot.start())
            yield bot
        finally:
            if bot.proc is not None and bot.proc.returncode is None:
                self.peak_rss[name] = bot.peak_rss_mb()
            bot.terminate()
            await graph.stop()  # releases hanging sends so the bot's drain is quick
            await bot.wait()


# ----------------------------------------------------------------------------------------
# load generators


@dataclass(frozen=True, slots=True)
class Closed:
    """A closed-loop run's summary (wrk's or the fallback's)."""

    requests: int
    seconds: float
    p50: float
    p90: float
    p99: float
    max: float
    errors: int
    tool: str

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def _closed_from(raw: dict[str, Any], tool: str) -> Closed:
    errors = sum(
        int(raw[key])
        for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return Closed(
        requests=int(raw["requests"]),
        seconds=int(raw["duration_us"]) / 1e6,
        p50=int(raw["p50_us"]) / 1e6,
        p90=int(raw["p90_us"]) / 1e6,
        p99=int(raw["p99_us"]) / 1e6,
        max=int(raw["max_us"]) / 1e6,
        errors=errors,
        tool=tool,
    )


async def _run(argv: list[str], *, cwd: Path = REPO) -> tuple[str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited with {proc.returncode}: {err.decode()[-500:]}")
    return out.decode(), err.decode()


async def closed_loop(ctx: Context, url: str, bodies: BodySet, seconds: float) -> Closed:
    """``CONNECTIONS`` closed loops for ``seconds`` (wrk if installed, else loadgen.py)."""
    if ctx.wrk is not None:
        argv = ctx.cores.load_argv(
            [
                ctx.wrk,
                "-t1",
                f"-c{CONNECTIONS}",
                f"-d{round(seconds)}s",
                "--timeout",
                "5s",
                "-s",
                str(LUA),
                f"{url}/webhook",
                "--",
                str(bodies.path),
            ]
        )
        out, _ = await _run(argv)
        for line in out.splitlines():
            if line.startswith("WRK_JSON "):
                return _closed_from(json.loads(line.removeprefix("WRK_JSON ")), "wrk")
        raise RuntimeError(f"no WRK_JSON line in wrk's output: {out[-500:]}")
    result = ctx.work / f"closed-{time.monotonic_ns()}.json"
    argv = ctx.cores.load_argv(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            "closed",
            "--url",
            f"{url}/webhook",
            "--bodies",
            str(bodies.path),
            "--connections",
            str(CONNECTIONS),
            "--duration",
            str(seconds),
            "--out",
            str(result),
        ]
    )
    await _run(argv)
    return _closed_from(json.loads(result.read_text()), "loadgen.py")


@dataclass(frozen=True, slots=True)
class Request:
    """One open-loop request: monotonic times in seconds, status -1 for no answer."""

    index: int
    scheduled: float
    sent: float
    answered: float
    status: int


async def open_loop(ctx: Context, url: str, bodies: BodySet, rate: float) -> list[Request]:
    """Offer ``rate`` requests/s; returns the measured requests (the warm-up is dropped)."""
    profile = ctx.profile
    result = ctx.work / f"open-{time.monotonic_ns()}.json"
    argv = ctx.cores.load_argv(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            "open",
            "--url",
            f"{url}/webhook",
            "--bodies",
            str(bodies.path),
            "--rate",
            str(rate),
            "--duration",
            str(profile.rate_warmup + profile.rate_measure),
            "--out",
            str(result),
        ]
    )
    await _run(argv)
    raw = json.loads(result.read_text())
    start = float(raw["t0"]) + profile.rate_warmup
    requests = [
        Request(int(r[0]), float(r[1]), float(r[2]), float(r[3]), int(r[4])) for r in raw["records"]
    ]
    return [r for r in requests if r.scheduled >= start]


@dataclass(frozen=True, slots=True)
class Latency:
    """Percentiles of a latency sample; failures count as infinitely slow."""

    count: int
    failures: int
    p50: float
    p99: float
    max: float
    generator_lag_p99: float = 0.0

    @classmethod
    def of(cls, values: list[float], failures: int, lag: list[float] | None = None) -> Latency:
        """From successful latencies (seconds) and a count of failures."""
        ordered = sorted(values) + [math.inf] * failures
        lags = sorted(lag or [])
        return cls(
            count=len(ordered),
            failures=failures,
            p50=percentile(ordered, 50),
            p99=percentile(ordered, 99),
            max=ordered[-1] if ordered else math.nan,
            generator_lag_p99=percentile(lags, 99) if lags else 0.0,
        )


def ack_latency(requests: list[Request]) -> Latency:
    """Acknowledgement latency from each request's *scheduled* time (no coordinated omission)."""
    ok = [r.answered - r.scheduled for r in requests if r.status == 200]
    lag = [r.sent - r.scheduled for r in requests]
    return Latency.of(ok, sum(1 for r in requests if r.status != 200), lag)


# ----------------------------------------------------------------------------------------
# phases


@dataclass(slots=True)
class Results:
    """Everything measured."""

    profile: str
    pinned: bool
    tool: str = ""
    busy_before: float = 0.0
    bot: Closed | None = None  # the median round
    floor: Closed | None = None  # the median round
    bot_rounds: list[Closed] = field(default_factory=list)
    floor_rounds: list[Closed] = field(default_factory=list)
    bot_cpu_us: list[float] = field(default_factory=list)  # CPU per request, each round
    floor_cpu_us: list[float] = field(default_factory=list)
    floor_500: Latency | None = None
    bot_sends_per_s: float = 0.0
    bot_rows: int | None = None
    bot_log_errors: int = 0
    ack_500: Latency | None = None
    ack_hang: Latency | None = None
    send_60: Latency | None = None
    cold_starts: list[float] = field(default_factory=list)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    hotspots: Hotspots | None = None


def _count_rows(db: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608


def _log_errors(log: Path) -> int:
    count = 0
    with log.open("rb") as handle:
        for line in handle:
            if b'"level": "error"' in line or b'"level":"error"' in line:
                count += 1
    return count


def _wrap_note(ctx: Context, name: str, run: Closed, bodies: BodySet, res: Results) -> None:
    if run.requests > len(bodies.senders):
        res.notes.append(
            f"{name}: {run.requests - len(bodies.senders)} requests repeated a body "
            "(the body file ran out; repeats take the dedupe path)"
        )
    if run.errors:
        res.notes.append(f"{name}: {run.errors} failed requests (errors or non-2xx)")
    del ctx


async def _measured(ctx: Context, server: Server) -> tuple[Closed, float]:
    """Warm ``server`` up, then one measured closed-loop window and its CPU per request (µs)."""
    await closed_loop(ctx, server.url, ctx.bodies["warm"], ctx.profile.warmup)
    cpu = server.cpu_seconds()
    run = await closed_loop(ctx, server.url, ctx.bodies["main"], ctx.profile.measure)
    used = server.cpu_seconds() - cpu
    return run, 1e6 * used / run.requests if run.requests else math.nan


def _median_round(runs: list[Closed]) -> Closed:
    return sorted(runs, key=lambda run: run.rate)[len(runs) // 2]


async def phase_throughput(ctx: Context, res: Results) -> None:
    """1: the floor, then practice-bot, at 32 connections; repeated in pairs.

    A virtual machine's speed drifts by tens of percent over minutes. Each round measures
    the floor and the bot back to back on fresh processes, so a round's ratio compares the
    two on the same machine at nearly the same moment; the report gives the median.
    """
    for number in range(1, ctx.profile.rounds + 1):
        floor = ctx.floor(f"floor-{number}")
        try:
            await floor.start()
            run, cpu = await _measured(ctx, floor)
        finally:
            await floor.stop()
        res.floor_rounds.append(run)
        res.floor_cpu_us.append(cpu)
        graph = FakeGraph(token=TOKEN)
        await graph.start()
        # The service as deployed: replies paced at Meta's default 80 sends/s per number.
        async with ctx.running_bot(f"throughput-{number}", graph) as bot:
            sends_before = len(graph.requests)
            began = time.monotonic()
            run, cpu = await _measured(ctx, bot)
            elapsed = time.monotonic() - began
            res.bot_sends_per_s = (len(graph.requests) - sends_before) / elapsed
        res.bot_rounds.append(run)
        res.bot_cpu_us.append(cpu)
        print(
            f"  round {number}: floor {res.floor_rounds[-1].rate:,.0f} req/s, "
            f"bot {run.rate:,.0f} req/s ({run.rate / res.floor_rounds[-1].rate:.2f}x)",
            flush=True,
        )
        _wrap_note(ctx, f"floor round {number}", res.floor_rounds[-1], ctx.bodies["main"], res)
        _wrap_note(ctx, f"bot round {number}", run, ctx.bodies["main"], res)
    res.bot, res.floor = _median_round(res.bot_rounds), _median_round(res.floor_rounds)
    res.tool = res.bot.tool
    db = bot.log.parent / "practice-bot.sqlite3"
    res.bot_rows = _count_rows(db, "contact_log")
    res.bot_log_errors = _log_errors(bot.log)


def _round_ratios(res: Results) -> list[float]:
    return [
        bot.rate / floor.rate
        for bot, floor in zip(res.bot_rounds, res.floor_rounds, strict=True)
        if floor.rate
    ]


def _py_spy() -> str | None:
    found = shutil.which("py-spy")
    beside = Path(sys.executable).parent / "py-spy"
    return found or (str(beside) if beside.exists() else None)


async def phase_profile(ctx: Context, res: Results) -> None:
    """1a again, with py-spy sampling the bot during the measured window."""
    spy = _py_spy()
    if spy is None:
        raise RuntimeError("py-spy is not installed: `pip install py-spy` (into this venv)")
    warm, main = ctx.bodies["warm"], ctx.bodies["main"]
    raw = ctx.work / "py-spy.txt"
    graph = FakeGraph(token=TOKEN)
    await graph.start()
    async with ctx.running_bot("profile", graph) as bot:
        await closed_loop(ctx, bot.url, warm, ctx.profile.warmup)
        pid = bot.proc.pid if bot.proc is not None else 0
        argv = [spy, "record", "-r", "250", "-d", str(max(1, round(ctx.profile.measure)))]
        argv += ["-f", "raw", "-o", str(raw), "-p", str(pid)]
        sampler = await asyncio.create_subprocess_exec(
            *ctx.cores.load_argv(argv),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        res.bot = await closed_loop(ctx, bot.url, main, ctx.profile.measure)
        await sampler.wait()
    res.tool = res.bot.tool
    res.notes.append("throughput measured under py-spy (it pauses the bot to sample): lower")
    res.hotspots = summarize(raw) if raw.exists() else Hotspots(0, Counter(), Counter())


async def phase_floor_500(ctx: Context, res: Results) -> None:
    """2a reference: the floor at 500/s open loop, the load generator's own floor."""
    floor = ctx.floor("floor-500")
    try:
        await floor.start()
        res.floor_500 = ack_latency(await open_loop(ctx, floor.url, ctx.bodies["floor500"], 500))
    finally:
        await floor.stop()


def _handler_note(name: str, lat: Latency, log: Path) -> str:
    """The slowest webhook as the bot's own log line timed it, next to the client's view.

    The log's ``duration_ms`` runs from the handler's first line to its answer. When the
    client saw a much longer wait, the time went before the handler ran (the loop busy with
    something else, or the process not scheduled at all), not in recording the webhook.
    """
    slowest = 0.0
    with log.open("rb") as handle:
        for line in handle:
            if b'"event":"webhook"' not in line:
                continue
            with contextlib.suppress(ValueError):
                slowest = max(slowest, float(json.loads(line).get("duration_ms") or 0.0))
    return (
        f"{name}: slowest acknowledgement {_ms(lat.max)} as the client saw it, "
        f"{slowest:.2f} ms inside the bot's handler"
    )


async def phase_rate_500(ctx: Context, res: Results) -> None:
    """2a: acknowledgement latency at a fixed 500 webhooks/s, fast Graph API."""
    graph = FakeGraph(token=TOKEN)
    await graph.start()
    async with ctx.running_bot("rate500", graph) as bot:
        res.ack_500 = ack_latency(await open_loop(ctx, bot.url, ctx.bodies["rate500"], 500))
    res.notes.append(_handler_note("ack 500/s", res.ack_500, bot.log))


async def phase_hang(ctx: Context, res: Results) -> None:
    """2b: acknowledgement latency at 50/s while the Graph API hangs on every send."""

    def hang(_: RecordedRequest) -> Action:
        return Action.hang()

    graph = FakeGraph(token=TOKEN, decide=hang)
    await graph.start()
    async with ctx.running_bot("hang", graph) as bot:
        res.ack_hang = ack_latency(await open_loop(ctx, bot.url, ctx.bodies["hang"], 50))
        if not graph.requests:
            res.notes.append("hang: the bot sent nothing, so nothing hung (check the log)")
    res.notes.append(_handler_note("ack 50/s hang", res.ack_hang, bot.log))


async def phase_send_60(ctx: Context, res: Results) -> None:
    """3: webhook-to-send latency at 60 messages/s on one number, fast Graph API."""
    bodies = ctx.bodies["send60"]
    graph = FakeGraph(token=TOKEN)
    await graph.start()
    async with ctx.running_bot("send60", graph) as bot:
        requests = await open_loop(ctx, bot.url, bodies, 60)
        wanted = {bodies.senders[r.index]: r for r in requests}
        deadline = time.monotonic() + SEND_WAIT
        arrived: dict[str, float] = {}
        while time.monotonic() < deadline:
            for record in graph.requests:
                to = record.json.get("to") if isinstance(record.json, dict) else None
                if isinstance(to, str) and to in wanted and to not in arrived:
                    arrived[to] = record.at
            if len(arrived) == len(wanted):
                break
            await asyncio.sleep(0.1)
    latencies = [arrived[s] - r.sent for s, r in wanted.items() if s in arrived]
    res.send_60 = Latency.of(latencies, len(wanted) - len(arrived))
    failed = sum(1 for r in requests if r.status != 200)
    if failed:
        res.notes.append(f"send60: {failed} webhooks were not acknowledged with 200")


# ----------------------------------------------------------------------------------------
# report


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    return "inf" if math.isinf(seconds) else f"{seconds * 1000:.2f} ms"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(res: Results) -> list[tuple[str, str, str, str]]:
    """Rows of (figure, value, target, verdict)."""
    rows: list[tuple[str, str, str, str]] = []
    conn = f"{CONNECTIONS} conn, closed loop, {res.tool}"
    bot, floor = res.bot, res.floor
    if bot is not None:
        rows += [
            (f"1a bot ack throughput ({conn})", f"{bot.rate:,.0f} req/s", "median", "info"),
            ("1a bot ack p50 / p99", f"{_ms(bot.p50)} / {_ms(bot.p99)}", "median", "info"),
        ]
        if res.bot_sends_per_s:
            sends = f"{res.bot_sends_per_s:,.0f} /s"
            rows.append(("1a bot worker sends to fake Graph (paced 80/s)", sends, "", "info"))
    if floor is not None:
        rows += [
            (f"1b floor ack throughput ({conn})", f"{floor.rate:,.0f} req/s", "median", "info"),
            ("1b floor ack p50 / p99", f"{_ms(floor.p50)} / {_ms(floor.p99)}", "median", "info"),
        ]
    ratios = _round_ratios(res)
    if ratios:
        ratio = statistics.median(ratios)
        spread = f" (rounds {min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
        errors = sum(run.errors for run in res.bot_rounds)
        rows += [
            (
                f"1  bot / floor throughput, median of {len(ratios)} paired rounds",
                f"{ratio:.2f}x{spread}",
                f">= {TARGETS['ratio']}x (stretch {TARGETS['ratio_stretch']}x)",
                _verdict(ratio >= TARGETS["ratio"] and errors == 0)
                + (" (stretch)" if ratio >= TARGETS["ratio_stretch"] else ""),
            ),
        ]
    if res.bot_cpu_us and res.floor_cpu_us:
        bot_cpu = statistics.median(res.bot_cpu_us)
        floor_cpu = statistics.median(res.floor_cpu_us)
        rows.append(
            (
                "1  CPU per acknowledged webhook, bot / floor",
                f"{bot_cpu:.0f} us / {floor_cpu:.0f} us",
                "",
                "info",
            )
        )
    if res.floor_500 is not None:
        f = res.floor_500
        rows.append(
            (
                "2a floor ack p50 / p99 at 500/s (reference)",
                f"{_ms(f.p50)} / {_ms(f.p99)}",
                "",
                "info",
            )
        )
    if res.ack_500 is not None:
        a = res.ack_500
        rows += [
            ("2a ack p50 at 500/s (open loop)", _ms(a.p50), "", "info"),
            (
                "2a ack p99 at 500/s (open loop)",
                _ms(a.p99),
                f"<= {_ms(TARGETS['ack_p99_500'])}",
                _verdict(a.p99 <= TARGETS["ack_p99_500"] and a.failures == 0),
            ),
        ]
    if res.ack_hang is not None:
        h = res.ack_hang
        rows += [
            ("2b ack p50 at 50/s, Graph API hanging", _ms(h.p50), "", "info"),
            (
                "2b ack p99 at 50/s, Graph API hanging",
                _ms(h.p99),
                f"<= {_ms(TARGETS['ack_p99_hang'])}",
                _verdict(h.p99 <= TARGETS["ack_p99_hang"] and h.failures == 0),
            ),
        ]
    if res.send_60 is not None:
        s = res.send_60
        rows += [
            ("3  webhook-to-send p50 at 60/s", _ms(s.p50), "", "info"),
            (
                "3  webhook-to-send p99 at 60/s",
                _ms(s.p99),
                f"<= {_ms(TARGETS['send_p99_60'])}",
                _verdict(s.p99 <= TARGETS["send_p99_60"] and s.failures == 0),
            ),
        ]
    if res.peak_rss_mb:
        worst = max(res.peak_rss_mb, key=lambda k: res.peak_rss_mb[k])
        rss = res.peak_rss_mb[worst]
        rows.append(
            (
                f"4  peak RSS of the bot (VmHWM, {worst})",
                f"{rss:.1f} MB",
                f"<= {TARGETS['rss_mb']:.0f} MB",
                _verdict(rss <= TARGETS["rss_mb"]),
            )
        )
    if res.cold_starts:
        worst_start = max(res.cold_starts)
        rows.append(
            (
                f"4  cold start to first /healthz 200 (worst of {len(res.cold_starts)})",
                f"{worst_start:.3f} s (median {statistics.median(res.cold_starts):.3f} s)",
                f"<= {TARGETS['cold_start']:.0f} s",
                _verdict(worst_start <= TARGETS["cold_start"]),
            )
        )
    return rows


def print_report(res: Results) -> None:
    """The table, then details and notes."""
    rows = table(res)
    headers = ("figure", "value", "target", "result")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print()
    print(f"practice-bot benchmark ({res.profile} run, {'pinned' if res.pinned else 'NOT pinned'})")
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print()
    details: list[str] = []
    if res.bot is not None:
        details.append(
            f"bot: {res.bot.requests:,} requests in {res.bot.seconds:.1f} s, "
            f"p90 {_ms(res.bot.p90)}, max {_ms(res.bot.max)}, {res.bot.errors} errors"
            + (
                f"; {res.bot_rows:,} contact rows recorded (warm-up included); "
                f"{res.bot_log_errors} error lines in its log"
                if res.bot_rows is not None
                else ""
            )
        )
    if res.floor is not None:
        details.append(
            f"floor: {res.floor.requests:,} requests in {res.floor.seconds:.1f} s, "
            f"p90 {_ms(res.floor.p90)}, max {_ms(res.floor.max)}, {res.floor.errors} errors"
        )
    for name, lat in (
        ("500/s", res.ack_500),
        ("50/s hang", res.ack_hang),
        ("floor 500/s", res.floor_500),
    ):
        if lat is not None:
            details.append(
                f"ack {name}: {lat.count} measured, {lat.failures} failed, max {_ms(lat.max)}, "
                f"generator lag p99 {_ms(lat.generator_lag_p99)}"
            )
    if res.send_60 is not None:
        details.append(
            f"send 60/s: {res.send_60.count} matched, {res.send_60.failures} never sent within "
            f"{SEND_WAIT:.0f} s, max {_ms(res.send_60.max)}"
        )
    if res.peak_rss_mb:
        details.append(
            "peak RSS per bot run: "
            + ", ".join(f"{k} {v:.1f} MB" for k, v in res.peak_rss_mb.items())
        )
    if res.cold_starts:
        details.append("cold starts: " + ", ".join(f"{s:.3f} s" for s in res.cold_starts))
    for text in [*details, *res.notes]:
        print(f"  {text}")
    for text in res.failed:
        print(f"  FAILED {text}")
    if res.hotspots is not None:
        print()
        for text in format_hotspots(res.hotspots):
            print(text)


def _jsonable(res: Results) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    data: dict[str, Any] = clean(asdict(res))
    data["hotspots"] = format_hotspots(res.hotspots) if res.hotspots is not None else None
    keys = ("figure", "value", "target", "result")
    data["table"] = [dict(zip(keys, row, strict=True)) for row in table(res)]
    return data


# ----------------------------------------------------------------------------------------
# main


async def run(
    profile: Profile, *, profile_bot: bool = False, bot_env: dict[str, str] | None = None
) -> Results:
    """Every phase in order (or only the profiled throughput run); servers are always stopped."""
    cores = Cores.detect()
    cores.pin_self()
    wrk = shutil.which("wrk")
    if wrk is None:
        print(
            "note: wrk is not installed (Debian/Ubuntu: `apt-get install -y wrk`); the closed-loop "
            "throughput figures come from bench/loadgen.py instead, a slower generator, so they "
            "are a lower bound"
        )
    res = Results(profile=profile.name, pinned=cores.server is not None)
    res.busy_before = await busy_share()
    if res.busy_before > BUSY_WARNING:
        res.notes.append(
            f"the machine was {res.busy_before:.0%} busy before the run (other processes): "
            "expect noisy figures; run again on a quiet machine"
        )
        print(f"note: {res.notes[-1]}")
    with tempfile.TemporaryDirectory(prefix="practice-bot-bench-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        now = time.time()
        rate_count = round(profile.rate_warmup + profile.rate_measure + 1)
        bodies = {
            "warm": write_bodies(work / "warm.txt", 1, profile.warm_bodies, now),
            "main": write_bodies(work / "main.txt", 2, profile.main_bodies, now),
            "rate500": write_bodies(work / "rate500.txt", 3, 500 * rate_count, now),
            "hang": write_bodies(work / "hang.txt", 4, 50 * rate_count, now),
            "send60": write_bodies(work / "send60.txt", 5, 60 * rate_count, now),
            "floor500": write_bodies(work / "floor500.txt", 6, 500 * rate_count, now),
        }
        print(
            f"signed {sum(len(b.senders) for b in bodies.values()):,} distinct bodies "
            f"in {time.monotonic() - started:.1f} s"
        )
        ctx = Context(
            profile=profile,
            cores=cores,
            work=work,
            wrk=wrk,
            bodies=bodies,
            bot_env=bot_env or {},
        )
        phases: list[tuple[str, Callable[[Context, Results], Awaitable[None]]]] = [
            (f"1  throughput: floor and practice-bot, {profile.rounds} rounds", phase_throughput),
            ("2a reference: floor at 500/s", phase_floor_500),
            ("2a fixed rate 500/s", phase_rate_500),
            ("2b fixed rate 50/s, Graph API hanging", phase_hang),
            ("3  webhook-to-send at 60/s", phase_send_60),
        ]
        if profile_bot:
            phases = [("1a throughput: practice-bot under py-spy", phase_profile)]
        try:
            for title, phase in phases:
                began = time.monotonic()
                meter = CpuMeter()
                print(f"running {title} ...", flush=True)
                # The fake Graph API runs in this process: a collector pause here would be
                # measured as the bot's latency. Collect between phases, never during one.
                gc.collect()
                gc.freeze()
                gc.disable()
                try:
                    await phase(ctx, res)
                except RuntimeError as error:
                    res.failed.append(f"{title}: {error}")
                    print(f"  FAILED: {error}", flush=True)
                    continue
                finally:
                    gc.enable()
                foreign = meter.foreign_cores()
                print(f"  done in {time.monotonic() - began:.1f} s", flush=True)
                if foreign > FOREIGN_WARNING:
                    res.notes.append(
                        f"{title}: other processes used {foreign:.0%} of a CPU meanwhile; "
                        "its figures may be disturbed"
                    )
                    print(f"  note: {res.notes[-1]}", flush=True)
        finally:
            for server in ctx.servers:
                if server.proc is not None and server.proc.returncode is None:
                    server.proc.kill()
                    await server.proc.wait()
        res.cold_starts = ctx.cold_starts
        res.peak_rss_mb = ctx.peak_rss
        print(f"total {time.monotonic() - started:.1f} s")
    print_report(res)
    return res


def _bench_admin_hash() -> str:
    """A hash of a throwaway password: the page is on, and nobody signs in."""
    from bot.admin.auth import HASHER  # noqa: PLC0415 - only with --admin

    return HASHER.hash(os.urandom(16).hex())


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every target is met, 1 when one is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="shorter windows (under 40 s)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only the bot's throughput run, sampled by py-spy; prints where the time goes",
    )
    parser.add_argument(
        "--admin",
        action="store_true",
        help="with the practice manager's page on (ADMIN_PASSWORD_HASH set)",
    )
    args = parser.parse_args(argv)
    bot_env = {"ADMIN_PASSWORD_HASH": _bench_admin_hash()} if args.admin else {}
    res = asyncio.run(run(QUICK if args.quick else FULL, profile_bot=args.profile, bot_env=bot_env))
    if args.json is not None:
        args.json.write_text(json.dumps(_jsonable(res), indent=2) + "\n")
        print(f"\nwrote {args.json}")
    missed = [row for row in table(res) if row[3].startswith("MISS")]
    return 1 if missed or res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
