"""Typed keys for what `create_app` puts on the application: the only wiring point."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from bot.runtime import BotRuntime
from channels.email.imap import ImapPoller
from channels.email.ingress import SmtpIngress
from channels.webchat.tokens import VisitorTokens
from conversations.filing import DeliveryFiler
from conversations.inbound import InboundProcessor
from conversations.intake import IntakeBatcher
from conversations.outbox import OutboxWorker
from switchboard.adapters import AdapterRegistry
from switchboard.bus import EventBus
from switchboard.ratelimit import RateLimiter
from switchboard.settings import Settings
from switchboard.tx import Database

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
BUS = web.AppKey("bus", EventBus)
REGISTRY = web.AppKey("registry", AdapterRegistry)
VISITOR_TOKENS = web.AppKey("visitor_tokens", VisitorTokens)
LIMITER = web.AppKey("limiter", RateLimiter)
HTTP = web.AppKey("http", aiohttp.ClientSession)
OUTBOX = web.AppKey("outbox", OutboxWorker)
INTAKE = web.AppKey("intake", IntakeBatcher)
INBOUND = web.AppKey("inbound", InboundProcessor)
SMTP_INGRESS = web.AppKey("smtp_ingress", SmtpIngress)
IMAP_POLLER = web.AppKey("imap_poller", ImapPoller)
FILER = web.AppKey("filer", DeliveryFiler)
BOT_RUNTIME = web.AppKey("bot_runtime", BotRuntime)
