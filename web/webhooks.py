"""`POST /webhooks/<kind>/<inbox key>`: verify, file, answer — nothing more.

The order matters: the body is read with a hard cap, the adapter verifies the raw bytes
before anything parses them, the parse only decides whether there is anything to keep,
and the delivery is committed before the 200. Processing (downloads, intake) happens in
the inbound processor, so the channel's deadline (Slack: 3 s) is never at risk.
"""

from __future__ import annotations

import logging

from aiohttp import web

from channels.base import ChannelAdapter, Ignored, InboxSetup, RawInbound, WebhookRejected
from switchboard.appkeys import FILER, REGISTRY
from switchboard.db import utcnow
from web.bodies import read_capped

log = logging.getLogger(__name__)

# Telegram updates and Slack events are a few KB; files come by reference, never inline.
MAX_WEBHOOK_BYTES = 1024 * 1024


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


async def read_raw(request: web.Request) -> RawInbound | web.Response:
    """The request as the adapters take it, or the refusal to send instead."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # Neither Telegram nor Slack compresses; refusing is cheaper than a bomb check.
        return _error(415, "content_encoding", "compressed bodies are not accepted")
    body = await read_capped(request, MAX_WEBHOOK_BYTES)
    if body is None:
        return _error(413, "too_large", "body too large")
    return RawInbound(headers=dict(request.headers), query=dict(request.query), body=body)


async def file_delivery(
    request: web.Request, setup: InboxSetup, adapter: ChannelAdapter, raw: RawInbound
) -> web.Response:
    """Verify, check and file one delivery; the answer for the channel."""
    try:
        adapter.verify(raw, utcnow())
        delivery = adapter.delivery(raw)
        events = adapter.parse(raw)
    except WebhookRejected as rejected:
        log.info("%s webhook for inbox %s refused: %s", setup.kind, setup.key, rejected.reason)
        return _error(rejected.status, "rejected", rejected.reason)
    if all(isinstance(event, Ignored) for event in events):
        reasons = "; ".join(e.reason for e in events if isinstance(e, Ignored)) or "empty"
        log.info("%s delivery %s ignored: %s", setup.kind, delivery.dedupe_key, reasons)
        return web.json_response({"ok": True})
    new = await request.app[FILER].file(
        inbox_id=setup.id, channel=setup.kind, delivery=delivery, raw=raw
    )
    if not new:
        log.info("%s delivery %s was filed before", setup.kind, delivery.dedupe_key)
    return web.json_response({"ok": True})


async def receive(request: web.Request) -> web.Response:
    kind, key = request.match_info["kind"], request.match_info["key"]
    found = await request.app[REGISTRY].by_key(kind, key)
    if found is None or not found[1].accepts_webhooks:
        return _error(404, "not_found", "no such webhook")
    raw = await read_raw(request)
    if isinstance(raw, web.Response):
        return raw
    setup, adapter = found
    return await file_delivery(request, setup, adapter, raw)


def setup(app: web.Application) -> None:
    app.router.add_post("/webhooks/{kind}/{key}", receive, name="webhook")
