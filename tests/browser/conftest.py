"""Browser tests: the real app on a real port, driven through Debian's Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from switchboard.app import create_app
from switchboard.settings import Settings
from tests.conftest import REQUIRE_SERVICES, SECRET

CHROMIUM = os.environ.get("SWITCHBOARD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        if REQUIRE_SERVICES:
            pytest.fail(f"Chromium is required at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


@pytest.fixture
async def hub(aiohttp_server: Any, tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Any]:
    """The hub with its demo page, on SQLite, served on a free loopback port."""
    path = tmp_path / "hub.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{path}", secret_key=SECRET, var_dir=tmp_path / "var"
    )
    server = await aiohttp_server(create_app(settings, demo_page=True))
    yield server


# Screenshots of the main pages, saved by the journeys for a person to review (issue 6):
# under var/screenshots/ (not committed), or SWITCHBOARD_SCREENSHOTS.
SCREENSHOTS = Path(os.environ.get("SWITCHBOARD_SCREENSHOTS", "var/screenshots"))


@pytest.fixture
def screenshot() -> Any:
    """`await screenshot(page, "inbox-conversation")` saves a full-page PNG and returns
    its path; the test fails if the page could not be captured."""

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async def take(page: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        png = await page.screenshot(path=str(path), full_page=True)
        assert len(png) > 1000, f"screenshot {name} is empty"
        return path

    return take
