"""One inbox's Telegram bot: its webhook checked and read, its replies sent.

The webhook carries the secret we gave `setWebhook` in `X-Telegram-Bot-Api-Secret-Token`;
it is the only proof a request comes from Telegram, so an inbox without a secret takes
no webhooks at all. Sending, file downloads and `setWebhook` go through a plain PTB
`Bot` pointed at the inbox's API URL (Telegram, or the tests' fake).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar

from telegram import Bot, KeyboardButton, Message, ReplyKeyboardMarkup
from telegram.constants import ChatAction
from telegram.error import BadRequest, RetryAfter, TelegramError

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
from channels.pacing import Clock, Sleep
from channels.telegram.pacing import telegram_pacer
from channels.telegram.sending import Part, failure, plan, retry_seconds, scrub
from channels.telegram.updates import delivery_of, load_update, parse_update

DEFAULT_API_URL = "https://api.telegram.org"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
# What setWebhook asks for; everything else Telegram would send is ignored anyway.
ALLOWED_UPDATES = ("message", "edited_message", "my_chat_member")
# How long one send may wait for pacing slots in all. The outbox gives a send 48 s of its
# 60 s lease; past this budget the send hands the row back with a retry time instead.
PACING_BUDGET = 20.0
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_CHAT_KEY = re.compile(r"chat:(-?[0-9]{1,19})")
# Parts already delivered of replies still being sent (a 429 half-way through an album).
_PROGRESS_KEPT = 1000
# Long button labels are cut (the bot accepts the cut label as the pick, and the full
# text is in the message above the keyboard); the same length as bot.policy.BUTTON_TEXT.
_BUTTON_TEXT = 120
# "typing…" shows for about 5 s or until the bot's next message: once per 4 s per chat
# keeps it on while an agent types, and a burst of keystrokes costs one request.
TYPING_INTERVAL = 4.0
# Chats remembered for that throttle (oldest forgotten first).
_TYPING_KEPT = 10_000
log = logging.getLogger(__name__)
# In a file URL the token's colon comes percent-encoded.
_TOKEN_IN_URL = re.compile(r"/bot[0-9]+(?::|%3A)[A-Za-z0-9_-]+", re.IGNORECASE)


class _HideBotTokens(logging.Filter):
    """httpx logs every request's URL at INFO (PTB its base URLs at DEBUG), and a Bot API
    URL carries the bot token: keep the line, drop the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = _TOKEN_IN_URL.sub("/bot<token>", message)
        if hidden != message:
            record.msg, record.args = hidden, None
        return True


def _hide_tokens_in_http_logs() -> None:
    # A logger's filters see only its own records, not its children's: name each one.
    for name in ("httpx", "telegram.Bot"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _HideBotTokens) for f in logger.filters):
            logger.addFilter(_HideBotTokens())


_hide_tokens_in_http_logs()


def valid_secret_token(value: str) -> bool:
    """What setWebhook accepts as secret_token: 1-256 of A-Z, a-z, 0-9, _ and -."""
    return _SECRET_TOKEN.fullmatch(value) is not None


class WebhookSetupError(Exception):
    """setWebhook could not be done; the message says why, without the token."""


class TelegramUnavailable(Exception):
    """A download failed in a way worth retrying (the message never carries the token)."""


