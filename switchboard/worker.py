"""`switchboard worker`: background delivery without the HTTP server.

`serve` runs the same workers in-process; start extra `worker` processes to scale out.
Work is claimed from the database, so any number can run side by side.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from bot.runtime import BotRuntime, create_runtime, start_for_hub
from bot.worker import BotWorker
from routing.worker import RoutingPolicy, RoutingWorker
from switchboard.app import build_imap_poller, build_registry, build_workers, stop_tasks
from switchboard.bus import create_bus
from switchboard.db import check_connection, create_engine, create_sessionmaker
from switchboard.settings import Settings
from switchboard.tx import Database
from tickets.csat import CsatWorker
from tickets.followup import FollowUpPolicy, TicketFollowUp
from tickets.sla_worker import SlaWorker, SlaWorkerPolicy

log = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> None:
    bus = create_bus(settings.redis_url, settings.redis_prefix)
    await bus.start()
    engine = create_engine(settings.database_url)
    bot_runtime: BotRuntime | None = None
    try:
        await check_connection(engine)
        db = Database(engine, create_sessionmaker(engine), bus)
        bot_runtime = create_runtime(settings, db)
        await start_for_hub(bot_runtime, db)
        registry = build_registry(settings, db)
        outbox, inbound = build_workers(settings, db, registry)
        imap = await build_imap_poller(settings, db, registry)
        bot = BotWorker(db, bot_runtime)
        follow_up = TicketFollowUp(db, FollowUpPolicy.from_settings(settings))
        routing = RoutingWorker(db, RoutingPolicy.from_settings(settings))
        sla_worker = SlaWorker(db, SlaWorkerPolicy.from_settings(settings))
        csat = CsatWorker.from_settings(db, settings)
        tasks = [
            asyncio.create_task(outbox.run_forever(), name="outbox-worker"),
            asyncio.create_task(inbound.run_forever(), name="inbound-processor"),
            asyncio.create_task(bot.run_forever(), name="bot-worker"),
            asyncio.create_task(follow_up.run_forever(), name="ticket-follow-up"),
            asyncio.create_task(routing.run_forever(), name="routing-worker"),
            asyncio.create_task(sla_worker.run_forever(), name="sla-worker"),
            asyncio.create_task(csat.run_forever(), name="csat-worker"),
        ]
        if imap is not None:
            tasks.append(asyncio.create_task(imap.run_forever(), name="imap-poller"))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("worker running")
        await stop.wait()
        outbox.stop()
        inbound.stop()
        bot.stop()
        follow_up.stop()
        routing.stop()
        sla_worker.stop()
        csat.stop()
        if imap is not None:
            imap.stop()
        await stop_tasks(tasks)
        await registry.aclose()
    finally:
        if bot_runtime is not None:
            await bot_runtime.close()
        await engine.dispose()
        await bus.close()
