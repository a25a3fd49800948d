"""A fake Slack Web API per test, and the real app wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.channels.slack.support import SECRET, TOKEN
from tests.conftest import AppClient, ClientFactory
from tests.fakes.slack_api import FakeSlackApi


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi(token=TOKEN).serve() as fake:
        yield fake


@pytest.fixture
async def slack_client(make_client: ClientFactory, slack_api: FakeSlackApi) -> AppClient:
    """The real app with the default Slack inbox pointing at the fake."""
    return await make_client(
        slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=slack_api.api_url
    )
