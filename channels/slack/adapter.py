"""One Slack inbox: its bot token and signing secret, its bolt app, its Web API client.

`verify`, `delivery` and `parse` are pure (see `signature` and `events`). `send` posts a
reply into the thread it answers with slack_sdk's `AsyncWebClient`, paced per channel;
the client has no retry handlers, because a retry slept inside a send would hold an
outbox worker, and a retried post after a lost answer would show the customer the reply
twice. Failures become `DeliveryFailed` (429 with Slack's Retry-After) for the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from yarl import URL

from channels.base import (
    ChannelEvent,
    Delivery,
    DeliveryFailed,
    DeliveryReceipt,
    InboundFile,
    InboxSetup,
    OutboundMessage,
    RawInbound,
    WebhookRejected,
)
from channels.pacing import Clock, Pacer, Sleep
from channels.slack import events
from channels.slack.bolt import FileDelivery, bolt_request, build_bolt_app
from channels.slack.mrkdwn import escaped
from channels.slack.signature import check_signature

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"
# Where Slack serves `url_private`. Any other host in a file URL is refused (see `fetch`).
SLACK_FILES = URL("https://files.slack.com/")
# The inbound processor keeps files up to its own limit (20 MB by default); a download
# is cut off here, and an empty answer makes the processor note the file as too large.
MAX_FILE_BYTES = 20 * 1024 * 1024
# Errors that a retry cannot fix: the reply fails and the agent sees why.
_PERMANENT = frozenset(
    {
        "account_inactive",
        "channel_not_found",
        "invalid_auth",
        "is_archived",
        "missing_scope",
        "msg_too_long",
        "no_text",
        "not_authed",
        "not_in_channel",
        "restricted_action",
        "team_access_not_granted",
        "token_revoked",
    }
)


class FileRefused(Exception):
    """A file URL we will not fetch, or a download that did not succeed."""


def retry_after_of(headers: Any) -> float:
    value = str(headers.get("Retry-After", "")).strip() if headers else ""
    # Slack sends whole seconds; anything else gets a short default, never a crash.
    return float(min(int(value), 3600)) if value.isascii() and value.isdigit() else 1.0


def failure_of(error: SlackApiError) -> DeliveryFailed:
    response = error.response
    status = response.status_code
    code = response.get("error") if isinstance(response.data, dict) else None
    if status == 429 or code == "ratelimited":
        return DeliveryFailed("Slack rate limit", retry_after=retry_after_of(response.headers))
    if code in _PERMANENT:
        return DeliveryFailed(f"Slack refused the message: {code}", permanent=True)
    # 5xx and errors such as internal_error: Slack did not take the message; try again.
    return DeliveryFailed(f"Slack answered {status}: {code or 'no error code'}")


class SlackAdapter:
    kind: ClassVar[str] = "slack"
    # chat.postMessage has no idempotency key: a repeated post is a second message.
    idempotent: ClassVar[bool] = False
    accepts_webhooks: ClassVar[bool] = True

    def __init__(
        self,
        setup: InboxSetup,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.setup = setup
        self.bot_token = setup.credentials.get("bot_token", "")
        self.signing_secret = setup.credentials.get("signing_secret", "")
        self.api_url = str(setup.config.get("api_url") or DEFAULT_API_URL)
        self.client = AsyncWebClient(
            token=self.bot_token or None, base_url=self.api_url, retry_handlers=[]
        )
        self.identity = events.BotIdentity()
        # About one message per second per channel: Slack's chat.postMessage limit.
        self.pacer: Pacer[str] = Pacer(lambda _channel: 1.0, clock=clock, sleep=sleep)
        self._bolt: AsyncApp | None = None
        self._http: aiohttp.ClientSession | None = None

    # --- inbound: pure ---------------------------------------------------------------

    def verify(self, raw: RawInbound, now: datetime) -> None:
        check_signature(raw.headers, raw.body, self.signing_secret, now)

    def delivery(self, raw: RawInbound) -> Delivery:
        return events.delivery_of(events.load_envelope(raw))

    def parse(self, raw: RawInbound) -> Sequence[ChannelEvent]:
        return events.parse_envelope(events.load_envelope(raw), self.setup.id, self.identity)

    # --- inbound: through bolt ---------------------------------------------------------

    @property
    def bolt(self) -> AsyncApp:
        """This inbox's bolt app, built on first use and kept with the adapter."""
        if self._bolt is None:
            self._bolt = build_bolt_app(
                self.client, self.signing_secret, f"switchboard-slack-{self.setup.key}"
            )
        return self._bolt

    async def dispatch(self, raw: RawInbound, file_delivery: FileDelivery) -> BoltResponse:
        """Run a verified, well-formed delivery through bolt (see `channels.slack.bolt`)."""
        if not self.bot_token:
            # Bolt cannot even start without one; Slack retries while an admin fixes it.
            raise WebhookRejected(503, "this Slack inbox has no bot token")
        self._session()  # the client shares our connection pool
        request = bolt_request(raw, file_delivery)
        response = await self.bolt.async_dispatch(request)
        self._learn(request.context.authorize_result)
        return response

    def _learn(self, result: AuthorizeResult | None) -> None:
        # Bolt's auth.test says who we are; the pure parse then ignores the same echoes.
        if result is not None and (result.bot_user_id or result.bot_id):
            self.identity = events.BotIdentity(result.bot_user_id, result.bot_id)

    # --- files -------------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
            self.client.session = self._http
        return self._http

    def _may_fetch(self, url: URL) -> bool:
        # The bot token goes with the request, so the URL must be Slack's own: a file
        # URL pointing anywhere else (an internal address, a metadata service) would
        # both leak the token and let a payload make us fetch from inside our network.
        api = URL(self.api_url)
        if url.user is not None or url.password is not None:
            return False
        origin = (url.scheme, url.host, url.port)
        return origin in {
            (api.scheme, api.host, api.port),
            (SLACK_FILES.scheme, SLACK_FILES.host, SLACK_FILES.port),
        }

    async def fetch(self, file: InboundFile) -> bytes:
        """Download a `url_private` with the bot token; only from Slack, never redirected."""
        url = URL(file.ref or "")
        if not url.is_absolute() or not self._may_fetch(url):
            raise FileRefused(f"not a Slack file URL: {url.host}")
        # No redirects: a redirect could lead to any host (Slack answers an unauthorised
        # download with a redirect to its sign-in page, which is not the file either).
        async with self._session().get(
            url, headers={"Authorization": f"Bearer {self.bot_token}"}, allow_redirects=False
        ) as response:
            if response.status != 200:
                raise FileRefused(f"download of {file.filename} answered {response.status}")
            data = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > MAX_FILE_BYTES:
                    return b""  # noted as too large by the processor, never stored cut off
            return bytes(data)

    # --- outbound ----------------------------------------------------------------------

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        channel, _, root_ts = msg.thread_key.partition(":")
        if not channel:
            raise DeliveryFailed(f"no Slack channel in {msg.thread_key!r}", permanent=True)
        await self.pacer.wait_turn(channel)
        self._session()
        try:
            if msg.files:
                response = await self.client.files_upload_v2(
                    file_uploads=[
                        {"content": f.data, "filename": f.filename, "title": f.filename}
                        for f in msg.files
                    ],
                    channel=channel,
                    thread_ts=root_ts or None,
                    initial_comment=escaped(msg.text) or None,
                )
                ids = ",".join(str(f.get("id")) for f in response.get("files") or [])
                # The upload's message ts arrives later (in the file's shares); the file
                # ids name what we sent. Our own file_share echo is ignored by sender.
                return DeliveryReceipt(external_id=f"{channel}:files:{ids}"[:255])
            response = await self.client.chat_postMessage(
                channel=channel, text=escaped(msg.text), thread_ts=root_ts or None
            )
        except SlackApiError as error:
            failed = failure_of(error)
            if failed.retry_after is not None:
                self.pacer.hold(channel, failed.retry_after)
            raise failed from error
        except SlackRequestError as error:
            # Raised by the upload step, before the file is shared: nothing was posted.
            raise DeliveryFailed(f"file upload failed: {error}") from error
        except aiohttp.ClientConnectorError as error:
            # Not connected means not sent: safe to try again.
            raise DeliveryFailed(f"cannot reach Slack: {error}") from error
        return DeliveryReceipt(external_id=f"{response['channel']}:{response['ts']}")

    async def aclose(self) -> None:
        if self._http is not None and not self._http.closed:
            await self._http.close()
