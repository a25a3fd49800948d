"""Fixtures for the ticket tests."""

from __future__ import annotations

import pytest

from tests.conftest import AppClient, ClientFactory
from tests.security.support import use_cheap_password_hashing


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_password_hashing(monkeypatch)


@pytest.fixture
async def client(make_client: ClientFactory) -> AppClient:
    """The app without its background workers: the API tests arrange conversations
    directly, and the follow-up (or the bot's hand-off) must not open tickets for them
    behind the test's back. `test_live` starts the workers."""
    return await make_client(run_workers=False)
