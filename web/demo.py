"""The demo shop page that embeds the widget (only with `switchboard demo`)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from conversations.models import ChannelKind, Inbox
from switchboard.appkeys import DB

DEMO_LOGINS = web.AppKey("demo_logins", list)


async def demo_page(request: web.Request) -> web.StreamResponse:
    async with request.config_dict[DB].reading() as session:
        inbox = (
            await session.execute(
                select(Inbox).where(Inbox.kind == ChannelKind.WEBCHAT).order_by(Inbox.id).limit(1)
            )
        ).scalar_one()
    logins: list[Any] = request.config_dict.get(DEMO_LOGINS, [])
    return aiohttp_jinja2.render_template(
        "demo.html", request, {"public_key": inbox.public_key, "logins": logins}
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/demo", demo_page)
