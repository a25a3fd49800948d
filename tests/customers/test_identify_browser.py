"""A shop page identifies its logged-in user through the loader's data attributes, in a
real browser; `Switchboard.logout()` makes the next visitor anonymous."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Page, expect
from sqlalchemy import select

from conversations.models import Conversation, Inbox
from customers.identify import do_ensure_identity_secret
from customers.models import Customer
from switchboard.appkeys import DB
from switchboard.crypto import CredentialBox
from tests.browser.conftest import browser, chromium, hub  # noqa: F401  # fixtures
from tests.conftest import SECRET
from tests.customers.support import signed_claims, until

pytestmark = pytest.mark.browser


async def shop_page(
    page: Page, shop_server: Any, base: str, public_key: str, claims: dict[str, Any]
) -> None:
    """The shop's page embedding us, from a server of its own (another origin)."""
    attributes = {
        "data-user-id": claims["user_id"],
        "data-user-hash": claims["identifier_hash"],
        "data-user-email": claims["email"],
        "data-email-hash": claims["email_hash"],
        "data-user-name": claims["name"],
    }
    tags = " ".join(f'{k}="{v}"' for k, v in attributes.items())
    html = (
        "<!doctype html><html><body><h1>Shop</h1>"
        f'<script src="{base}/widget.js" data-inbox="{public_key}" {tags} async></script>'
        "</body></html>"
    )

    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", serve)
    server = await shop_server(app)
    await page.goto(str(server.make_url("/")))


async def send(page: Page, text: str) -> None:
    launcher = page.locator("#switchboard-launcher")
    if await launcher.get_attribute("aria-expanded") != "true":
        await launcher.click()
    frame = page.frame_locator("#switchboard-frame")
    await expect(frame.locator("body[data-state='live']")).to_be_attached(timeout=10_000)
    await frame.locator("#widget-input").fill(text)
    await frame.locator("#widget-send").click()
    await expect(frame.locator("#widget-messages")).to_contain_text(text, timeout=10_000)


async def thread_keys(db: Any) -> list[str]:
    async with db.reading() as session:
        rows = await session.execute(select(Conversation.thread_key).order_by(Conversation.id))
        return list(rows.scalars())


async def has_threads(db: Any, n: int) -> bool:
    return len(await thread_keys(db)) >= n


async def test_the_shop_identifies_its_user_and_logs_them_out(
    browser: Any,  # noqa: F811
    hub: Any,  # noqa: F811
    aiohttp_server: Any,
) -> None:
    db = hub.app[DB]
    base = str(hub.make_url("")).rstrip("/")
    async with db.reading() as session:
        public_key = (
            await session.execute(select(Inbox.public_key).where(Inbox.kind == "webchat"))
        ).scalar_one()
    box = CredentialBox(SECRET)
    secret = await db.run(lambda s: do_ensure_identity_secret(s, "default", box))
    claims = signed_claims(secret, "shopper-7", "Rae@Example.com", "Rae Quinn")

    context = await browser.new_context()
    page = await context.new_page()
    await shop_page(page, aiohttp_server, base, public_key, claims)
    await send(page, "Hi, it's Rae")
    await until(lambda: has_threads(db, 1))
    assert await thread_keys(db) == ["user:shopper-7"]
    async with db.reading() as session:
        (customer,) = (await session.execute(select(Customer))).scalars()
    assert (customer.name, customer.verified_email) == ("Rae Quinn", "rae@example.com")

    # The shop's logout: the frame starts over as a stranger, the old chat not shown.
    await page.evaluate("window.Switchboard.logout()")
    frame = page.frame_locator("#switchboard-frame")
    await expect(frame.locator("body[data-state='live']")).to_be_attached(timeout=10_000)
    await expect(frame.locator("#widget-messages")).not_to_contain_text("Hi, it's Rae")
    await send(page, "just browsing")
    await until(lambda: has_threads(db, 2))
    keys = await thread_keys(db)
    assert keys[0] == "user:shopper-7" and keys[1].startswith("v_") and len(keys) == 2
    await context.close()
