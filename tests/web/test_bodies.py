"""Request bodies are read whole up to their cap, however the bytes arrive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from web.bodies import read_json_object
from web.middleware import error_middleware


async def _echo_size(request: web.Request) -> web.Response:
    data = await read_json_object(request, limit=1024 * 1024)
    return web.json_response({"chars": len(data["text"])})


async def test_a_large_json_body_arriving_in_pieces_is_read_whole(aiohttp_client: Any) -> None:
    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/echo", _echo_size)
    client = await aiohttp_client(app)
    # ~600 KB of escaped Chinese, sent in 64 KiB pieces with pauses between them: a
    # single `content.read(n)` would see only the first pieces and call it bad JSON.
    body = json.dumps({"text": "退款多久到账" * 17_000}).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]
            await asyncio.sleep(0.01)

    response = await client.post(
        "/echo", data=pieces(), headers={"Content-Type": "application/json"}
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["chars"] == 6 * 17_000


async def test_a_body_over_the_cap_is_refused(aiohttp_client: Any) -> None:
    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/echo", _echo_size)
    client = await aiohttp_client(app)
    body = json.dumps({"text": "x" * (1024 * 1024 + 10)}).encode()
    response = await client.post("/echo", data=body, headers={"Content-Type": "application/json"})
    assert response.status in (400, 413)
