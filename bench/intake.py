"""Intake and reply throughput of the hub, against a raw-INSERT baseline on the same database.

    .venv/bin/python -m bench.intake [--backend sqlite|postgres|both] [--messages N] [--json]

Per backend, in one run:

1. baseline: single-row INSERT transactions straight through the driver the app uses
   (asyncpg; sqlite3 and aiosqlite with WAL and synchronous=NORMAL), 1 and 50 connections;
2. intake: customers (one visitor session and widget websocket each) send messages and
   wait for each ack; messages/s and send→ack latency, with 1 and 50 customers;
3. reply: an agent POSTs replies through the REST API (bearer token); latency until the
   customer's widget socket shows the reply and until the outbox has marked it sent (seen
   on the agent's /inbox/ws), and replies/s, with 1 and 50 conversations.

The hub runs in its own process (`bench._server`, or the module named by
SWITCHBOARD_BENCH_SERVER), so the load generator's CPU is not charged to it; both still
share the machine's cores with PostgreSQL and Redis. Each timed part is closed-loop (every
customer or agent waits for the answer before sending again) and stops after
`--max-seconds`, so a slow hub still finishes in bounded time. Everything talks to
loopback only: PostgreSQL (SWITCHBOARD_BENCH_POSTGRES, default postgres@127.0.0.1:5432,
a fresh database dropped at the end) and Redis (SWITCHBOARD_BENCH_REDIS, a unique prefix).

It prints figures and never asserts. `--profile DIR` attaches py-spy to the hub during
each scenario and summarises where its samples went (py-spy must be installed in the
venv; it slows the hub down, so profiled figures are not benchmark figures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import secrets
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get(
    "SWITCHBOARD_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SWITCHBOARD_BENCH_REDIS", "redis://127.0.0.1:6379/0")
SECRET = "bench-secret-key-" + "x" * 40


def _require_loopback(url: str) -> None:
    """This benchmark sends load to this machine only."""
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise SystemExit(f"bench.intake: {host!r} is not a loopback address; refusing to run")


WAIT = 30.0  # seconds any single ack, delivery or start-up may take before it counts as lost
TEXT = "Hello, where is my order #{n}? It was due yesterday."
# Each timed part stops starting new work after this many seconds (set by --max-seconds),
# so a slow hub still finishes the run in bounded time; `n` then says how much was done.
BUDGET = {"seconds": 15.0, "baseline": 3.0}
PROFILE_ARGS: list[str] = []  # extra py-spy options (--profile-gil adds "--gil")
CPROFILE: dict[str, Path] = {}  # "dir": where the hub writes cProfile stats (--cprofile)
HUB_LOOP: list[str] = []  # --hub-loop: the event loop the hub runs on, if not its default


def deadline(kind: str = "seconds") -> float:
    return time.perf_counter() + BUDGET[kind]


_TICK = os.sysconf("SC_CLK_TCK")


# --- figures -------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100), or None without samples."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def _per(
    before: tuple[int, int] | None, after: tuple[int, int] | None, count: int, index: int = 0
) -> float | None:
    if before is None or after is None or not count:
        return None
    return round((after[index] - before[index]) / count, 3)


def split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


# --- CPU accounting from /proc (no extra dependency) ----------------------------------------


def _task_runtime(path: str) -> float:
    """Seconds on a CPU of one task, from its schedstat (nanosecond-precise: the tick-based
    utime/stime of /proc/PID/stat miss most of the time of many short-lived busy tasks)."""
    try:
        with open(f"{path}/schedstat") as handle:
            return int(handle.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def _proc_cpu(pid: int | str) -> float:
    """All threads of a process (threads that ended meanwhile are not counted)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    return sum(_task_runtime(f"/proc/{pid}/task/{tid}") for tid in tasks)


def _proc_total(pid: int) -> float:
    """A process's CPU seconds, threads that ended included: /proc/PID/stat counts those,
    but can lag for bursty tasks, so take the larger of it and the live threads' schedstat."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            data = handle.read()
        fields = data[data.rindex(")") + 2 :].split()
        ticks = (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, ValueError, IndexError):
        ticks = 0.0
    return max(ticks, _proc_cpu(pid))


def _proc_name(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _by_name(names: tuple[str, ...]) -> dict[int, float]:
    found: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _proc_name(entry).startswith(names):
            found[int(entry)] = _proc_cpu(entry)
    return found


def _machine() -> tuple[float, float]:
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICK, sum(values) / _TICK


@dataclass
class CpuSnapshot:
    wall: float
    server: float
    server_loop: float  # the hub's main thread: the event loop (driver threads are the rest)
    client: float
    postgres: dict[int, float]
    redis: dict[int, float]
    machine: tuple[float, float]


def cpu_snapshot(server_pid: int | None) -> CpuSnapshot:
    times = os.times()
    return CpuSnapshot(
        wall=time.perf_counter(),
        server=_proc_total(server_pid) if server_pid else 0.0,
        server_loop=_task_runtime(f"/proc/{server_pid}/task/{server_pid}") if server_pid else 0.0,
        client=times.user + times.system,
        postgres=_by_name(("postgres",)),
        redis=_by_name(("redis-server",)),
        machine=_machine(),
    )


def cpu_usage(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU use over the interval, in % of one core (200 = both cores of this machine)."""
    wall = max(after.wall - before.wall, 1e-9)

    def group(a: dict[int, float], b: dict[int, float]) -> float:
        return sum(v - a.get(pid, 0.0) for pid, v in b.items())

    busy = after.machine[0] - before.machine[0]
    total = after.machine[1] - before.machine[1]
    cores = os.cpu_count() or 1
    usage = {
        "server": 100 * (after.server - before.server) / wall,
        "server_loop": 100 * (after.server_loop - before.server_loop) / wall,
        "client": 100 * (after.client - before.client) / wall,
        "postgres": 100 * group(before.postgres, after.postgres) / wall,
        "redis": 100 * group(before.redis, after.redis) / wall,
        "machine": 100 * cores * busy / total if total > 0 else 0.0,
    }
    usage["server_threads"] = max(0.0, usage["server"] - usage["server_loop"])
    ours = usage["server"] + usage["client"] + usage["postgres"] + usage["redis"]
    usage["other"] = max(0.0, usage["machine"] - ours)
    return {k: round(v, 1) for k, v in usage.items()}


