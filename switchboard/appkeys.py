"""Typed keys for what `create_app` puts on the application: the only wiring point."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from aiohttp import web

from channels.base import ChannelAdapter
from channels.webchat.tokens import VisitorTokens
from conversations.intake import IntakeBatcher
from conversations.outbox import OutboxWorker
from switchboard.bus import EventBus
from switchboard.ratelimit import RateLimiter
from switchboard.settings import Settings
from switchboard.tx import Database

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
BUS = web.AppKey("bus", EventBus)
ADAPTERS = web.AppKey("adapters", Mapping[str, ChannelAdapter])
VISITOR_TOKENS = web.AppKey("visitor_tokens", VisitorTokens)
LIMITER = web.AppKey("limiter", RateLimiter)
HTTP = web.AppKey("http", aiohttp.ClientSession)
OUTBOX = web.AppKey("outbox", OutboxWorker)
INTAKE = web.AppKey("intake", IntakeBatcher)
