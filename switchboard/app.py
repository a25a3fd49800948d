"""`create_app(settings)`: the one place where the hub's collaborators are built."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiohttp_jinja2
import jinja2
import redis.asyncio as aioredis
from aiohttp import web

from channels.base import ChannelAdapter
from channels.webchat.adapter import WebchatAdapter
from channels.webchat.tokens import VisitorTokens
from conversations.intake import IntakeBatcher
from conversations.outbox import OutboxPolicy, OutboxWorker
from switchboard.appkeys import (
    ADAPTERS,
    BUS,
    DB,
    HTTP,
    INTAKE,
    LIMITER,
    OUTBOX,
    SETTINGS,
    VISITOR_TOKENS,
)
from switchboard.bus import create_bus
from switchboard.db import check_connection, create_engine, create_sessionmaker
from switchboard.inboxes import do_ensure_default_inboxes
from switchboard.ratelimit import LocalRateLimiter, RedisRateLimiter
from switchboard.settings import Settings
from switchboard.tx import Database
from web import auth, demo, inbox, sockets, widget
from web.api import create_api_app
from web.middleware import error_middleware, security_headers

log = logging.getLogger(__name__)
WEB = Path(__file__).resolve().parent.parent / "web"


def build_adapters(settings: Settings) -> dict[str, ChannelAdapter]:
    """The channel registry, explicit: one adapter per configured kind."""
    return {WebchatAdapter.kind: WebchatAdapter()}


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
    await db.run(do_ensure_default_inboxes)
    intake = IntakeBatcher(db)
    intake.start()
    app[INTAKE] = intake
    yield
    await intake.close()
    await engine.dispose()


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        app[HTTP] = session
        yield


async def _workers_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    worker = OutboxWorker(
        app[DB], app[ADAPTERS], OutboxPolicy(max_attempts=settings.outbox_max_attempts)
    )
    app[OUTBOX] = worker
    task = (
        asyncio.create_task(worker.run_forever(), name="outbox-worker")
        if settings.run_workers
        else None
    )
    yield
    if task is not None:
        worker.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout=10)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app(settings: Settings, *, demo_page: bool = False) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, security_headers, auth.auth_middleware],
        client_max_size=settings.upload_max_bytes + 256 * 1024,
    )
    app[SETTINGS] = settings
    app[ADAPTERS] = build_adapters(settings)
    app[VISITOR_TOKENS] = VisitorTokens(settings.secret_key)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(WEB / "templates")),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app.cleanup_ctx.extend([_bus_ctx, _database_ctx, _http_ctx, _workers_ctx])
    sockets.setup(app)
    auth.setup(app)
    inbox.setup(app)
    widget.setup(app)
    if demo_page:
        demo.setup(app)
    app.add_subapp("/api/v1", create_api_app())
    app.router.add_static("/static", WEB / "static")
    return app
