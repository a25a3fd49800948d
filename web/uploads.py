"""Reading uploaded files from requests and handing stored files back, safely."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from conversations.attachments import too_large
from switchboard.errors import InvalidInput


async def read_upload(request: web.Request, max_bytes: int) -> tuple[str, bytes]:
    """The first file part of a multipart body, read with a hard cap (no base64 games:
    bytes are counted as they arrive, whatever the part's transfer encoding claims)."""
    if request.content_length is not None and request.content_length > max_bytes + 65536:
        raise too_large(max_bytes)
    if not request.content_type.startswith("multipart/"):
        raise InvalidInput("send the file as multipart/form-data")
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name != "file":
            continue
        if part.headers.get("Content-Transfer-Encoding", "").lower() not in ("", "binary", "8bit"):
            raise InvalidInput("transfer encodings are not accepted in uploads")
        chunks: list[bytes] = []
        size = 0
        while chunk := await part.read_chunk(65536):
            size += len(chunk)
            if size > max_bytes:
                raise too_large(max_bytes)
            chunks.append(chunk)
        return part.filename or "file", b"".join(chunks)
    raise InvalidInput("no file in the upload (field name: file)")


def attachment_response(meta: Any, data: bytes) -> web.Response:
    """Files go back as downloads that no browser will run: nosniff and a sandbox CSP."""
    return web.Response(
        body=data,
        content_type=meta.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(meta.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, max-age=3600",
        },
    )