class TelegramAdapter:
    kind: ClassVar[str] = "telegram"
    # Telegram has no idempotency key: sending a reply twice shows it twice.
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
        self._token = setup.credentials.get("bot_token", "")
        self._secret = setup.credentials.get("webhook_secret", "")
        self._api_url = str(setup.config.get("api_url") or DEFAULT_API_URL).rstrip("/")
        self._clock = clock
        self._pacer = telegram_pacer(clock, sleep)
        self._bot: Bot | None = None
        self._starting = asyncio.Lock()
        self._progress: OrderedDict[int, tuple[int, str]] = OrderedDict()
        # chat id -> when typing may next be sent (throttle, or a 429's retry_after).
        self._typing_next: OrderedDict[int, float] = OrderedDict()

    # --- the webhook (pure) ----------------------------------------------------------------

    def verify(self, raw: RawInbound, now: datetime) -> None:
        if not self._secret:
            raise WebhookRejected(403, "this inbox has no webhook secret, so it takes no webhooks")
        given = _header(raw.headers, SECRET_HEADER)
        if given is None:
            raise WebhookRejected(403, "secret token missing")
        # Bytes, so a header with non-ASCII characters is a mismatch, not a TypeError.
        if not hmac.compare_digest(
            given.encode("utf-8", "surrogatepass"), self._secret.encode("utf-8")
        ):
            raise WebhookRejected(403, "secret token does not match")

    def delivery(self, raw: RawInbound) -> Delivery:
        content_type = _header(raw.headers, "Content-Type") or ""
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise WebhookRejected(400, "Content-Type must be application/json")
        return delivery_of(load_update(raw.body))

    def parse(self, raw: RawInbound) -> Sequence[ChannelEvent]:
        return parse_update(load_update(raw.body), self.setup.id)

    # --- the Bot API -----------------------------------------------------------------------

    async def _ready(self) -> Bot:
        """The bot, initialised (getMe) on first use."""
        async with self._starting:
            if self._bot is None:
                bot = Bot(
                    self._token,
                    base_url=f"{self._api_url}/bot",
                    base_file_url=f"{self._api_url}/file/bot",
                )
                try:
                    await bot.initialize()
                except BaseException:
                    await bot.shutdown()  # getMe failed: close the HTTP clients it opened
                    raise
                self._bot = bot
            return self._bot

    async def aclose(self) -> None:
        bot, self._bot = self._bot, None
        if bot is not None:
            await bot.shutdown()

    async def fetch(self, file: InboundFile) -> bytes:
        if not file.ref:
            raise ValueError("a Telegram file needs its file_id")
        try:
            bot = await self._ready()
            found = await bot.get_file(file.ref)
            return bytes(await found.download_as_bytearray())
        except BadRequest as exc:
            # Telegram will never hand this file over: the message is kept with a note.
            if "too big" in exc.message.lower():
                return b""  # noted as too large (Bot API downloads stop at 20 MB)
            reason = scrub(exc.message, self._token)
            raise DeliveryFailed(
                f"Telegram will not hand the file over: {reason}", permanent=True
            ) from None
        except TelegramError as exc:
            raise TelegramUnavailable(scrub(exc.message, self._token)) from None

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        chat_id = _chat_id(msg.thread_key)
        parts = plan(msg.text, msg.files)
        if not parts:
            raise DeliveryFailed("nothing to send: no text and no files", permanent=True)
        bot = await self._started_for_sending()
        deadline = self._clock() + PACING_BUDGET
        done, first = self._progress.pop(msg.outbox_id, (0, ""))
        for index in range(done, len(parts)):
            # A bot's choices ride on the last part as a one-time reply keyboard; a
            # press arrives as an ordinary text message with the option's text.
            keyboard = _keyboard(msg.extra.get("choices")) if index == len(parts) - 1 else None
            try:
                await self._pacer.wait_turn(chat_id, deadline)
                sent = await _send_part(bot, chat_id, parts[index], keyboard)
            except TelegramError as exc:
                if isinstance(exc, RetryAfter):
                    self._pacer.hold(chat_id, retry_seconds(exc))
                self._remember(msg.outbox_id, index, first)
                raise failure(exc, self._token) from None
            except DeliveryFailed:
                self._remember(msg.outbox_id, index, first)
                raise
            first = first or f"{chat_id}:{sent.message_id}"
        return DeliveryReceipt(external_id=first)

    async def send_typing(self, thread_key: str) -> bool:
        """Show the customer "typing…" (sendChatAction) while an agent types; whether a
        request was made.

        Best effort and never in the way of a reply: it takes no pacing slot (an agent's
        keystrokes never wait behind the outbox), is sent at most once per
        `TYPING_INTERVAL` per chat, is never retried, and a 429 silences it for that chat
        until Telegram's retry_after has passed. Failures are logged, never raised."""
        match = _CHAT_KEY.fullmatch(thread_key)
        if match is None or not self._token:
            return False
        chat_id = int(match.group(1))
        now = self._clock()
        if now < self._typing_next.get(chat_id, 0.0):
            return False
        self._typing_next[chat_id] = now + TYPING_INTERVAL
        self._typing_next.move_to_end(chat_id)
        while len(self._typing_next) > _TYPING_KEPT:
            self._typing_next.popitem(last=False)
        try:
            bot = await self._ready()
            await bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING)
        except RetryAfter as exc:
            seconds = retry_seconds(exc)
            self._typing_next[chat_id] = self._clock() + max(seconds, TYPING_INTERVAL)
            log.info(
                "telegram typing to chat %s skipped for %g s (flood control)", chat_id, seconds
            )
        except TelegramError as exc:
            log.warning(
                "telegram typing to chat %s failed: %s", chat_id, scrub(exc.message, self._token)
            )
        return True

    async def _started_for_sending(self) -> Bot:
        if not self._token:
            # Retryable, like a wrong token: an admin can still fill it in.
            raise DeliveryFailed("this Telegram inbox has no bot token")
        try:
            return await self._ready()
        except TelegramError as exc:
            # getMe changes nothing, so whatever went wrong, trying again is safe.
            raise DeliveryFailed(f"Telegram bot not ready: {failure(exc, self._token)}") from None

    def _remember(self, outbox_id: int, done: int, first: str) -> None:
        """Parts already shown to the customer are not sent again on the retry (within
        this process; another worker starts over)."""
        if done:
            self._progress[outbox_id] = (done, first)
            while len(self._progress) > _PROGRESS_KEPT:
                self._progress.popitem(last=False)

    async def set_webhook(self) -> str:
        """Point Telegram at this inbox's webhook URL, with its secret; return the URL."""
        if not valid_secret_token(self._secret):
            raise WebhookSetupError(
                f"inbox {self.setup.key} has no usable webhook secret "
                "(1-256 characters of A-Z, a-z, 0-9, _ and -)"
            )
        url = self.setup.webhook_url
        try:
            bot = await self._ready()
            await bot.set_webhook(
                url=url, secret_token=self._secret, allowed_updates=list(ALLOWED_UPDATES)
            )
        except TelegramError as exc:
            reason = scrub(exc.message, self._token)
            raise WebhookSetupError(f"Telegram refused: {reason}") from None
        return url


