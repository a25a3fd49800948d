"""Uploaded files: the type is decided by content, never by the name or the client.

Only types that are safe to hand back are accepted (images that browsers cannot run
script in, PDF, plain text). Files get generated ids; the display name is cleaned of
path parts, control and bidi-override characters.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass

import filetype
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import Attachment, AttachmentBlob
from switchboard.errors import InvalidInput, TooLarge

ALLOWED_TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}
# Channel files we cannot type are kept as they came, as downloads only.
OPAQUE = "application/octet-stream"
# Text that a browser might treat as markup if it ever sniffed it. "<?" covers XML
# prologs and PHP (`<?php`, `<?=`: a .phtml must not come in as "plain text").
_MARKUP_HINTS = (b"<html", b"<script", b"<svg", b"<?", b"<!doctype", b"<body", b"<iframe")
_SNIFF_WINDOW = 65536


@dataclass(frozen=True)
class CheckedUpload:
    content_type: str
    filename: str


def sniff_content_type(data: bytes) -> str | None:
    """The accepted type these bytes really are, or None."""
    kind = filetype.guess(data[:8192])
    if kind is not None:
        return kind.mime if kind.mime in ALLOWED_TYPES and kind.mime != "text/plain" else None
    head = data[:_SNIFF_WINDOW].lower()
    if b"\x00" in head or any(h in head for h in _MARKUP_HINTS):
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/plain"


def clean_filename(name: str, content_type: str) -> str:
    """A display name with no path, controls or direction overrides, ending in its real type."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if unicodedata.category(c) not in {"Cc", "Cf", "Cs", "Co"})
    base = base.strip(" .")[:120] or "file"
    if content_type == OPAQUE:
        # Keep the sender's extension (it says what the file is) minus anything odd.
        stem, dot, ext = base.rpartition(".")
        ext = "".join(c for c in ext if c.isalnum())[:10]
        return f"{stem or 'file'}.{ext}" if dot and ext else base
    extension = ALLOWED_TYPES[content_type]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return f"{stem or 'file'}{extension}"


def human_size(size: int) -> str:
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


def too_large(max_bytes: int) -> TooLarge:
    return TooLarge(f"file is larger than {human_size(max_bytes)}", code="file_too_large")


def check_upload(filename: str, data: bytes, max_bytes: int) -> CheckedUpload:
    if len(data) > max_bytes:
        raise too_large(max_bytes)
    if not data:
        raise InvalidInput("file is empty", code="empty_file")
    content_type = sniff_content_type(data)
    if content_type is None:
        raise InvalidInput(
            "this file type is not accepted (images, PDF and plain text are)", code="file_type"
        )
    return CheckedUpload(content_type, clean_filename(filename, content_type))


def check_channel_file(filename: str, data: bytes, declared_type: str | None) -> CheckedUpload:
    """A file a customer sent through their channel. Unlike a widget upload it is never
    refused (that would lose what they sent): a type we do not recognise is kept as
    opaque bytes, served only as a download. `declared_type` is the sender's claim and
    is not trusted."""
    content_type = sniff_content_type(data) if data else None
    if content_type is not None:
        return CheckedUpload(content_type, clean_filename(filename, content_type))
    return CheckedUpload(OPAQUE, clean_filename(filename, OPAQUE))


async def do_store_attachment(
    session: AsyncSession,
    *,
    inbox_id: int,
    upload: CheckedUpload,
    data: bytes,
    customer_id: int | None = None,
    user_id: int | None = None,
) -> Attachment:
    attachment = Attachment(
        id="att_" + secrets.token_urlsafe(18),
        inbox_id=inbox_id,
        uploader_customer_id=customer_id,
        uploader_user_id=user_id,
        filename=upload.filename,
        content_type=upload.content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    session.add(attachment)
    await session.flush()
    session.add(AttachmentBlob(attachment_id=attachment.id, data=data))
    return attachment


async def load_attachment(
    session: AsyncSession, attachment_id: str
) -> tuple[Attachment, bytes] | None:
    row = (
        await session.execute(
            select(Attachment, AttachmentBlob.data)
            .join(AttachmentBlob, AttachmentBlob.attachment_id == Attachment.id)
            .where(Attachment.id == attachment_id)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])
