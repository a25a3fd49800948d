"""The bot's worker: exactly one bot turn per customer message, durably.

A pass claims conversations with a pending turn (`bot.service.claim_turns`, under a
lease), reads each turn's input, asks the engine within a deadline, lets the policy
decide, and stores reply, explanation and state in one transaction that also releases
the claim. An engine that times out or is down becomes a hand-off with its reason;
a worker that dies mid-turn leaves a lease that expires, and the turn is taken again.
It is woken by customer messages on the inbox topic (no extra work in intake) and
polls as a safety net.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import ClassVar, Protocol

from sqlalchemy import select

from bot.engines.base import Prediction, predict_within, unavailable
from bot.policy import EN, BotMemory, Handoff, HandoffReason, Turn, decide, handoff_text
from bot.runtime import LoadedBot
from bot.service import (
    TurnInput,
    TurnLost,
    TurnPolicy,
    claim_turns,
    do_complete_turn,
    find_pending_turns,
    load_turn,
)
from conversations.events import INBOX_TOPIC, MessageCreated
from conversations.models import AuthorKind, Inbox
from switchboard.background import BackgroundWorker
from switchboard.bus import Resync
from switchboard.db import utcnow
from switchboard.events import Event
from switchboard.tx import Database

log = logging.getLogger(__name__)

# How often the set of bot-enabled inboxes (which filters wake-ups) is re-read.
_INBOX_REFRESH = 5.0


class ServingBot(Protocol):
    """What the worker needs of `bot.runtime.BotRuntime`: the model serving now."""

    async def current(self) -> LoadedBot: ...


class BotWorker(BackgroundWorker):
    wake_topic: ClassVar[str] = INBOX_TOPIC

    def __init__(self, db: Database, runtime: ServingBot, policy: TurnPolicy | None = None) -> None:
        super().__init__(db.bus)
        self.db = db
        self.runtime = runtime
        self.policy = policy or TurnPolicy()
        # Names this worker's leases; unique per process and worker.
        self.owner = f"bot-{secrets.token_hex(8)}"
        self._bot_inboxes: frozenset[int] | None = None
        self._inboxes_read_at = 0.0

    async def run_once(self) -> int:
        await self._read_bot_inboxes()
        now = utcnow()
        async with self.db.reading() as session:
            pending = await find_pending_turns(session, now, self.policy)
        if not pending:
            return 0
        claimed = await self.db.run(lambda s: claim_turns(s, now, self.owner, self.policy, pending))
        for conversation_id in claimed:
            try:
                await self.take_turn(conversation_id)
            except Exception:
                # The lease expires and the turn is taken again; one bad turn must not
                # stop the others in the batch.
                log.exception("bot turn in conversation %s failed", conversation_id)
        return len(claimed)

    async def take_turn(self, conversation_id: int) -> int | None:
        """Decide and store one claimed turn; the bot's message id, if it replied."""
        async with self.db.reading() as session:
            turn_input = await load_turn(session, conversation_id, self.owner)
        if turn_input is None:
            return None
        turn, fingerprint = None, None
        if turn_input.needs_reply:
            turn, fingerprint = await self._decide(turn_input)
        try:
            return await self._store(turn_input, turn, fingerprint)
        except TurnLost:
            log.info("bot turn in conversation %s was taken over", conversation_id)
            return None
        except Exception as exc:
            if turn is None or isinstance(turn.decision, Handoff):
                raise
            # A reply that cannot be stored (an article the channel cannot carry) must
            # not leave the customer unanswered on every retry: hand off, saying why.
            log.exception("bot reply in conversation %s could not be stored", conversation_id)
            return await self._store(turn_input, _handoff_instead(turn, exc), fingerprint)

    async def _store(
        self, turn_input: TurnInput, turn: Turn | None, fingerprint: str | None
    ) -> int | None:
        return await self.db.run(
            lambda s: do_complete_turn(
                s, turn_input, turn, owner=self.owner, fingerprint=fingerprint
            )
        )

    async def _decide(self, turn_input: TurnInput) -> tuple[Turn, str | None]:
        loaded: LoadedBot | None = None
        try:
            async with asyncio.timeout(self.policy.engine_timeout):
                loaded = await self.runtime.current()
            prediction = await predict_within(
                loaded.model, turn_input.text, self.policy.engine_timeout
            )
        except TimeoutError:
            prediction = unavailable("no trained model yet")
        except Exception as exc:  # training or the engine failed: hand off, never silence
            log.exception("bot engine failed")
            prediction = _failed(exc)
        turn = decide(
            prediction,
            text=turn_input.text,
            memory=turn_input.memory,
            customer=turn_input.customer,
            settings=turn_input.settings,
            articles=loaded.articles if loaded is not None else {},
        )
        return turn, loaded.fingerprint if loaded is not None else None

    async def pause(self) -> float:
        return self.policy.poll_interval

    def heard(self, item: Event | Resync) -> None:
        # Only a customer message in a bot inbox is worth a pass; typing indicators and
        # agents' messages on the same topic are not. Which inboxes have the bot is read
        # by the passes (no I/O here); until it is known, or once it is old, any
        # customer message wakes the worker, whose pass then reads it afresh.
        if not isinstance(item, MessageCreated):
            return
        if item.message.get("author_kind") != AuthorKind.CUSTOMER:
            return
        if self._bot_inboxes is None or self._inboxes_stale() or item.inbox_id in self._bot_inboxes:
            self.wake()

    def _inboxes_stale(self) -> bool:
        return asyncio.get_running_loop().time() - self._inboxes_read_at > _INBOX_REFRESH

    async def _read_bot_inboxes(self) -> None:
        if self._bot_inboxes is not None and not self._inboxes_stale():
            return
        try:
            async with self.db.reading() as session:
                rows = await session.execute(select(Inbox.id).where(Inbox.bot_enabled))
                self._bot_inboxes = frozenset(rows.scalars())
        except Exception:
            log.exception("reading bot inboxes failed")
            return
        self._inboxes_read_at = asyncio.get_running_loop().time()


def _handoff_instead(turn: Turn, exc: Exception) -> Turn:
    locale = turn.memory.locale or EN
    reason = HandoffReason.ENGINE_UNAVAILABLE
    detail = f"the bot's reply could not be stored: {type(exc).__name__}"
    return Turn(Handoff(reason, detail, (), handoff_text(reason, locale)), BotMemory(locale=locale))


def _failed(exc: Exception) -> Prediction:
    return unavailable(f"engine failed: {type(exc).__name__}")
