"""Widget uploads: type by content, safe names, bounded reads, per-visitor access
(SECURITY.md 4: 11, 24, 27, 40; rows 18, 20, 22, 32, 36)."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from conversations.models import Attachment
from switchboard.tx import Database
from tests.conftest import AppClient, ClientFactory
from tests.security.support import (
    agent_token,
    attachment_row,
    bearer,
    multipart_file,
    new_visitor,
    open_widget,
    send_text,
    stored_texts,
    tiny_png,
    upload,
    webchat_inbox,
)


async def attachment_count(db: Database) -> int:
    async with db.reading() as session:
        count: int = (await session.execute(select(func.count(Attachment.id)))).scalar_one()
    return count


async def download(
    client: AppClient, attachment_id: str, token: str | None
) -> aiohttp.ClientResponse:
    headers = {"X-Visitor-Token": token} if token is not None else {}
    return await client.get(f"/widget/attachments/{attachment_id}", headers=headers)


async def test_png_is_served_only_to_its_visitor_and_only_once_attached(
    client: AppClient, db: Any
) -> None:
    owner, _ = await new_visitor(client)
    other, _ = await new_visitor(client)
    # Both visitors have a conversation, so a 404 below is about the file, not a missing chat.
    owner_ws, other_ws = await open_widget(client, owner), await open_widget(client, other)
    assert (await send_text(owner_ws, "owner-0001", "here is a screenshot"))["type"] == "ack"
    assert (await send_text(other_ws, "other-0001", "hello"))["type"] == "ack"

    png = tiny_png()
    status, stored = await upload(client, owner, png)
    assert status == 201, stored
    assert stored["content_type"] == "image/png"
    assert stored["filename"] == "photo.png"
    assert stored["size"] == len(png)
    attachment_id = stored["attachment_id"]

    assert (await download(client, attachment_id, owner)).status == 404  # not attached yet

    assert (await send_text(owner_ws, "owner-0002", "", [attachment_id]))["type"] == "ack"
    served = await download(client, attachment_id, owner)
    assert served.status == 200
    assert await served.read() == png
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["Content-Disposition"].startswith("attachment;")
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]

    assert (await download(client, attachment_id, other)).status == 404
    assert (await download(client, attachment_id, None)).status == 401
    assert (await download(client, "att_" + "A" * 24, owner)).status == 404
    await owner_ws.close()
    await other_ws.close()


SVG_SCRIPT = (
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
)
DANGEROUS: list[tuple[str, bytes]] = [
    ("cat.png", b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"),
    ("cat.png", b"  \n<HTML><SCRIPT>alert(1)</SCRIPT></HTML>"),
    ("logo.svg", SVG_SCRIPT),
    ("logo.png", b'<?xml version="1.0"?>\n' + SVG_SCRIPT),
    ("logo.png", b"<!-- a comment first -->" + SVG_SCRIPT),
    ("shell.phtml", b"<?php system($_GET['c']); ?>\n"),
    ("shell.png", b"<?= `id` ?>\n"),
    (
        "setup.exe",
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 48 + b"PE\x00\x00",
    ),
    ("page.png", b"<iframe src=https://evil.example></iframe>"),
    ("padded.png", b" " * 5000 + b"<script>alert(1)</script>"),
    ("archive.png", b"PK\x03\x04" + b"\x00" * 60),
]


async def test_dangerous_files_are_refused_by_their_content(client: AppClient, db: Any) -> None:
    token, _ = await new_visitor(client)
    for filename, data in DANGEROUS:
        status, answer = await upload(
            client,
            token,
            data,
            disposition=f'form-data; name="file"; filename="{filename}"',
            content_type="image/png",
        )
        assert status == 400, (filename, data[:40], answer)
        assert answer["error"]["code"] == "file_type", filename
    assert await attachment_count(db) == 0
    # The same request with a real image is taken.
    status, answer = await upload(client, token, tiny_png(), content_type="image/png")
    assert status == 201, answer
    # Plain text is accepted, and is stored as text whatever it was called.
    status, answer = await upload(
        client,
        token,
        b"order 1234, arrived broken\n",
        disposition='form-data; name="file"; filename="notes.html"',
    )
    assert status == 201, answer
    assert (answer["content_type"], answer["filename"]) == ("text/plain", "notes.txt")


async def test_oversized_upload_is_413_and_read_no_further(
    make_client: ClientFactory, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(upload_max_bytes=1024)
    token, _ = await new_visitor(client)
    png = tiny_png()
    assert (await upload(client, token, png))[0] == 201  # under the cap

    # Spy on what the handler pulls out of the request.
    pulled: list[int] = []
    original = aiohttp.BodyPartReader.read_chunk

    async def counting_read_chunk(self: aiohttp.BodyPartReader, size: int = 8192) -> bytes:
        chunk = await original(self, size)
        pulled.append(len(chunk))
        return chunk

    monkeypatch.setattr(aiohttp.BodyPartReader, "read_chunk", counting_read_chunk)

    status, answer = await upload(client, token, png + b"\x00" * 2048)
    assert status == 413
    assert answer["error"]["code"] == "file_too_large"

    # A large body sent chunked (no Content-Length to refuse it by): reading stops at the cap.
    pulled.clear()
    body, headers = multipart_file(png + b"\x00" * (3 * 1024 * 1024))

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16384):
            yield body[start : start + 16384]

    response = await client.post(
        "/widget/upload", data=stream(), headers={**headers, "X-Visitor-Token": token}
    )
    assert response.status == 413
    assert 0 < sum(pulled) <= 1024 + 65536
    # Declared too large: refused before reading.
    pulled.clear()
    response = await client.post(
        "/widget/upload", data=body, headers={**headers, "X-Visitor-Token": token}
    )
    assert response.status == 413
    assert sum(pulled) == 0
    assert await attachment_count(db) == 1


HOSTILE_NAMES = [
    ('filename="../../etc/passwd"', "passwd.png"),
    ('filename="..\\\\..\\\\windows\\\\win.ini"', "win.png"),
    ("filename*=UTF-8''..%2F..%2Fetc%2Fpasswd", "passwd.png"),
    ("filename*=UTF-8''evil%00.php", "evil.png"),
    ("filename*=UTF-8''invoice%E2%80%AEgpj.exe", "invoicegpj.png"),
    ("filename*=UTF-8''report%0D%0AContent-Type%3A%20text%2Fhtml.pdf", "html.png"),
    ("filename*=UTF-8''%E2%81%A6isolate%E2%81%A9%E2%80%8Fname.exe", "isolatename.png"),
    ('filename=".."', "file.png"),
]


@pytest.mark.parametrize(("filename_param", "expected"), HOSTILE_NAMES)
async def test_hostile_file_names_are_neutralised(
    client: AppClient, db: Any, filename_param: str, expected: str
) -> None:
    token, _ = await new_visitor(client)
    status, answer = await upload(
        client, token, tiny_png(), disposition=f'form-data; name="file"; {filename_param}'
    )
    assert status == 201, answer
    row = await attachment_row(db, answer["attachment_id"])
    assert row is not None
    assert answer["filename"] == row.filename == expected
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in row.filename)


async def test_a_message_cannot_claim_another_visitors_upload(client: AppClient, db: Any) -> None:
    owner, _ = await new_visitor(client)
    thief, _ = await new_visitor(client)
    status, stored = await upload(client, owner, tiny_png())
    assert status == 201
    attachment_id = stored["attachment_id"]
    # An agent's upload to the same inbox is not the visitor's either.
    inbox = await webchat_inbox(db)
    body, headers = multipart_file(tiny_png())
    agent_upload = await client.post(
        f"/api/v1/uploads?inbox_id={inbox.id}",
        data=body,
        headers={**headers, **bearer(await agent_token(db))},
    )
    assert agent_upload.status == 201
    agent_attachment = (await agent_upload.json())["attachment_id"]

    thief_ws = await open_widget(client, thief)
    for n, stolen in enumerate((attachment_id, agent_attachment)):
        answer = await send_text(thief_ws, f"steal-{n:04d}", "mine now", [stolen])
        assert answer["type"] == "error"
        assert answer["code"] == "unknown_attachment"
    await thief_ws.close()
    assert await stored_texts(db) == []
    row = await attachment_row(db, attachment_id)
    assert row is not None and row.message_id is None and row.conversation_id is None

    # The owner can attach it.
    owner_ws = await open_widget(client, owner)
    assert (await send_text(owner_ws, "mine-0001", "my file", [attachment_id]))["type"] == "ack"
    await owner_ws.close()
    row = await attachment_row(db, attachment_id)
    assert row is not None and row.message_id is not None


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable", "gzip"])
async def test_transfer_encoded_parts_are_refused(
    client: AppClient, db: Any, encoding: str
) -> None:
    import base64

    token, _ = await new_visitor(client)
    png = tiny_png()
    encoded = base64.b64encode(png)
    status, answer = await upload(
        client, token, encoded, extra_headers=f"Content-Transfer-Encoding: {encoding}\r\n"
    )
    assert status == 400, answer
    assert await attachment_count(db) == 0
    # The same part without the transfer encoding (raw bytes) is taken.
    status, answer = await upload(client, token, png)
    assert status == 201, answer


async def test_one_visitor_cannot_upload_without_limit(client: AppClient, db: Any) -> None:
    """A per-visitor quota: past 20 files in 10 minutes, 429 with Retry-After, nothing
    stored; another visitor is unaffected. The cap message speaks in real units."""
    flooder, _ = await new_visitor(client)
    other, _ = await new_visitor(client)
    png = tiny_png()
    for _ in range(20):
        assert (await upload(client, flooder, png))[0] == 201
    body, headers = multipart_file(png)
    refused = await client.post(
        "/widget/upload", data=body, headers={**headers, "X-Visitor-Token": flooder}
    )
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert await attachment_count(db) == 20
    assert (await upload(client, other, png))[0] == 201


async def test_the_size_cap_is_stated_in_units_people_read(make_client: ClientFactory) -> None:
    client = await make_client(upload_max_bytes=1024)
    token, _ = await new_visitor(client)
    status, answer = await upload(client, token, tiny_png() + b"\x00" * 4096)
    assert status == 413
    assert answer["error"]["message"] == "file is larger than 1 KiB"
