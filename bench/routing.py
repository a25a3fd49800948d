"""Routing benchmarks on PostgreSQL.

    nice .venv/bin/python -m bench.routing [--part assignment] [--agents 1000]
        [--tickets 100000] [--waiting 10000] [--max-seconds 30] [--json]

Assignment (`assignment_part`): a fresh database seeded with `--agents` agents (online,
in 10 queues of equal size, round-robin, least-loaded and skills in turn) and
`--tickets` open tickets, of which `--waiting` wait unassigned in the queues and the rest
are already assigned (the load the strategies count). The timed part runs the routing
worker's own pass (`RoutingWorker.run_once`: presence sweep, then `do_assign_queue` per
queue, 100 tickets per transaction) until every waiting ticket is assigned or
`--max-seconds` pass; one worker, then two workers on two engines at once. A decision is
one ticket assigned (row locks, capacity check, the assignee change with its timeline
entry and its `ticket.updated` event).

Baseline, same run and database: single-row `UPDATE … WHERE id = $1` transactions
through asyncpg (autocommitted, one connection) on a scratch table of 100,000 rows, for
3 s. Ratio = decisions/s ÷ baseline updates/s. It prints figures and never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

QUEUES = 10
STRATEGIES = ("round_robin", "least_loaded", "skills")


async def _seed(dsn: str, agents: int, tickets: int, waiting: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        per_agent_capacity = (tickets - waiting) // agents + waiting // agents + 10
        await conn.execute(
            """
            INSERT INTO users (id, email, name, role, password_hash, active, locale, timezone,
                               created_at)
            SELECT g, 'agent' || g || '@bench.invalid', 'Agent ' || g, 'agent', 'x', true,
                   'en', 'UTC', now()
            FROM generate_series(1, $1) g
            """,
            agents,
        )
        await conn.execute(
            """
            INSERT INTO agent_profiles (user_id, capacity, skills, languages, presence, wants,
                                        presence_changed_at)
            SELECT g, $2, '["billing"]'::json,
                   CASE WHEN g % 2 = 0 THEN '["en"]'::json ELSE '["de", "en"]'::json END,
                   'online', 'online', now()
            FROM generate_series(1, $1) g
            """,
            agents,
            per_agent_capacity,
        )
        # Each agent has a live inbox socket (its row refreshed, as the socket's heartbeat
        # does): otherwise the worker's presence sweep would take them offline.
        await conn.execute(
            """
            INSERT INTO agent_sockets (id, user_id, opened_at, seen_at)
            SELECT 'bench' || g, g, now(), now() + interval '1 day'
            FROM generate_series(1, $1) g
            """,
            agents,
        )
        for q in range(1, QUEUES + 1):
            await conn.execute(
                "INSERT INTO queues (id, name, strategy, created_at, updated_at) "
                "VALUES ($1, $2, $3, now(), now())",
                q,
                f"queue {q}",
                STRATEGIES[(q - 1) % len(STRATEGIES)],
            )
        await conn.execute(
            """
            INSERT INTO queue_members (queue_id, user_id, added_at)
            SELECT (g % $2) + 1, g, now() FROM generate_series(1, $1) g
            """,
            agents,
            QUEUES,
        )
        await conn.execute("INSERT INTO customers (id, name, created_at) VALUES (1, 'c', now())")
        # Assigned tickets first (each to an agent of its queue), then the waiting ones.
        await conn.execute(
            """
            INSERT INTO tickets (customer_id, status, priority, source, queue_id,
                                 assignee_user_id, created_at, updated_at)
            SELECT 1, 'open', (ARRAY['low','normal','high','urgent'])[1 + (g * 7) % 4],
                   'inbox', (g % $2) + 1, g % $3 + 1, now(), now()
            FROM generate_series(1, $1) g
            """,
            tickets - waiting,
            QUEUES,
            agents,
        )
        # g % agents + 1 is in queue (g % agents % QUEUES) + 1; agents is a multiple of
        # QUEUES here, so that is (g % QUEUES) + 1: the assignee is a member of the queue.
        await conn.execute(
            """
            INSERT INTO tickets (customer_id, status, priority, source, queue_id, created_at,
                                 updated_at)
            SELECT 1, 'new', (ARRAY['low','normal','high','urgent'])[1 + (g * 3) % 4],
                   'inbox', (g % $2) + 1, now(), now()
            FROM generate_series(1, $1) g
            """,
            waiting,
            QUEUES,
        )
        await conn.execute(
            """
            INSERT INTO ticket_routing (ticket_id, language, skills, routed_at)
            SELECT id, CASE WHEN id % 3 = 0 THEN 'de' ELSE 'en' END,
                   CASE WHEN id % 5 = 0 THEN '["billing"]'::json ELSE '[]'::json END, now()
            FROM tickets WHERE assignee_user_id IS NULL
            """
        )
        for table in ("users", "queues", "tickets", "customers"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 (constants)
                f"(SELECT max(id) FROM {table}))"
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _baseline(dsn: str, seconds: float) -> float:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE bench_baseline (id int PRIMARY KEY, v int);"
            "INSERT INTO bench_baseline SELECT g, 0 FROM generate_series(1, 100000) g"
        )
        rng = random.Random(1)
        done = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            await conn.execute(
                "UPDATE bench_baseline SET v = v + 1 WHERE id = $1", rng.randint(1, 100000)
            )
            done += 1
        return done / (time.perf_counter() - start)
    finally:
        await conn.close()


async def _waiting(dsn: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        value: int = await conn.fetchval(
            "SELECT count(*) FROM tickets WHERE assignee_user_id IS NULL AND queue_id IS NOT NULL"
        )
        return value
    finally:
        await conn.close()


async def _over_capacity(dsn: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        value: int = await conn.fetchval(
            """
            SELECT count(*) FROM (
              SELECT t.assignee_user_id, count(*) AS n, max(p.capacity) AS cap
              FROM tickets t JOIN agent_profiles p ON p.user_id = t.assignee_user_id
              WHERE t.status IN ('new', 'open', 'pending', 'on_hold')
              GROUP BY t.assignee_user_id) x
            WHERE n > cap
            """
        )
        return value
    finally:
        await conn.close()


async def _assign_for(url: str, workers: int, seconds: float) -> tuple[int, float]:
    """Run `workers` routing workers (one engine each) until nothing is left or time is up;
    (tickets assigned, elapsed seconds)."""
    from routing.worker import RoutingWorker
    from switchboard.bus import InProcessBus
    from switchboard.db import create_engine, create_sessionmaker
    from switchboard.tx import Database

    engines = [create_engine(url, pool_size=4) for _ in range(workers)]
    runners = [RoutingWorker(Database(e, create_sessionmaker(e), InProcessBus())) for e in engines]
    total = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def loop(worker: RoutingWorker) -> None:
        nonlocal total
        while time.perf_counter() < deadline:
            done = await worker.run_once()
            total += done
            if not done:
                return

    try:
        await asyncio.gather(*(loop(r) for r in runners))
    finally:
        for engine in engines:
            await engine.dispose()
    return total, time.perf_counter() - start


async def assignment_part(args: argparse.Namespace) -> dict[str, Any]:
    from bench.intake import fresh_target

    out: dict[str, Any] = {
        "agents": args.agents,
        "open_tickets": args.tickets,
        "waiting": args.waiting,
        "queues": QUEUES,
    }
    async with fresh_target("postgres") as target:
        started = time.perf_counter()
        await _seed(target.raw_dsn, args.agents, args.tickets, args.waiting)
        out["seed_s"] = round(time.perf_counter() - started, 1)
        out["baseline_updates_per_s"] = round(await _baseline(target.raw_dsn, 3.0), 1)
        half = args.waiting // 2
        for workers in (1, 2):
            before = await _waiting(target.raw_dsn)
            assigned, elapsed = await _assign_for(target.app_url, workers, args.max_seconds)
            rate = assigned / elapsed if elapsed else 0.0
            out[f"workers_{workers}"] = {
                "waiting_before": before,
                "assigned": assigned,
                "seconds": round(elapsed, 2),
                "decisions_per_s": round(rate, 1),
                "ratio_to_baseline": round(rate / out["baseline_updates_per_s"], 3),
            }
            if workers == 1 and before - assigned < half:
                break  # nothing left for the two-worker run
        out["agents_over_capacity"] = await _over_capacity(target.raw_dsn)
    return out


PARTS = {"assignment": assignment_part}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=sorted(PARTS), action="append")
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    for part in args.part or sorted(PARTS):
        results[part] = asyncio.run(PARTS[part](args))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for part, figures in results.items():
        print(f"== {part}")
        for key, value in figures.items():
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
