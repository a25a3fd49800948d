"""Which adapter serves an inbox: built from the inbox row, cached, rebuilt on change.

Inboxes are rows (several per kind), so adapters are per inbox, not per kind. The
registry reads the row, decrypts its credentials and asks the kind's factory for an
adapter; a change to the row (its `updated_at`) builds a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select

from channels.base import ChannelAdapter, InboxSetup
from conversations.models import Inbox
from switchboard.crypto import CredentialBox
from switchboard.tx import Database

log = logging.getLogger(__name__)

AdapterFactory = Callable[[InboxSetup], ChannelAdapter]


class AdapterSource(Protocol):
    """What the outbox and the inbound processor need: the adapter of an inbox."""

    async def for_inbox(self, inbox_id: int, kind: str) -> ChannelAdapter | None: ...
    def idempotent_kinds(self) -> set[str]: ...


class StaticAdapters:
    """One adapter per kind for every inbox: tests and benchmarks with fakes."""

    def __init__(self, adapters: Mapping[str, ChannelAdapter]) -> None:
        self.adapters = dict(adapters)

    async def for_inbox(self, inbox_id: int, kind: str) -> ChannelAdapter | None:
        return self.adapters.get(kind)

    def idempotent_kinds(self) -> set[str]:
        return {kind for kind, adapter in self.adapters.items() if adapter.idempotent}


@dataclass
class _Cached:
    setup: InboxSetup
    adapter: ChannelAdapter
    stamp: object
    checked_at: float


class AdapterRegistry:
    # How long a cached adapter is trusted before the row is read again: an admin's
    # change reaches every process within this time.
    RECHECK_SECONDS = 5.0
    # Longer than any send may take (the outbox cuts a send off at 0.8 × its 60 s lease).
    RETIRE_AFTER_SECONDS = 60.0

    def __init__(
        self,
        db: Database,
        box: CredentialBox,
        factories: Mapping[str, AdapterFactory],
        public_url: str,
    ) -> None:
        self.db = db
        self.box = box
        self.factories = dict(factories)
        self.public_url = public_url
        self._cache: dict[int, _Cached] = {}
        self._keys: dict[tuple[str, str], int] = {}
        self._lock = asyncio.Lock()
        self._retiring: dict[ChannelAdapter, asyncio.Task[None]] = {}
        self._missing: dict[tuple[str, str], float] = {}

    def idempotent_kinds(self) -> set[str]:
        return {kind for kind, factory in self.factories.items() if _idempotent(factory)}

    async def for_inbox(self, inbox_id: int, kind: str) -> ChannelAdapter | None:
        found = await self._load(select(Inbox).where(Inbox.id == inbox_id), inbox_id)
        return None if found is None else found.adapter

    async def by_key(self, kind: str, key: str) -> tuple[InboxSetup, ChannelAdapter] | None:
        """The inbox a webhook URL names (`/webhooks/<kind>/<key>`), with its adapter."""
        if kind not in self.factories:
            return None
        # Unknown keys are remembered briefly: a flood of made-up webhook URLs then costs
        # a dictionary lookup each, not a database query.
        missed_at = self._missing.get((kind, key))
        if missed_at is not None and time.monotonic() - missed_at < self.RECHECK_SECONDS:
            return None
        cached_id = self._keys.get((kind, key))
        found = await self._load(
            select(Inbox).where(Inbox.kind == kind, Inbox.key == key), cached_id
        )
        if found is None:
            if len(self._missing) >= _MISSING_CACHE_SIZE:
                self._missing.clear()
            self._missing[(kind, key)] = time.monotonic()
            return None
        self._missing.pop((kind, key), None)
        return found.setup, found.adapter

    async def setup_of(self, inbox_id: int) -> InboxSetup | None:
        found = await self._load(select(Inbox).where(Inbox.id == inbox_id), inbox_id)
        return None if found is None else found.setup

    def _retire(self, adapter: ChannelAdapter) -> None:
        """Close a replaced adapter only after a grace period: a send may still be using
        it, and cutting it off would leave that reply "unconfirmed"."""

        async def close_later() -> None:
            await asyncio.sleep(self.RETIRE_AFTER_SECONDS)
            self._retiring.pop(adapter, None)
            with contextlib.suppress(Exception):
                await adapter.aclose()

        self._retiring[adapter] = asyncio.create_task(close_later(), name="retire-adapter")

    def forget(self, inbox_id: int) -> None:
        self._cache.pop(inbox_id, None)

    async def aclose(self) -> None:
        retired = list(self._retiring.items())
        self._retiring.clear()
        for adapter, task in retired:
            task.cancel()
            with contextlib.suppress(Exception):
                await adapter.aclose()
        for cached in self._cache.values():
            with contextlib.suppress(Exception):
                await cached.adapter.aclose()
        self._cache.clear()

    async def _load(self, query: object, cached_id: int | None) -> _Cached | None:
        now = time.monotonic()
        if cached_id is not None:
            cached = self._cache.get(cached_id)
            if cached is not None and now - cached.checked_at < self.RECHECK_SECONDS:
                return cached
        # Read outside the lock: only building an adapter needs to be one at a time.
        async with self.db.reading() as session:
            inbox = (await session.execute(query)).scalar_one_or_none()  # type: ignore[call-overload]
        if inbox is None or inbox.kind not in self.factories:
            return None
        async with self._lock:
            stamp = (inbox.updated_at, inbox.credentials, repr(inbox.config))
            cached = self._cache.get(inbox.id)
            if cached is not None and cached.stamp == stamp:
                cached.checked_at = now
                return cached
            setup = InboxSetup(
                id=inbox.id,
                key=inbox.key,
                kind=inbox.kind,
                name=inbox.name,
                config=dict(inbox.config or {}),
                credentials=self.box.open(inbox.credentials),
                public_url=self.public_url,
            )
            adapter = self.factories[inbox.kind](setup)
            if cached is not None:
                self._retire(cached.adapter)
            fresh = _Cached(setup, adapter, stamp, now)
            self._cache[inbox.id] = fresh
            self._keys[(inbox.kind, inbox.key)] = inbox.id
            return fresh


_MISSING_CACHE_SIZE = 10_000


def _idempotent(factory: AdapterFactory) -> bool:
    # Factories are the adapter classes themselves, which declare it as a class variable.
    return bool(getattr(factory, "idempotent", False))
