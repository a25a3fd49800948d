"""`create_app(settings)`: the one place where the hub's collaborators are built."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import aiohttp_jinja2
import jinja2
import redis.asyncio as aioredis
from aiohttp import web

from bot.runtime import create_runtime, start_for_hub
from bot.worker import BotWorker
from channels.email.imap import ImapPolicy, ImapPoller, has_imap_inboxes
from channels.email.ingress import SmtpIngress
from channels.webchat.tokens import VisitorTokens
from conversations.filing import DeliveryFiler
from conversations.inbound import InboundPolicy, InboundProcessor
from conversations.intake import IntakeBatcher
from conversations.outbox import OutboxPolicy, OutboxWorker
from routing.worker import RoutingPolicy, RoutingWorker
from switchboard.adapters import AdapterRegistry
from switchboard.appkeys import (
    BOT_RUNTIME,
    BUS,
    DB,
    FILER,
    HTTP,
    IMAP_POLLER,
    INBOUND,
    INTAKE,
    LIMITER,
    OUTBOX,
    REGISTRY,
    SETTINGS,
    SMTP_INGRESS,
    VISITOR_TOKENS,
)
from switchboard.bus import create_bus
from switchboard.crypto import CredentialBox
from switchboard.db import check_connection, create_engine, create_sessionmaker
from switchboard.inboxes import do_ensure_default_inboxes
from switchboard.ratelimit import LocalRateLimiter, RedisRateLimiter
from switchboard.settings import Settings
from switchboard.tx import Database
from switchboard.wiring import adapter_factories, channel_hooks
from tickets.csat import CsatWorker
from tickets.followup import FollowUpPolicy, TicketFollowUp
from tickets.sla_worker import SlaWorker, SlaWorkerPolicy
from web import (
    admin,
    auth,
    csat,
    demo,
    i18n,
    inbox,
    preferences,
    slack_events,
    sockets,
    supervisor,
    webhooks,
    widget,
)
from web.api import create_api_app
from web.middleware import error_middleware, security_headers

log = logging.getLogger(__name__)
WEB = Path(__file__).resolve().parent.parent / "web"


def build_registry(settings: Settings, db: Database) -> AdapterRegistry:
    return AdapterRegistry(
        db, CredentialBox(settings.secret_key), adapter_factories(), settings.public_url
    )


def build_workers(
    settings: Settings, db: Database, registry: AdapterRegistry
) -> tuple[OutboxWorker, InboundProcessor]:
    hooks = channel_hooks()
    outbox = OutboxWorker(
        db, registry, OutboxPolicy(max_attempts=settings.outbox_max_attempts), hooks=hooks
    )
    inbound = InboundProcessor(
        db,
        registry,
        hooks=hooks,
        policy=InboundPolicy(reorder_hold=timedelta(seconds=settings.inbound_reorder_hold)),
    )
    return outbox, inbound


async def build_imap_poller(
    settings: Settings, db: Database, registry: AdapterRegistry
) -> ImapPoller | None:
    """The IMAP poller, if the settings name an IMAP host or an email inbox reads a
    mailbox (checked at start; each pass then reads the inbox rows afresh). A `worker`
    may start before `serve` has made the default inboxes, hence the settings."""
    if not settings.imap_host and not await has_imap_inboxes(db):
        return None
    return ImapPoller(db, registry.box, registry, ImapPolicy(interval=settings.imap_poll_interval))


def build_smtp_ingress(settings: Settings, db: Database, registry: AdapterRegistry) -> SmtpIngress:
    assert settings.smtp_ingress_port is not None
    return SmtpIngress(
        db,
        registry,
        host=settings.host,
        port=settings.smtp_ingress_port,
        server_name=urlsplit(settings.public_url).hostname or "switchboard",
    )


async def _bus_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    bus = create_bus(settings.redis_url, settings.redis_prefix)
    await bus.start()
    app[BUS] = bus
    if settings.redis_url:
        client = aioredis.from_url(settings.redis_url)
        app[LIMITER] = RedisRateLimiter(client, settings.redis_prefix)
    else:
        client = None
        app[LIMITER] = LocalRateLimiter()
    yield
    await bus.close()
    if client is not None:
        await client.aclose()


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = create_engine(settings.database_url)
    await check_connection(engine)
    db = Database(engine, create_sessionmaker(engine), app[BUS])
    app[DB] = db
    box = CredentialBox(settings.secret_key)
    await db.run(lambda s: do_ensure_default_inboxes(s, settings, box))
    app[REGISTRY] = build_registry(settings, db)
    intake = IntakeBatcher(db)
    intake.start()
    app[INTAKE] = intake
    filer = DeliveryFiler(db)
    filer.start()
    app[FILER] = filer
    yield
    await filer.close()
    await intake.close()
    await app[REGISTRY].aclose()
    await engine.dispose()


async def _bot_ctx(app: web.Application) -> AsyncIterator[None]:
    # Every process keeps its own model in step with the published knowledge base; the
    # first training runs in the background (once an inbox has the bot on), and
    # `current()` waits for it.
    runtime = create_runtime(app[SETTINGS], app[DB])
    await start_for_hub(runtime, app[DB])
    app[BOT_RUNTIME] = runtime
    yield
    await runtime.close()


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        app[HTTP] = session
        yield


async def _workers_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    outbox, inbound = build_workers(settings, app[DB], app[REGISTRY])
    app[OUTBOX] = outbox
    app[INBOUND] = inbound
    # The SMTP ingress is an edge like the webhooks: it only files, so it runs whether
    # or not this process also runs the workers. Bound first: a taken port stops the
    # start before any worker task exists.
    ingress = None
    if settings.smtp_ingress_port is not None:
        ingress = build_smtp_ingress(settings, app[DB], app[REGISTRY])
        await ingress.start()
        app[SMTP_INGRESS] = ingress
    tasks = []
    imap = None
    bot = BotWorker(app[DB], app[BOT_RUNTIME])
    follow_up = TicketFollowUp(app[DB], FollowUpPolicy.from_settings(settings))
    routing = RoutingWorker(app[DB], RoutingPolicy.from_settings(settings))
    sla_worker = SlaWorker(app[DB], SlaWorkerPolicy.from_settings(settings))
    csat = CsatWorker.from_settings(app[DB], settings)
    if settings.run_workers:
        imap = await build_imap_poller(settings, app[DB], app[REGISTRY])
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
            app[IMAP_POLLER] = imap
            tasks.append(asyncio.create_task(imap.run_forever(), name="imap-poller"))
    yield
    if ingress is not None:
        await ingress.stop()
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


async def stop_tasks(tasks: list[asyncio.Task[None]], grace: float = 10.0) -> None:
    """Let each worker finish its pass (never mid-transaction), then cancel stragglers.
    One grace period for them all, not one each in turn: a stop never takes longer than
    the slowest pass (or `grace`)."""
    if not tasks:
        return
    await asyncio.wait(tasks, timeout=grace)
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for task, result in zip(tasks, results, strict=True):
        if isinstance(result, Exception):
            # Said, not raised: the rest of the shutdown (connections, files) still runs.
            log.error("%s had failed", task.get_name(), exc_info=result)


def create_app(settings: Settings, *, demo_page: bool = False) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth.auth_middleware],
        client_max_size=settings.upload_max_bytes + 256 * 1024,
    )
    app.on_response_prepare.append(security_headers)  # every answer, errors and streams too
    app[SETTINGS] = settings
    app[VISITOR_TOKENS] = VisitorTokens(settings.secret_key)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(WEB / "templates")),
        autoescape=jinja2.select_autoescape(default=True),
        context_processors=[i18n.context_processor],
    )
    app.cleanup_ctx.extend([_bus_ctx, _database_ctx, _bot_ctx, _http_ctx, _workers_ctx])
    sockets.setup(app)
    auth.setup(app)
    inbox.setup(app)
    preferences.setup(app)
    supervisor.setup(app)
    admin.setup(app)
    widget.setup(app)
    csat.setup_pages(app)  # the public rating page (signed links, no login)
    slack_events.setup(app)  # before the generic /webhooks/{kind}/{key}
    webhooks.setup(app)
    if demo_page:
        demo.setup(app)
    app.add_subapp("/api/v1", create_api_app())
    app.router.add_static("/static", WEB / "static")
    return app