def _keyboard(choices: object) -> ReplyKeyboardMarkup | None:
    if not isinstance(choices, list) or not choices:
        return None
    rows = [[KeyboardButton(str(title)[:_BUTTON_TEXT])] for title in choices]
    return ReplyKeyboardMarkup(rows, one_time_keyboard=True, resize_keyboard=True)


async def _send_part(
    bot: Bot, chat_id: int, part: Part, keyboard: ReplyKeyboardMarkup | None = None
) -> Message:
    # No parse_mode: an agent's text is shown as written, never read as markup.
    if part.file is None:
        return await bot.send_message(chat_id=chat_id, text=part.text or "", reply_markup=keyboard)
    if part.as_photo:
        return await bot.send_photo(
            chat_id=chat_id,
            photo=part.file.data,
            filename=part.file.filename,
            caption=part.text,
            reply_markup=keyboard,
        )
    return await bot.send_document(
        chat_id=chat_id,
        document=part.file.data,
        filename=part.file.filename,
        caption=part.text,
        reply_markup=keyboard,
    )


def _chat_id(thread_key: str) -> int:
    match = _CHAT_KEY.fullmatch(thread_key)
    if match is None:
        raise DeliveryFailed(f"not a Telegram chat: {thread_key[:60]!r}", permanent=True)
    return int(match.group(1))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # The edge passes headers as received; the inbound processor stores them lowercased.
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None