# --- databases ------------------------------------------------------------------------------


@dataclass
class Target:
    """One backend's fresh database (and bus) for the whole run."""

    backend: str  # "sqlite" or "postgres"
    app_url: str  # SQLAlchemy URL the hub uses
    redis_url: str | None
    redis_prefix: str
    workdir: Path
    raw_dsn: str = ""  # asyncpg DSN (postgres) or file path (sqlite)
    pg_name: str = ""


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_target(backend: str) -> Any:
    from switchboard.migrate import upgrade

    workdir = Path(tempfile.mkdtemp(prefix=f"sb-bench-{backend}-"))
    prefix = f"sbbench:{os.getpid()}:{secrets.token_hex(4)}:"
    target: Target
    try:
        if backend == "sqlite":
            path = workdir / "bench.db"
            target = Target(
                "sqlite", f"sqlite+aiosqlite:///{path}", None, prefix, workdir, str(path)
            )
        else:
            name = f"sb_bench_{os.getpid()}_{secrets.token_hex(3)}"
            await _pg_admin(f'CREATE DATABASE "{name}"')
            dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
            url = "postgresql+asyncpg://" + dsn.split("://", 1)[1]
            target = Target("postgres", url, REDIS_URL, prefix, workdir, dsn, name)
        await upgrade(target.app_url)
        yield target
    finally:
        if backend == "postgres" and "target" in locals():
            with contextlib.suppress(Exception):
                await _pg_admin(f'DROP DATABASE IF EXISTS "{target.pg_name}" WITH (FORCE)')
            with contextlib.suppress(Exception):
                import redis.asyncio as aioredis

                client = aioredis.from_url(REDIS_URL)
                async for key in client.scan_iter(match=prefix + "*", count=500):
                    await client.delete(key)
                await client.aclose()
        shutil.rmtree(workdir, ignore_errors=True)


