"""The adapter registry: one adapter per inbox row, rebuilt when the row changes, and a
replaced adapter left open long enough for a send in flight to finish."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from channels.base import InboxSetup
from switchboard.adapters import AdapterRegistry
from switchboard.crypto import CredentialBox
from switchboard.inboxes import do_ensure_inbox
from switchboard.tx import Database
from tests.conftest import SECRET


class Recording:
    kind: ClassVar[str] = "rec"
    idempotent: ClassVar[bool] = False
    accepts_webhooks: ClassVar[bool] = True

    def __init__(self, setup: InboxSetup) -> None:
        self.setup = setup
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_a_changed_inbox_gets_a_new_adapter_and_the_old_one_closes_later(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = CredentialBox(SECRET)
    registry = AdapterRegistry(db, box, {"rec": Recording}, "https://hub.example.com")
    monkeypatch.setattr(AdapterRegistry, "RECHECK_SECONDS", 0.0)
    await db.run(
        lambda s: do_ensure_inbox(
            s, key="a", kind="rec", name="A", config={}, credentials={"token": "one"}, box=box
        )
    )
    found = await registry.by_key("rec", "a")
    assert found is not None
    setup, first = found
    assert isinstance(first, Recording) and first.setup.credentials == {"token": "one"}
    assert setup.webhook_url == "https://hub.example.com/webhooks/rec/a"

    await db.run(
        lambda s: do_ensure_inbox(
            s, key="a", kind="rec", name="A", config={}, credentials={"token": "two"}, box=box
        )
    )
    second: Any = await registry.for_inbox(setup.id, "rec")
    assert second is not first and second.setup.credentials == {"token": "two"}
    # A send that started on the old adapter may still be running: not closed yet.
    assert first.closed is False
    await registry.aclose()
    assert first.closed is True and second.closed is True


async def test_unknown_webhook_urls_cost_no_database_query_after_the_first(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = AdapterRegistry(db, CredentialBox(SECRET), {"rec": Recording}, "https://hub")
    queries = 0
    reading = db.reading

    def counting() -> Any:
        nonlocal queries
        queries += 1
        return reading()

    monkeypatch.setattr(db, "reading", counting)
    assert await registry.by_key("nokind", "x") is None
    assert queries == 0  # a kind we do not serve is refused before any lookup
    for _ in range(50):
        assert await registry.by_key("rec", "made-up") is None
    assert queries == 1
