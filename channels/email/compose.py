"""Our outbound mail: threading headers, the reply marker, text and HTML, attachments.

Everything that reaches a header from outside (the customer's subject, a recipient,
a Message-ID they sent) is flattened to one line first: a subject that decoded to
"Hi\\nBcc: victim@…" must stay one Subject header (CPython CVE-2024-6923; FreeScout
GHSA-c76f-wggm-grcq).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

from channels.base import OutboundFile
from channels.email.decode import clean_header_text
from channels.email.quotes import REPLY_MARKER

_REPLY_PREFIX = re.compile(r"^\s*(?:re|aw|sv|回复|答复)\s*[:：]", re.IGNORECASE)
MAX_REFERENCES = 20


@dataclass(frozen=True)
class Reply:
    """One outbound mail, as the adapter knows it."""

    from_address: str
    from_name: str
    to: str
    subject: str
    text: str
    message_id: str  # with brackets
    reply_to: str | None = None
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    automatic: bool = False
    files: Sequence[OutboundFile] = field(default_factory=tuple)


def conversation_token(inbox_id: int, thread_key: str) -> str:
    """A stable, non-secret name for a thread in our Message-IDs. Not the reply token:
    Message-IDs travel in every References header of every forward, the token must not."""
    return hashlib.sha256(f"{inbox_id}:{thread_key}".encode()).hexdigest()[:20]


def our_message_id(token: str, message_id: int, domain: str) -> str:
    # Stable across attempts: a mail sent twice after an unclear failure carries one
    # Message-ID, which many clients show once.
    return f"<conv-{token}.msg-{message_id}@{domain}>"


def reply_subject(original: str | None, tag: str | None = None) -> str:
    """ "Re: <their subject>", one line, with our conversation tag once."""
    subject = clean_header_text(original or "")[:300] or "Your message"
    if not _REPLY_PREFIX.match(subject):
        subject = f"Re: {subject}"
    if tag and tag not in subject:
        subject = f"{subject} {tag}"
    return subject


def _bracketed(message_id: str) -> str:
    cleaned = clean_header_text(message_id).strip("<>").replace(" ", "")
    return f"<{cleaned}>"


def reply_html(text: str) -> str:
    """The HTML part: our text, escaped (it is ours, but may quote the customer)."""
    return (
        "<!doctype html><html><body>"
        f'<p style="color:#888888;font-size:12px">{html.escape(REPLY_MARKER)}</p>'
        f'<div style="white-space:pre-wrap">{html.escape(text)}</div>'
        "</body></html>"
    )


def compose(reply: Reply, now: datetime) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = formataddr((clean_header_text(reply.from_name), reply.from_address))
    msg["To"] = clean_header_text(reply.to)
    msg["Subject"] = clean_header_text(reply.subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = reply.message_id
    if reply.reply_to:
        msg["Reply-To"] = clean_header_text(reply.reply_to)
    if reply.in_reply_to:
        msg["In-Reply-To"] = _bracketed(reply.in_reply_to)
    references = [_bracketed(r) for r in reply.references if r]
    if len(references) > MAX_REFERENCES:  # the first and the newest, as RFC 5322 suggests
        references = references[:1] + references[-(MAX_REFERENCES - 1) :]
    if references:
        msg["References"] = " ".join(references)
    if reply.automatic:
        # RFC 3834: responders must not answer this; Exchange: no out-of-office back.
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(f"{REPLY_MARKER}\n\n{reply.text}\n")
    msg.add_alternative(reply_html(reply.text), subtype="html")
    for file in reply.files:
        maintype, _, subtype = (file.content_type or "application/octet-stream").partition("/")
        msg.add_attachment(
            file.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=clean_header_text(file.filename) or "attachment",
        )
    return msg