async def app_db_call(url: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(session)` in one transaction through the hub's own database layer."""
    from switchboard.bus import InProcessBus
    from switchboard.db import create_engine, create_sessionmaker
    from switchboard.tx import Database

    engine = create_engine(url)
    try:
        return await Database(engine, create_sessionmaker(engine), InProcessBus()).run(work)
    finally:
        await engine.dispose()


async def create_agent_token(url: str) -> str:
    from switchboard import accounts

    async def work(session: Any) -> str:
        user = await accounts.do_create_user(
            session,
            email="bench-agent@example.com",
            name="Bench Agent",
            role="agent",
            password="bench-password-123",
        )
        return await accounts.do_create_api_token(session, user, "bench")

    return str(await app_db_call(url, work))


async def webchat_public_key(url: str) -> str:
    from sqlalchemy import select

    from conversations.models import Inbox

    async def work(session: Any) -> str:
        return str(
            (
                await session.execute(select(Inbox.public_key).where(Inbox.kind == "webchat"))
            ).scalar_one()
        )

    return str(await app_db_call(url, work))


async def conversation_ids(url: str, visitor_ids: list[str]) -> dict[str, int]:
    from sqlalchemy import select

    from conversations.models import Conversation

    async def work(session: Any) -> dict[str, int]:
        rows = await session.execute(
            select(Conversation.thread_key, Conversation.id).where(
                Conversation.thread_key.in_(visitor_ids)
            )
        )
        return {key: cid for key, cid in rows.all()}

    return dict(await app_db_call(url, work))


async def stored_counts(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from conversations.models import Message, OutboxEntry

    async def work(session: Any) -> dict[str, int]:
        rows = (
            await session.execute(
                select(Message.direction, func.count()).group_by(Message.direction)
            )
        ).all()
        sent = (
            await session.execute(
                select(func.count()).select_from(OutboxEntry).where(OutboxEntry.status == "sent")
            )
        ).scalar_one()
        counts = {f"messages_{direction}": n for direction, n in rows}
        counts["outbox_sent"] = sent
        return counts

    return dict(await app_db_call(url, work))


async def pg_transactions(target: Target) -> tuple[int, int] | None:
    """(transactions, sessions) of the hub's database so far (PostgreSQL only): committed
    plus rolled-back transactions, and connections ever opened. Backends report their
    counters at most once a second, so wait that out first."""
    if target.backend != "postgres":
        return None
    import asyncpg

    await asyncio.sleep(1.2)
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        row = await conn.fetchrow(
            "SELECT xact_commit + xact_rollback, sessions FROM pg_stat_database WHERE datname = $1",
            target.pg_name,
        )
    finally:
        await conn.close()
    return (int(row[0]), int(row[1])) if row is not None else None


# --- baseline: raw single-row INSERT transactions ---------------------------------------------


def _baseline_result(
    name: str, conns: int, rows: int, wall: float, lat: list[float], cpu: dict[str, float]
) -> dict[str, Any]:
    return {
        "scenario": name,
        "concurrency": conns,
        "n": rows,
        "rate": round(rows / wall, 1),
        "p50_ms": ms(percentile(lat, 50)),
        "p99_ms": ms(percentile(lat, 99)),
        "wall_s": round(wall, 3),
        "cpu": cpu,
    }


async def baseline_asyncpg(dsn: str, conns: int, rows: int) -> dict[str, Any]:
    """N separate autocommitted single-row INSERTs over `conns` asyncpg connections."""
    import asyncpg

    setup = await asyncpg.connect(dsn)
    await setup.execute(
        "CREATE TABLE IF NOT EXISTS bench_baseline (id bigserial PRIMARY KEY, k integer NOT NULL,"
        " body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
    )
    await setup.execute("TRUNCATE bench_baseline")
    connections = [await asyncpg.connect(dsn) for _ in range(conns)]
    sql = "INSERT INTO bench_baseline (k, body) VALUES ($1, $2)"
    for conn in connections:  # prepare outside the timed part, as a warm pool would have
        await conn.execute(sql, -1, "warm-up")
    latencies: list[float] = []

    async def worker(conn: Any, count: int, base: int) -> None:
        for i in range(count):
            if time.perf_counter() > stop:
                break
            t0 = time.perf_counter()
            await conn.execute(sql, base + i, TEXT.format(n=base + i))
            latencies.append(time.perf_counter() - t0)

    before = cpu_snapshot(None)
    started = time.perf_counter()
    stop = deadline("baseline")
    offsets = [0]
    for count in split(rows, conns)[:-1]:
        offsets.append(offsets[-1] + count)
    await asyncio.gather(
        *(worker(c, n, o) for c, n, o in zip(connections, split(rows, conns), offsets, strict=True))
    )
    wall = time.perf_counter() - started
    cpu = cpu_usage(before, cpu_snapshot(None))
    for conn in connections:
        await conn.close()
    await setup.execute("DROP TABLE bench_baseline")
    await setup.close()
    return _baseline_result("baseline asyncpg", conns, len(latencies), wall, latencies, cpu)


def _sqlite_prepare(path: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS bench_baseline (id INTEGER PRIMARY KEY, k INTEGER NOT NULL,"
        " body TEXT NOT NULL, created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    )
    conn.execute("DELETE FROM bench_baseline")
    conn.close()


def _sqlite_pragmas(conn: Any) -> None:
    # The app's pragmas (switchboard.db._on_sqlite_connect).
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA synchronous=NORMAL")


def baseline_sqlite3(path: str, rows: int) -> dict[str, Any]:
    """One sqlite3 connection, BEGIN IMMEDIATE / INSERT / COMMIT per row (the app's BEGIN)."""
    _sqlite_prepare(path)
    conn = sqlite3.connect(path, isolation_level=None)
    _sqlite_pragmas(conn)
    latencies: list[float] = []
    before = cpu_snapshot(None)
    started = time.perf_counter()
    stop = deadline("baseline")
    for i in range(rows):
        if time.perf_counter() > stop:
            break
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO bench_baseline (k, body) VALUES (?, ?)", (i, TEXT.format(n=i)))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - t0)
    wall = time.perf_counter() - started
    cpu = cpu_usage(before, cpu_snapshot(None))
    conn.close()
    return _baseline_result("baseline sqlite3", 1, len(latencies), wall, latencies, cpu)


async def baseline_aiosqlite(path: str, conns: int, rows: int) -> dict[str, Any]:
    """`conns` aiosqlite connections (one thread each), one row per transaction."""
    import aiosqlite

    _sqlite_prepare(path)
    connections = []
    for _ in range(conns):
        conn = await aiosqlite.connect(path, isolation_level=None, timeout=10)
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA busy_timeout=10000",
            "PRAGMA synchronous=NORMAL",
        ):
            await conn.execute(pragma)
        connections.append(conn)
    latencies: list[float] = []

    async def worker(conn: Any, count: int, base: int) -> None:
        for i in range(count):
            if time.perf_counter() > stop:
                break
            t0 = time.perf_counter()
            await conn.execute("BEGIN IMMEDIATE")
            await conn.execute(
                "INSERT INTO bench_baseline (k, body) VALUES (?, ?)", (base + i, TEXT.format(n=i))
            )
            await conn.execute("COMMIT")
            latencies.append(time.perf_counter() - t0)

    counts = split(rows, conns)
    offsets = [sum(counts[:i]) for i in range(conns)]
    before = cpu_snapshot(None)
    started = time.perf_counter()
    stop = deadline("baseline")
    await asyncio.gather(
        *(worker(c, n, o) for c, n, o in zip(connections, counts, offsets, strict=True))
    )
    wall = time.perf_counter() - started
    cpu = cpu_usage(before, cpu_snapshot(None))
    for conn in connections:
        await conn.close()
    with sqlite3.connect(path) as plain:
        plain.execute("DROP TABLE bench_baseline")
    return _baseline_result("baseline aiosqlite", conns, len(latencies), wall, latencies, cpu)


# --- the hub in its own process ----------------------------------------------------------------


class Hub:
    """`python -m bench._server` on 127.0.0.1, port 0; stopped by SIGTERM or stdin EOF."""

    def __init__(self, target: Target, overrides: dict[str, Any] | None = None) -> None:
        self.target = target
        self.overrides = overrides or {}
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.log_path = target.workdir / "server.log"
        self.base = ""
        self.socket_limits_lifted: bool | None = None

    async def start(self) -> None:
        config = {
            "database_url": self.target.app_url,
            "redis_url": self.target.redis_url,
            "redis_prefix": self.target.redis_prefix,
            "secret_key": SECRET,
            "var_dir": str(self.target.workdir / "var"),
            "overrides": self.overrides,
        }
        if HUB_LOOP:
            config["event_loop"] = HUB_LOOP[0]
        if "dir" in CPROFILE:
            config["cprofile_dir"] = str(CPROFILE["dir"] / "raw")
        self.log = open(self.log_path, "wb")  # noqa: SIM115, ASYNC230 - closed in stop()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            # Another module with the same contract can stand in, to measure a variant.
            os.environ.get("SWITCHBOARD_BENCH_SERVER", "bench._server"),
            json.dumps(config),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.log,
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(WAIT):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"the hub did not start; see its log:\n{self.log_tail()}")
                if line.startswith(b"BENCH-READY "):
                    ready = json.loads(line[len(b"BENCH-READY ") :])
                    self.port = ready["port"]
                    self.socket_limits_lifted = ready.get("socket_limits_lifted")
                    break
        self.base = f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def log_problems(self) -> int:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            return text.count(" ERROR ") + text.count("Traceback")
        return 0

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(15):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.log.close()


# --- the load generator ------------------------------------------------------------------------


class Lost(Exception):
    """An ack, a delivery or a 'sent' did not arrive in time, or came back as an error."""


class Arrivals:
    """When each message id was first seen on a socket, and waiters for ids not seen yet."""

    def __init__(self, lost: str) -> None:
        self.seen: dict[int, float] = {}
        self.waiting: dict[int, asyncio.Future[float]] = {}
        self.lost = lost

    def record(self, message_id: int, at: float) -> None:
        self.seen.setdefault(message_id, at)
        waiting = self.waiting.pop(message_id, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(at)

    async def when(self, message_id: int) -> float:
        if message_id in self.seen:
            return self.seen[message_id]
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[message_id] = future
        try:
            async with asyncio.timeout(WAIT):
                return await future
        except TimeoutError:
            raise Lost(self.lost) from None


class Widget:
    """One customer: a visitor session and its websocket, with a reader task that timestamps
    every frame the moment it arrives."""

    def __init__(self, http: aiohttp.ClientSession, base: str, public_key: str) -> None:
        self.http, self.base, self.public_key = http, base, public_key
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.visitor_id = ""
        self.reader: asyncio.Task[None] | None = None
        self.acks: dict[str, asyncio.Future[tuple[float, dict[str, Any]]]] = {}
        self.replies = Arrivals("reply did not reach the widget")
        self.counter = 0
        self.errors: Counter[str] = Counter()

    async def open(self) -> None:
        async with self.http.post(
            f"{self.base}/widget/session", json={"inbox": self.public_key}
        ) as response:
            response.raise_for_status()
            token = (await response.json())["token"]
        for _attempt in range(
            100
        ):  # the hub caps open sockets per address; closed ones take a moment
            try:
                self.ws = await self.http.ws_connect(
                    f"{self.base}/widget/ws?token={token}", heartbeat=None
                )
                break
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status != 429:
                    raise
                await asyncio.sleep(0.05)
        else:
            raise Lost("too many open sockets on the hub")
        async with asyncio.timeout(WAIT):
            hello = await self.ws.receive_json()
        self.visitor_id = hello["visitor_id"]
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            now = time.perf_counter()
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = orjson.loads(msg.data)
            kind = frame.get("type")
            if kind == "ack":
                ack = self.acks.pop(frame["client_msg_id"], None)
                if ack is not None and not ack.done():
                    ack.set_result((now, frame))
            elif kind == "message" and frame["message"]["direction"] == "out":
                self.replies.record(frame["message"]["id"], now)
            elif kind == "error":
                self.errors[frame.get("code", "?")] += 1
                ack = self.acks.pop(frame.get("client_msg_id", ""), None)
                if ack is not None and not ack.done():
                    ack.set_exception(Lost(frame.get("code", "error")))

    async def send(self) -> float:
        """Send one message; the seconds from sending the frame to receiving its ack."""
        assert self.ws is not None
        self.counter += 1
        client_msg_id = f"bench-{self.counter:07d}-{secrets.token_hex(3)}"
        ack: asyncio.Future[tuple[float, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future()
        )
        self.acks[client_msg_id] = ack
        frame = orjson.dumps(
            {"type": "message", "client_msg_id": client_msg_id, "text": TEXT.format(n=self.counter)}
        )
        started = time.perf_counter()
        # The load generator shares the hub's two cores: its own cost per message is kept
        # low (orjson, the frame written as bytes) so the hub gets more of them.
        await self.ws.send_frame(frame, aiohttp.WSMsgType.TEXT)
        try:
            async with asyncio.timeout(WAIT):
                arrived, _ = await ack
        except TimeoutError:
            self.acks.pop(client_msg_id, None)
            raise Lost("ack timed out") from None
        return arrived - started

    async def reply_seen(self, message_id: int) -> float:
        """When the reply with this id reached the socket (perf_counter time)."""
        return await self.replies.when(message_id)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await self.reader


class InboxWatcher:
    """The agent's live inbox socket: timestamps each message's switch to delivery 'sent'."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: str) -> None:
        self.http, self.base, self.token = http, base, token
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.sent = Arrivals("the outbox did not mark the reply sent")
        self.resyncs = 0
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.ws = await self.http.ws_connect(
            f"{self.base}/inbox/ws",
            headers={"Authorization": f"Bearer {self.token}"},
            heartbeat=None,
        )
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            now = time.perf_counter()
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if frame.get("type") == "resync":
                self.resyncs += 1
            elif frame.get("type") == "message.updated":
                message = frame["data"]["message"]
                if message["delivery_status"] == "sent":
                    self.sent.record(message["id"], now)

    async def sent_at(self, message_id: int) -> float:
        return await self.sent.when(message_id)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await self.reader


async def open_widgets(
    http: aiohttp.ClientSession, hub: Hub, public_key: str, count: int
) -> list[Widget]:
    widgets = [Widget(http, hub.base, public_key) for _ in range(count)]
    await asyncio.gather(*(w.open() for w in widgets))
    return widgets


class Profiler:
    """py-spy attached to the hub for one scenario (raw collapsed stacks)."""

    def __init__(self, directory: Path | None, pid: int, name: str) -> None:
        self.path = directory / f"{name}.txt" if directory else None
        self.pid = pid
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Profiler:
        if self.path is not None:
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            self.proc = await asyncio.create_subprocess_exec(
                spy,
                "record",
                "--pid",
                str(self.pid),
                "--format",
                "raw",
                "--rate",
                "250",
                "--nonblocking",
                *PROFILE_ARGS,
                "--output",
                str(self.path),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await asyncio.sleep(1.0)  # let it attach
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    await self.proc.wait()
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()


class CProfiler:
    """cProfile inside the hub for one timed part (`--cprofile DIR`): SIGUSR1 starts it,
    SIGUSR2 writes `DIR/raw/cprofile-N.prof`, renamed here to `DIR/<backend>-<part>.prof`.
    It times the event loop thread's CPU clock, so other processes' load does not count."""

    count = 0  # profiles asked of the current hub

    def __init__(self, pid: int, name: str) -> None:
        self.pid, self.name = pid, name
        self.directory = CPROFILE.get("dir")

    async def __aenter__(self) -> CProfiler:
        if self.directory is not None:
            os.kill(self.pid, signal.SIGUSR1)
            await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.directory is None:
            return
        CProfiler.count += 1
        raw = self.directory / "raw" / f"cprofile-{CProfiler.count}.prof"
        os.kill(self.pid, signal.SIGUSR2)
        async with asyncio.timeout(WAIT):
            while not raw.exists():  # noqa: ASYNC110 - a file written by another process
                await asyncio.sleep(0.05)
        raw.replace(self.directory / f"{self.name}.prof")


@dataclass(frozen=True)
class TimedPart:
    """What the hub and its database did during one scenario's timed part."""

    before: CpuSnapshot
    after: CpuSnapshot
    xacts_before: tuple[int, int] | None
    xacts_after: tuple[int, int] | None

    def figures(self, done: int) -> dict[str, Any]:
        wall = self.after.wall - self.before.wall
        cpu = cpu_usage(self.before, self.after)

        def per_item(share: float) -> float | None:
            return round(10 * share * wall / done, 3) if done else None

        before, after = self.xacts_before, self.xacts_after
        return {
            "n": done,
            "rate": round(done / wall, 1),
            "wall_s": round(wall, 3),
            "server_cpu_ms_per_msg": per_item(cpu["server"]),
            "server_loop_cpu_ms_per_msg": per_item(cpu["server_loop"]),
            "db_transactions_per_msg": _per(before, after, done),
            "db_connections_opened": None
            if before is None or after is None
            else after[1] - before[1],
            "cpu": cpu,
        }


async def timed_part(
    hub: Hub, profile: Path | None, name: str, load: Callable[[float], Awaitable[None]]
) -> TimedPart:
    """Run `load(stop)` (it stops starting work at `stop`) with CPU, database counters
    and, if asked, the profiler around it."""
    xacts_before = await pg_transactions(hub.target)
    async with (
        Profiler(profile, hub.pid, f"{hub.target.backend}-{name}"),
        CProfiler(hub.pid, f"{hub.target.backend}-{name}"),
    ):
        before = cpu_snapshot(hub.pid)
        await load(deadline())
        after = cpu_snapshot(hub.pid)
    return TimedPart(before, after, xacts_before, await pg_transactions(hub.target))


async def intake_scenario(
    http: aiohttp.ClientSession,
    hub: Hub,
    public_key: str,
    customers: int,
    messages: int,
    profile: Path | None,
) -> dict[str, Any]:
    widgets = await open_widgets(http, hub, public_key, customers)
    lost: Counter[str] = Counter()
    try:
        # Each customer's first message (new customer, new conversation) is not timed.
        await asyncio.gather(*(w.send() for w in widgets))
        latencies: list[float] = []

        async def customer(widget: Widget, count: int, stop: float) -> None:
            for _ in range(count):
                if time.perf_counter() > stop:
                    break
                try:
                    latencies.append(await widget.send())
                except Lost as exc:
                    lost[str(exc)] += 1

        async def load(stop: float) -> None:
            shares = zip(widgets, split(messages, customers), strict=True)
            await asyncio.gather(*(customer(w, n, stop) for w, n in shares))

        part = await timed_part(hub, profile, f"intake-{customers}", load)
    finally:
        await asyncio.gather(*(w.close() for w in widgets), return_exceptions=True)
    errors = sum((w.errors for w in widgets), Counter())
    return {
        "scenario": "intake",
        "concurrency": customers,
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": ms(max(latencies) if latencies else None),
        **part.figures(len(latencies)),
        "lost": dict(lost),
        "error_frames": dict(errors),
    }


async def reply_scenario(
    http: aiohttp.ClientSession,
    hub: Hub,
    public_key: str,
    token: str,
    conversations: int,
    replies: int,
    profile: Path | None,
) -> dict[str, Any]:
    widgets = await open_widgets(http, hub, public_key, conversations)
    inbox = InboxWatcher(http, hub.base, token)
    await inbox.open()
    lost: Counter[str] = Counter()
    post_lat: list[float] = []
    widget_lat: list[float] = []
    sent_lat: list[float] = []
    auth = {"Authorization": f"Bearer {token}"}
    try:
        await asyncio.gather(*(w.send() for w in widgets))  # opens each conversation
        ids = await conversation_ids(hub.target.app_url, [w.visitor_id for w in widgets])

        async def reply(widget: Widget, conversation_id: int, n: int, record: bool) -> None:
            started = time.perf_counter()
            try:
                async with http.post(
                    f"{hub.base}/api/v1/conversations/{conversation_id}/messages",
                    json={"text": f"Agent reply {n}: it ships today."},
                    headers=auth,
                ) as response:
                    answered = time.perf_counter()
                    if response.status != 201:
                        lost[f"HTTP {response.status}"] += 1
                        return
                    message_id = (await response.json())["message"]["id"]
                seen = await widget.reply_seen(message_id)
                sent = await inbox.sent_at(message_id)
            except Lost as exc:
                lost[str(exc)] += 1
                return
            if record:
                post_lat.append(answered - started)
                widget_lat.append(seen - started)
                sent_lat.append(sent - started)

        # One untimed reply per conversation first (the outbox's first pass, warm caches).
        await asyncio.gather(*(reply(w, ids[w.visitor_id], 0, False) for w in widgets))

        async def agent(widget: Widget, count: int, stop: float) -> None:
            for n in range(1, count + 1):
                if time.perf_counter() > stop:
                    break
                await reply(widget, ids[widget.visitor_id], n, True)

        async def load(stop: float) -> None:
            shares = zip(widgets, split(replies, conversations), strict=True)
            await asyncio.gather(*(agent(w, n, stop) for w, n in shares))

        part = await timed_part(hub, profile, f"reply-{conversations}", load)
    finally:
        await asyncio.gather(*(w.close() for w in widgets), return_exceptions=True)
        await inbox.close()
    return {
        "scenario": "reply",
        "concurrency": conversations,
        "p50_ms": ms(percentile(sent_lat, 50)),
        "p99_ms": ms(percentile(sent_lat, 99)),
        "post_p50_ms": ms(percentile(post_lat, 50)),
        "post_p99_ms": ms(percentile(post_lat, 99)),
        "widget_p50_ms": ms(percentile(widget_lat, 50)),
        "widget_p99_ms": ms(percentile(widget_lat, 99)),
        "sent_p50_ms": ms(percentile(sent_lat, 50)),
        "sent_p99_ms": ms(percentile(sent_lat, 99)),
        **part.figures(len(sent_lat)),
        "lost": dict(lost),
        "inbox_resyncs": inbox.resyncs,
    }


# --- one backend ---------------------------------------------------------------------------------


async def run_backend(
    backend: str, args: argparse.Namespace, say: Callable[[str], None]
) -> dict[str, Any]:
    profile: Path | None = args.profile
    results: dict[str, Any] = {"backend": backend, "baseline": [], "intake": [], "reply": []}
    async with fresh_target(backend) as target:
        say(
            f"[{backend}] baseline: single-row INSERT transactions for"
            f" {args.baseline_seconds} s (at most {args.baseline_rows}) per run"
        )
        if backend == "postgres":
            for conns in args.concurrency:
                results["baseline"].append(
                    await baseline_asyncpg(target.raw_dsn, conns, args.baseline_rows)
                )
        else:
            results["baseline"].append(
                await asyncio.to_thread(baseline_sqlite3, target.raw_dsn, args.baseline_rows)
            )
            for conns in args.concurrency:
                results["baseline"].append(
                    await baseline_aiosqlite(target.raw_dsn, conns, args.baseline_rows)
                )

        token = await create_agent_token(target.app_url)
        hub = Hub(target)
        CProfiler.count = 0
        await hub.start()
        try:
            public_key = await webchat_public_key(target.app_url)
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=WAIT)
            ) as http:
                say(f"[{backend}] warm-up")
                await intake_scenario(http, hub, public_key, 5, 100, None)
                for customers in args.concurrency if "intake" in args.scenarios else []:
                    say(
                        f"[{backend}] intake: {args.messages} messages from {customers} customer(s)"
                    )
                    results["intake"].append(
                        await intake_scenario(
                            http, hub, public_key, customers, args.messages, profile
                        )
                    )
                for conversations in args.concurrency if "reply" in args.scenarios else []:
                    say(
                        f"[{backend}] reply: {args.replies} replies"
                        f" over {conversations} conversation(s)"
                    )
                    results["reply"].append(
                        await reply_scenario(
                            http, hub, public_key, token, conversations, args.replies, profile
                        )
                    )
        finally:
            await hub.stop()
        results["socket_limits_lifted"] = hub.socket_limits_lifted
        results["server_log_problems"] = hub.log_problems()
        if results["server_log_problems"]:
            results["server_log_tail"] = hub.log_tail()
        results["stored"] = await stored_counts(target.app_url)
    # Ratios against the same run's baseline on the same database, at the same concurrency,
    # through the driver the hub itself uses (asyncpg; aiosqlite).
    driver = "baseline asyncpg" if backend == "postgres" else "baseline aiosqlite"
    base = {b["concurrency"]: b["rate"] for b in results["baseline"] if b["scenario"] == driver}
    for row in results["intake"] + results["reply"]:
        if base.get(row["concurrency"]):
            row["ratio_vs_baseline"] = round(row["rate"] / base[row["concurrency"]], 3)
    best = max(base.values()) if base else 0
    for row in results["intake"] + results["reply"]:
        if best:
            row["ratio_vs_best_baseline"] = round(row["rate"] / best, 3)
    if profile:
        results["profile"] = await asyncio.to_thread(summarize_profiles, profile, backend)
    if "dir" in CPROFILE:
        done = {
            f"{backend}-{row['scenario']}-{row['concurrency']}": row["n"]
            for row in results["intake"] + results["reply"]
        }
        results["cprofile"] = await asyncio.to_thread(
            summarize_cprofiles, CPROFILE["dir"], backend, done
        )
    return results


# --- profile summary ----------------------------------------------------------------------

PROJECT_DIRS = ("switchboard/", "conversations/", "customers/", "channels/", "web/")
LIBRARIES = (
    ("sqlalchemy", "sqlalchemy/"),
    ("asyncpg", "asyncpg/"),
    ("aiosqlite", "aiosqlite/"),
    ("sqlite3", "sqlite3/"),
    ("redis", "redis/"),
    ("aiohttp", "aiohttp/"),
    ("asyncio", "asyncio/"),
    ("json", "json/"),
    ("greenlet", "greenlet/"),
)


def _idle_frames() -> set[str]:
    """Leaf frames that are a thread waiting, not working: py-spy's own idle detection
    does not see through these (epoll; an aiosqlite thread blocked on its queue)."""
    idle = {"EpollSelector.select (selectors.py)", "select (selectors.py)"}
    with contextlib.suppress(Exception):
        import inspect

        import aiosqlite.core

        lines, first = inspect.getsourcelines(aiosqlite.core._connection_worker_thread)
        for offset, text in enumerate(lines):
            if "tx.get()" in text:
                idle.add(f"_connection_worker_thread (aiosqlite/core.py:{first + offset})")
    return idle


def _path(frame: str) -> str:
    return frame.partition(" (")[2].rstrip(")").rsplit(":", 1)[0]


def _function(frame: str) -> str:
    name, _, _ = frame.partition(" (")
    return f"{name} ({_path(frame)})"


def _library(frame: str) -> str:
    path = _path(frame)
    if path.startswith(PROJECT_DIRS):
        return "switchboard"
    for name, marker in LIBRARIES:
        if path.startswith(marker) or "/" + marker in path:
            return name
    return "other"


def summarize_profiles(directory: Path, backend: str) -> dict[str, Any]:
    return {p.stem: summarize_profile(p) for p in sorted(directory.glob(f"{backend}-*.txt"))}


def summarize_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Where the hub's active CPU samples went: by thread, by library (self and inclusive),
    by leaf function, and inclusive time of the project's own functions."""
    idle = _idle_frames()
    total = idle_samples = 0
    threads: Counter[str] = Counter()
    self_lib: Counter[str] = Counter()
    incl_lib: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames, count = stack.split(";"), int(count_text)
        leaf = frames[-1]
        if leaf in idle or _function(leaf) in idle:
            idle_samples += count
            continue
        total += count
        # aiosqlite runs each connection in a thread; SQLAlchemy's greenlets have their own
        # stacks without the event loop's frames but run on the event loop's thread.
        threads[
            "driver threads" if frames[0].startswith("Thread._bootstrap") else "event loop"
        ] += count
        self_lib[_library(leaf)] += count
        leaves[_function(leaf)] += count
        for library in {_library(f) for f in frames}:
            incl_lib[library] += count
        for function in {_function(f) for f in frames if _library(f) == "switchboard"}:
            inclusive[function] += count
    if not total:
        return {"samples": 0}

    def share(counter: Counter[str], limit: int = top) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(limit)]

    return {
        "samples": total,
        "idle_samples": idle_samples,
        "threads": share(threads),
        "self_by_library": share(self_lib),
        "inclusive_by_library": share(incl_lib),
        "self_by_function": share(leaves),
        "inclusive_switchboard_functions": share(inclusive, 25),
    }


# --- output ----------------------------------------------------------------------


def summarize_cprofiles(directory: Path, backend: str, done: dict[str, int]) -> dict[str, Any]:
    return {
        p.stem: summarize_cprofile(p, done.get(p.stem, 0))
        for p in sorted(directory.glob(f"{backend}-*.prof"))
        if p.stem in done  # not the warm-up
    }


def summarize_cprofile(path: Path, done: int, top: int = 25) -> dict[str, Any]:
    """The event loop thread's CPU time per message (µs), by function: self time (where
    the CPU went) and inclusive time (what each step of the path costs, callees included).
    cProfile's own overhead inflates every figure, most for code making many small calls;
    read them as shares of the total."""
    import pstats

    stats = pstats.Stats(str(path))
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values())
    per = 1e6 / done if done else 0.0

    def name(key: tuple[str, int, str]) -> str:
        filename, line, function = key
        short = filename
        for marker in ("site-packages/", "python3.11/", str(ROOT) + "/"):
            if marker in filename:
                short = filename.split(marker, 1)[1]
        return f"{function} ({short}:{line})"

    def rows(index: int) -> list[tuple[str, float, float]]:
        ordered = sorted(table.items(), key=lambda item: item[1][index], reverse=True)
        return [
            (name(key), round(entry[index] * per, 1), round(100 * entry[index] / total, 1))
            for key, entry in ordered[:top]
        ]

    by_library: Counter[str] = Counter()
    for key, entry in table.items():
        by_library[_library(name(key))] += entry[2]
    return {
        "messages": done,
        "loop_cpu_us_per_msg": round(total * per, 1),
        "self_by_library": [
            (k, round(v * per, 1), round(100 * v / total, 1)) for k, v in by_library.most_common()
        ],
        "self": rows(2),
        "inclusive": rows(3),
    }


def _fmt(value: Any, width: int, digits: int = 1) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, float):
        text = f"{value:,.{digits}f}"
    else:
        text = str(value)
    return text.rjust(width)


def render(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"Switchboard intake benchmark, {report['date']}",
        f"machine: {machine['cores']} cores ({machine['cpu']}), Python {machine['python']},"
        f" load average at start {' '.join(machine['loadavg'] or [])}",
        f"code: {report['code']}; hub: {report['hub']}"
        " in its own process; this load generator, PostgreSQL and Redis share the same cores",
        "",
    ]
    header = (
        f"{'backend':8} {'scenario':20} {'conc':>4} {'n':>5} {'rate/s':>8} {'p50 ms':>8}"
        f" {'p99 ms':>8} {'ratio':>6} {'hub ms/msg':>10} | {'hub':>4} {'load':>4} {'pg':>4}"
        f" {'redis':>5} {'other':>5} {'box':>4}"
    )
    lines += [header, "-" * len(header)]
    for result in report["results"]:
        backend = result["backend"]
        for row in result["baseline"] + result["intake"] + result["reply"]:
            name = {"intake": "intake (send→ack)", "reply": "reply (POST→sent)"}.get(
                row["scenario"], row["scenario"]
            )
            cpu = row["cpu"]
            hub = row["scenario"] in ("intake", "reply")
            lines.append(
                f"{backend:8} {name:20} {row['concurrency']:>4} {row['n']:>5}"
                f" {_fmt(row['rate'], 8)} {_fmt(row['p50_ms'], 8)} {_fmt(row['p99_ms'], 8)}"
                f" {_fmt(row.get('ratio_vs_baseline'), 6, 3)}"
                f" {_fmt(row.get('server_cpu_ms_per_msg'), 10, 2)} |"
                f" {_fmt(cpu['server'] if hub else None, 4, 0)} {_fmt(cpu['client'], 4, 0)}"
                f" {_fmt(cpu['postgres'], 4, 0)} {_fmt(cpu['redis'], 5, 0)}"
                f" {_fmt(cpu['other'], 5, 0)} {_fmt(cpu['machine'], 4, 0)}"
            )
            if row["scenario"] == "reply":
                for label, key in (("↳ POST→HTTP 201", "post"), ("↳ POST→widget", "widget")):
                    lines.append(
                        f"{'':8} {label:20} {'':>4} {'':>5} {'':>8}"
                        f" {_fmt(row[key + '_p50_ms'], 8)} {_fmt(row[key + '_p99_ms'], 8)}"
                    )
        per_msg = [
            f"{r['scenario']}×{r['concurrency']} {r['db_transactions_per_msg']}"
            for r in result["intake"] + result["reply"]
            if r.get("db_transactions_per_msg") is not None
        ]
        if per_msg:
            lines.append(f"{'':8} database transactions per message: {', '.join(per_msg)}")
        opened = [
            f"{r['scenario']}×{r['concurrency']} {r['db_connections_opened']}"
            for r in result["intake"] + result["reply"]
            if r.get("db_connections_opened") is not None
        ]
        if opened:
            lines.append(
                f"{'':8} new database connections during the timed part: {', '.join(opened)}"
            )
        split_cpu = [
            f"{r['scenario']}×{r['concurrency']} {r['server_loop_cpu_ms_per_msg']}"
            f" + {max(0.0, round(r['server_cpu_ms_per_msg'] - r['server_loop_cpu_ms_per_msg'], 2))}"
            for r in result["intake"] + result["reply"]
            if r.get("server_cpu_ms_per_msg") is not None
        ]
        lines.append(
            f"{'':8} hub CPU ms per message, event-loop thread + driver threads: "
            + ", ".join(split_cpu)
        )
        lines.append(f"{'':8} stored afterwards: {result['stored']}")
        if result.get("socket_limits_lifted") is False:
            lines.append(f"{'':8} ! the widget's per-socket send limits were NOT lifted")
        for r in result["intake"] + result["reply"]:
            if r["lost"]:
                lines.append(f"{'':8} ! {r['scenario']}×{r['concurrency']} lost: {r['lost']}")
            if r.get("error_frames"):
                lines.append(
                    f"{'':8} ! {r['scenario']}×{r['concurrency']} error frames: {r['error_frames']}"
                )
            if r.get("inbox_resyncs"):
                lines.append(
                    f"{'':8} ! {r['scenario']}×{r['concurrency']}"
                    f" inbox resyncs: {r['inbox_resyncs']}"
                )
        if result.get("server_log_problems"):
            lines.append(f"{'':8} ! hub log has {result['server_log_problems']} error line(s):")
            lines += [f"{'':10}{t}" for t in result.get("server_log_tail", "").splitlines()]
        lines.append("")
    for result in report["results"]:
        if result["backend"] == "postgres":
            for row in result["intake"]:
                lines.append(
                    f"target (PostgreSQL intake ≥ 1,000 msg/s and ≥ 0.25 × raw INSERT rate),"
                    f" {row['concurrency']} customer(s): {row['rate']:,.0f} msg/s,"
                    f" ratio {row.get('ratio_vs_baseline')}"
                )
    lines += [
        "",
        "rate: messages, rows or replies per second over the timed part; latency percentiles are"
        " nearest-rank",
        "ratio: rate / the same run's baseline rate at the same concurrency through the hub's own"
        " driver (asyncpg; aiosqlite)",
        "hub ms/msg: CPU time of the hub process per message (from /proc: schedstat and stat)",
        "CPU columns: % of one core over the timed part (hub = server process, load = this process,"
        " pg = all postgres processes,",
        "  other = everything else on the machine, box = whole machine; 200 = both cores busy)",
    ]
    for result in report["results"]:
        for name, summary in result.get("profile", {}).items():
            if not summary.get("samples"):
                continue
            lines += [
                "",
                f"profile {name}: {summary['samples']} active samples of the hub"
                f" ({summary['idle_samples']} idle samples dropped)",
                "  threads: " + ", ".join(f"{k} {v}%" for k, v in summary["threads"]),
                "  self time by library: "
                + ", ".join(f"{k} {v}%" for k, v in summary["self_by_library"]),
                "  inclusive by library: "
                + ", ".join(f"{k} {v}%" for k, v in summary["inclusive_by_library"]),
                "  hottest leaf functions:",
            ]
            lines += [f"    {v:5.1f}%  {k}" for k, v in summary["self_by_function"][:10]]
            lines.append("  inclusive time in switchboard code:")
            lines += [f"    {v:5.1f}%  {k}" for k, v in summary["inclusive_switchboard_functions"]]
        for name, summary in result.get("cprofile", {}).items():
            lines += [
                "",
                f"cprofile {name}: {summary['loop_cpu_us_per_msg']} µs of event-loop CPU per"
                f" message under cProfile ({summary['messages']} messages)",
                "  self time by library (µs/msg, %): "
                + ", ".join(f"{k} {us} ({pc}%)" for k, us, pc in summary["self_by_library"]),
                "  self time (µs/msg, %):",
            ]
            lines += [f"    {us:7.1f} {pc:5.1f}%  {k}" for k, us, pc in summary["self"]]
            lines.append("  inclusive (µs/msg, %):")
            lines += [f"    {us:7.1f} {pc:5.1f}%  {k}" for k, us, pc in summary["inclusive"]]
    return "\n".join(lines)


def code_version() -> str:
    """The commit measured, and whether the work tree differed from it (bench/ aside)."""
    import subprocess

    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    changed = [line[3:] for line in status if not line[3:].startswith("bench/")]
    return rev + (f" + uncommitted changes in {len(changed)} file(s)" if changed else "")


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3]
        if Path("/proc/loadavg").exists()
        else None,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.intake", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--messages", type=int, default=2000, help="timed intake messages per scenario"
    )
    parser.add_argument(
        "--replies", type=int, default=None, help="timed replies per scenario (default: messages)"
    )
    parser.add_argument(
        "--baseline-rows", type=int, default=1_000_000, help="most rows per baseline run"
    )
    parser.add_argument(
        "--baseline-seconds",
        type=float,
        default=3.0,
        help="length of each baseline run (default 3 s)",
    )
    parser.add_argument(
        "--concurrency", default="1,50", help="comma-separated customers/conversations/connections"
    )
    parser.add_argument(
        "--scenarios", default="intake,reply", help="which hub scenarios to run (default: both)"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=15.0,
        help="stop each timed part after this many seconds, done or not (default 15)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of the table"
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="attach py-spy to the hub per scenario; write stacks to DIR",
    )
    parser.add_argument(
        "--cprofile",
        metavar="DIR",
        help="cProfile the hub's event loop (CPU clock) during each timed part; stats to DIR",
    )
    parser.add_argument(
        "--hub-loop",
        choices=("uvloop", "asyncio"),
        help="the hub's event loop (default: what `switchboard serve` runs on, uvloop where "
        "installed); this process, load and baseline, runs on --client-loop",
    )
    parser.add_argument(
        "--client-loop",
        choices=("uvloop", "asyncio"),
        default="asyncio",
        help="this process's event loop: the load generator's and the baseline's (default asyncio)",
    )
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="with --profile: sample only the thread holding the GIL (Python CPU time)",
    )
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.scenarios = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    if not args.scenarios <= {"intake", "reply"}:
        parser.error("--scenarios takes intake, reply or both")
    if any(c < 1 or c > 50 for c in args.concurrency):
        parser.error("concurrency must be 1..50 (the hub allows 50 widget sockets per address)")
    args.messages = max(args.messages, max(args.concurrency))
    args.replies = max(args.replies or args.messages, max(args.concurrency))
    if args.profile:
        args.profile = Path(args.profile).resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.cprofile:
        args.cprofile = Path(args.cprofile).resolve()
        args.cprofile.mkdir(parents=True, exist_ok=True)
    return args


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    if args.backend != "sqlite":
        _require_loopback(PG_ADMIN_DSN)
        _require_loopback(REDIS_URL)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "code": code_version(),
        "hub": os.environ.get("SWITCHBOARD_BENCH_SERVER", "bench._server"),
        "settings": {
            "messages": args.messages,
            "replies": args.replies,
            "baseline_rows": args.baseline_rows,
            "baseline_seconds": args.baseline_seconds,
            "concurrency": args.concurrency,
            "max_seconds": args.max_seconds,
            "hub_loop": args.hub_loop or "default",
            "client_loop": args.client_loop,
        },
        "results": [],
    }
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    started = time.perf_counter()
    for backend in backends:
        report["results"].append(await run_backend(backend, args, say))
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    BUDGET["seconds"] = args.max_seconds
    BUDGET["baseline"] = args.baseline_seconds
    if args.profile_gil:
        PROFILE_ARGS.append("--gil")
    if args.cprofile:
        CPROFILE["dir"] = args.cprofile
    if args.hub_loop:
        HUB_LOOP.append(args.hub_loop)
    from switchboard import loop

    report = loop.run(main_async(args), args.client_loop)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
        print(f"\n(run took {report['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
