"""Reading JSON request bodies: bounded, typed, and refused clearly when malformed."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from switchboard.errors import InvalidInput

API_BODY_LIMIT = 64 * 1024


async def read_capped(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None if it is longer than `limit`. `content.read(n)` returns
    what has arrived so far, not n bytes, so a large body must be read in a loop."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    while len(body) <= limit:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    return None if len(body) > limit else bytes(body)


async def read_json_object(request: web.Request, limit: int = API_BODY_LIMIT) -> dict[str, Any]:
    """The body as a JSON object. Requiring the JSON content type also keeps plain HTML
    forms on other sites (which cannot send it) from reaching these endpoints."""
    if request.content_type != "application/json":
        raise InvalidInput("send application/json", code="content_type")
    body = await read_capped(request, limit)
    if body is None:
        raise InvalidInput("request body too large", code="too_large")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidInput("body is not valid JSON", code="bad_json") from None
    if not isinstance(data, dict):
        raise InvalidInput("body must be a JSON object", code="bad_json")
    return data
