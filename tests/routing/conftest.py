"""Fixtures for the routing tests."""

from __future__ import annotations

import pytest

from tests.conftest import AppClient, ClientFactory
from tests.security.support import use_cheap_password_hashing


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_password_hashing(monkeypatch)


@pytest.fixture
async def client(make_client: ClientFactory) -> AppClient:
    """The app without background workers: tests run assignment passes themselves."""
    return await make_client(run_workers=False)
