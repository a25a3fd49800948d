"""Steps the browser journeys share."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

from tests.conftest import PASSWORD


async def log_in(page: Page, base: str, email: str, *, to: str = "/inbox") -> Page:
    """Sign in through the real login form and wait for the page it leads to."""
    await page.goto(f"{base}/login?next={to}")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url(f"{base}{to}**")
    return page


async def signed_in(context: Any, base: str, email: str, *, to: str = "/inbox") -> Page:
    """A new page of this browser context, signed in."""
    return await log_in(await context.new_page(), base, email, to=to)
