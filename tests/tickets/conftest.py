"""Fixtures for the ticket tests."""

from __future__ import annotations

import pytest

from tests.security.support import use_cheap_password_hashing


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_password_hashing(monkeypatch)
