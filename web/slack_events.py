"""`POST /webhooks/slack/<inbox key>`: Slack's Events API, through the inbox's bolt app.

The order, and who does what:

1. The shared edge reads the body under its cap and refuses compressed bodies
   (`web.webhooks.read_raw`): 413/415 before anything else.
2. The adapter's pure checks run on the raw bytes: the signature (401) and the envelope
   (400 for anything but a JSON object with the fields bolt relies on). These come first
   because bolt's request object parses the body as it is built, before its own
   verification, and its verifier raises on a non-numeric timestamp or a non-ASCII
   signature: hostile input would otherwise get a 500 instead of a refusal.
3. Bolt (`channels.slack.bolt`) then verifies again, authorizes with auth.test, drops our
   own bot's events, answers `url_verification`, and runs the one listener, which calls
   `file_delivery` below: parse decides whether there is anything to keep, and the raw
   delivery is filed under its `event_id` before the answer. A Slack retry
   (`X-Slack-Retry-Num`) of a filed event hits that key: 200, nothing new.
4. We never answer 200 for data we did not store. Bolt answers 200 when auth.test fails
   (its user-facing error message), so if the pure parse says the event holds something
   to keep and the listener did not file it, the answer is 503 and Slack retries.

Where bolt and the pure adapter could disagree (bolt's idea of "our own" event, learnt
from auth.test, against the parse's), the adapter learns the identity bolt found before
the check in step 4, so both sides judge with the same ids.
"""

from __future__ import annotations

import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response

from channels.base import ChannelEvent, Ignored, WebhookRejected
from channels.slack.adapter import SlackAdapter
from switchboard.appkeys import FILER, REGISTRY
from switchboard.db import utcnow
from web.webhooks import read_raw

log = logging.getLogger(__name__)
KIND = SlackAdapter.kind


def _error(status: int, code: str, message: str) -> web.Response:
    # The same shape as the generic webhook edge's refusals.
    return web.json_response({"error": code, "message": message}, status=status)


def _worth_keeping(events: list[ChannelEvent]) -> bool:
    return not all(isinstance(event, Ignored) for event in events)


async def receive(request: web.Request) -> web.StreamResponse:
    found = await request.app[REGISTRY].by_key(KIND, request.match_info["key"])
    if found is None:
        return _error(404, "not_found", "no such webhook")
    setup, adapter = found
    if not isinstance(adapter, SlackAdapter):
        return _error(404, "not_found", "no such webhook")
    raw = await read_raw(request)
    if isinstance(raw, web.Response):
        return raw
    try:
        adapter.verify(raw, utcnow())
        delivery = adapter.delivery(raw)
    except WebhookRejected as rejected:
        log.info("slack webhook for inbox %s refused: %s", setup.key, rejected.reason)
        return _error(rejected.status, "rejected", rejected.reason)

    filed = False

    async def file_delivery() -> None:
        nonlocal filed
        events = list(adapter.parse(raw))
        if _worth_keeping(events):
            new = await request.app[FILER].file(
                inbox_id=setup.id, channel=KIND, delivery=delivery, raw=raw
            )
            if not new:
                log.info("slack delivery %s was filed before", delivery.dedupe_key)
        else:
            reasons = "; ".join(e.reason for e in events if isinstance(e, Ignored))
            log.info("slack delivery %s ignored: %s", delivery.dedupe_key, reasons)
        filed = True

    try:
        answer = await adapter.dispatch(raw, file_delivery)
    except WebhookRejected as rejected:
        log.warning("slack webhook for inbox %s not taken: %s", setup.key, rejected.reason)
        return _error(rejected.status, "rejected", rejected.reason)
    if not filed and answer.status < 300 and _worth_keeping(list(adapter.parse(raw))):
        log.warning(
            "slack delivery %s was not stored (bolt answered %s: %s); asking Slack to retry",
            delivery.dedupe_key,
            answer.status,
            answer.body[:200],
        )
        return _error(503, "not_stored", "the event could not be stored; retry later")
    return await to_aiohttp_response(answer)


def setup(app: web.Application) -> None:
    """Register before `web.webhooks.setup`, whose `/webhooks/{kind}/{key}` is generic."""
    app.router.add_post(f"/webhooks/{KIND}/{{key}}", receive, name="webhook-slack")
