"""The inbox's slack-bolt `AsyncApp`: Slack's own checks, then one listener that files.

Bolt's built-in middleware does what it is made for, in its order: request verification,
authorization (one auth.test, which also tells us our bot user and bot id), dropping our
own bot's events, and answering `url_verification` with the challenge — only after the
signature check. Everything that passes reaches one listener for every event type. With
`process_before_response=True` that listener runs before bolt answers, and it only calls
the edge's `file_delivery` (handed over in the request context): the delivery is stored
before the 200, and storing is one INSERT, well inside Slack's 3 seconds.

The mapping from payload to conversation is not bolt's: the listener files the raw
delivery, and the inbound processor later maps it with the pure functions in `events`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from channels.base import RawInbound

FileDelivery = Callable[[], Awaitable[None]]
# The request-context key under which the edge hands the listener its filing step.
FILE_DELIVERY = "switchboard_file_delivery"
_EVERY_EVENT = re.compile(r".")

log = logging.getLogger(__name__)


async def _file(ack: AsyncAck, context: AsyncBoltContext) -> None:
    file_delivery: FileDelivery = context[FILE_DELIVERY]
    # An exception here (the database is down) makes bolt answer 500: Slack retries.
    await file_delivery()
    await ack()


def build_bolt_app(client: AsyncWebClient, signing_secret: str, name: str) -> AsyncApp:
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        name=name,
        logger=log,
        process_before_response=True,
        # Assistant-thread helpers read extra state on every event; we need none of it.
        attaching_conversation_kwargs_enabled=False,
    )
    app.event(_EVERY_EVENT)(_file)
    return app


def bolt_request(raw: RawInbound, file_delivery: FileDelivery) -> AsyncBoltRequest:
    """What `slack_bolt.adapter.aiohttp.to_bolt_request` builds, from the bytes the edge
    already read under its cap (`to_bolt_request` reads the body itself, with
    `request.text()`: bounded only by the app's upload-sized limit, and decoded with any
    charset the sender declares, so bolt could verify other bytes than Slack signed)."""
    return AsyncBoltRequest(
        body=raw.body.decode("utf-8"),
        query=dict(raw.query),
        headers=dict(raw.headers),
        context={FILE_DELIVERY: file_delivery},
    )
