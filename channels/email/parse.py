"""One RFC 822 message to what the hub stores: pure, no I/O, never raises on bad input.

`parse_email(raw)` is what the adapter, the transports' tests and the benchmark call.
The message is parsed with `policy.compat32`, which keeps 8-bit header bytes (as
surrogates) for `decode` to read with the right charset; each part is decoded on its
own, so one broken part costs that part, never the mail.
"""

from __future__ import annotations

import email
import hashlib
import logging
import mimetypes
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from channels.base import InboundFile
from channels.email.authresults import verified_sender
from channels.email.decode import (
    decode_8bit,
    decode_bytes,
    decode_raw_header,
    header_value,
    raw_header_values,
)
from channels.email.html import html_to_text, sanitise_html
from channels.email.loops import automatic_reasons, bounce_reasons
from channels.email.quotes import strip_reply

log = logging.getLogger(__name__)

# Intake takes at most 10 attachments per message (conversations.service) and 10,000
# characters of text (conversations.text); the rest is kept as files, with room left
# for the notes intake appends.
MAX_FILES = 10
MAX_TEXT_CHARS = 9_000
MAX_IDS = 50  # References chains are trimmed by clients too (RFC 5322 §3.6.4)
_ID = re.compile(r"<([^<>\s]{1,998})>")


@dataclass(frozen=True)
class ParsedEmail:
    """What one mail says, decoded; the adapter turns it into an `InboundMessage`."""

    message_id: str | None  # normalised: no brackets, lower case
    message_id_header: str | None  # as written
    external_id: str  # the dedupe key within an inbox (the Message-ID, or a digest)
    sender: str  # lower-case address; "" when the mail names none
    sender_name: str | None
    subject: str | None
    text: str
    html: str | None
    files: tuple[InboundFile, ...] = ()
    automatic: tuple[str, ...] = ()  # why a machine sent it; empty for a person
    bounce: bool = False
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    # To, Cc, Delivered-To, X-Original-To and the envelope, as written (case kept).
    recipients: tuple[str, ...] = ()
    bounced_message_ids: tuple[str, ...] = ()  # ids quoted by a delivery report
    verified_email: str | None = None
    # The topmost Authentication-Results, kept with the message for the record: why a
    # sender was (or was not) taken as verified.
    authentication_results: str | None = None
    sent_at: datetime | None = None


def normalise_message_id(value: str | None) -> str | None:
    """`<Abc@Host>` → `abc@host`: the form we compare and hash."""
    if not value:
        return None
    found = _ID.search(value)
    token = found.group(1) if found else value.strip().strip("<>")
    # No controls, surrogates (undecodable 8-bit bytes) or spaces: ids are compared,
    # hashed and stored as JSON, and a mangled one matches nothing anyway.
    if not token or not all(c.isprintable() and not c.isspace() for c in token):
        return None
    return token.lower()


def message_ids(values: list[str]) -> tuple[str, ...]:
    """Every id in In-Reply-To/References headers, normalised, in order, at most 50 (the
    newest: the end of a References chain is the closest parent)."""
    found: list[str] = []
    for value in values:
        ids = _ID.findall(value)
        if not ids and value.strip():
            ids = value.split()[:1]
        for raw_id in ids:
            normalised = normalise_message_id(raw_id)
            if normalised and normalised not in found:
                found.append(normalised)
    return tuple(found[-MAX_IDS:])


def message_id_digest(message_id: str) -> str:
    """How `email_message_ids` stores an id: ids may be longer than an index allows."""
    return hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()


def key_for(message_id: str) -> str:
    """A Message-ID as a key that fits a 255-character column."""
    return message_id if len(message_id) <= 240 else "sha256:" + message_id_digest(message_id)


@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    files: list[InboundFile] = field(default_factory=list)
    bounced_ids: list[str] = field(default_factory=list)


# HTML beyond this is kept as a file, not converted (see parse_email).
MAX_HTML_CHARS = 256 * 1024


def parse_email(
    raw: bytes,
    *,
    envelope: Mapping[str, str] | None = None,
    authserv_id: str | None = None,
) -> ParsedEmail:
    """Decode one mail. `envelope` holds what an SMTP transport saw (`x-envelope-from`,
    `x-envelope-to`), if it says; `authserv_id` pins the Authentication-Results we trust."""
    envelope = {k.lower(): v for k, v in (envelope or {}).items()}
    msg = email.message_from_bytes(raw, policy=compat32)
    hint = _body_charset(msg)
    message_id_header = header_value(msg, "Message-ID")
    message_id = normalise_message_id(message_id_header)
    external_id = key_for(message_id) if message_id else "sha256:" + hashlib.sha256(raw).hexdigest()
    sender, sender_name = _sender(msg, hint)
    envelope_from = envelope.get("x-envelope-from")

    body = _Body()
    for part in _leaves(msg, body):
        _take_part(part, body, hint)
    html_source = "\n".join(body.html)
    oversized_html = len(html_source) > MAX_HTML_CHARS
    if oversized_html:
        # Converting HTML is pure Python on the event loop: megabytes of it would stall
        # every socket for seconds. The whole original goes along as a download.
        body.files.insert(
            0, InboundFile("message.html", "text/html", data=html_source.encode("utf-8"))
        )
        body.html = [html_source[:MAX_HTML_CHARS]]
        html_source = body.html[0]
    text, files = _text_and_files(body)
    if oversized_html:
        text = (text + "\n" if text else "") + (
            "[the HTML of this email is longer; the full message is attached as message.html]"
        )
    html = sanitise_html(html_source) if html_source.strip() else None

    recipients = _addresses(
        msg,
        ("To", "Cc", "Delivered-To", "X-Original-To"),
        hint,
        extra=envelope.get("x-envelope-to", ""),
    )
    authentication = raw_header_values(msg, "Authentication-Results")
    topmost = authentication[0] if authentication else None
    return ParsedEmail(
        message_id=message_id,
        message_id_header=message_id_header,
        external_id=external_id,
        sender=sender,
        sender_name=sender_name,
        subject=header_value(msg, "Subject", hint),
        text=text,
        html=html or None,
        files=tuple(files),
        automatic=tuple(automatic_reasons(msg, sender, envelope_from)),
        bounce=bool(bounce_reasons(msg, sender, envelope_from)),
        in_reply_to=message_ids(raw_header_values(msg, "In-Reply-To")),
        references=message_ids(raw_header_values(msg, "References")),
        recipients=recipients,
        bounced_message_ids=tuple(dict.fromkeys(body.bounced_ids)),
        # Our own SMTP ingress adds no Authentication-Results: whatever such header a mail
        # brings through it was written by the sender, so it vouches for nothing.
        verified_email=None
        if envelope.get("x-received-via") == "smtp"
        else verified_sender(sender, topmost, authserv_id),
        authentication_results=header_value(msg, "Authentication-Results"),
        sent_at=_date(msg),
    )


def _body_charset(msg: Message) -> str | None:
    """The first declared text charset: the best guess for raw 8-bit headers."""
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            charset = _charset(part)
            if charset:
                return charset
    return None


def _address_list(values: list[str], hint: str | None) -> list[tuple[str, str]]:
    readable = [
        decode_8bit(v.encode("ascii", "surrogateescape"), hint) if not v.isascii() else v
        for v in values
    ]
    try:
        return [(name, addr) for name, addr in getaddresses(readable) if addr]
    except Exception:
        return []


def _clean_address(addr: str, *, lower: bool = True) -> str | None:
    addr = addr.strip().lower() if lower else addr.strip()
    if "@" not in addr or len(addr) > 254 or any(c.isspace() or ord(c) < 32 for c in addr):
        return None
    return addr


def _sender(msg: Message, hint: str | None) -> tuple[str, str | None]:
    for name in ("From", "Sender"):
        for display, addr in _address_list(raw_header_values(msg, name), hint):
            cleaned = _clean_address(addr)
            if cleaned:
                decoded = decode_raw_header(display, hint) if display else ""
                return cleaned, (decoded[:200] or None)
    return "", None


def _addresses(
    msg: Message, names: tuple[str, ...], hint: str | None, extra: str = ""
) -> tuple[str, ...]:
    values = [v for name in names for v in raw_header_values(msg, name)]
    if extra:
        values.append(extra)
    found = []
    for _display, addr in _address_list(values, hint):
        # Case kept: a reply token in `support+<token>@` is case-sensitive.
        cleaned = _clean_address(addr, lower=False)
        if cleaned and cleaned not in found:
            found.append(cleaned)
    return tuple(found[:100])


def _date(msg: Message) -> datetime | None:
    value = header_value(msg, "Date")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else None


def _leaves(part: Message, body: _Body, in_report: bool = False) -> Iterator[Message]:
    """The parts that carry content, depth first. A delivery report's machine parts
    (status, returned headers, returned message) give the ids of the bounced mail."""
    ctype = part.get_content_type()
    if part.get_content_maintype() == "multipart":
        payload = part.get_payload()
        if not isinstance(payload, list):
            yield part  # a multipart without its boundary: read it as text
            return
        for sub in payload:
            if isinstance(sub, Message):
                yield from _leaves(sub, body, in_report or ctype == "multipart/report")
        return
    if in_report and ctype in ("message/rfc822", "message/global", "text/rfc822-headers"):
        body.bounced_ids.extend(_returned_ids(part))
        return
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        return
    yield part


def _returned_ids(part: Message) -> list[str]:
    try:
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            returned = payload[0]
        else:
            returned = HeaderParser(policy=compat32).parsestr(str(payload))
        found = normalise_message_id(header_value(returned, "Message-ID"))
    except Exception:
        return []
    return [found] if found else []


def _take_part(part: Message, body: _Body, hint: str | None) -> None:
    try:
        ctype = part.get_content_type()
        filename = _filename(part, hint)
        disposition = part.get_content_disposition()
        data = _payload_bytes(part)
        if (
            ctype in ("text/plain", "text/html")
            and disposition != "attachment"
            and filename is None
        ):
            text = decode_bytes(data, _charset(part))
            (body.plain if ctype == "text/plain" else body.html).append(text)
            return
        if not data:
            return
        body.files.append(
            InboundFile(
                filename=filename or _fallback_name(part, len(body.files) + 1),
                content_type=ctype,
                size=len(data),
                data=data,
            )
        )
    except Exception:
        # One part we cannot read must not cost the customer the rest of the mail.
        log.warning("an email part could not be read; skipped", exc_info=True)


def _payload_bytes(part: Message) -> bytes:
    if part.get_content_type().startswith("message/"):
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return inner[0].as_bytes(policy=compat32)
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _charset(part: Message) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:
        return None
    return str(charset) if charset else None


def _filename(part: Message, hint: str | None) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    if not name:
        return None
    return decode_raw_header(str(name), hint)[:200] or None


def _fallback_name(part: Message, n: int) -> str:
    ctype = part.get_content_type()
    if ctype in ("message/rfc822", "message/global"):
        return f"message-{n}.eml"
    extension = mimetypes.guess_extension(ctype) or ".bin"
    stem = "inline" if part.get("Content-ID") else "attachment"
    return f"{stem}-{n}{extension}"


def _text_and_files(body: _Body) -> tuple[str, list[InboundFile]]:
    plain = "\n\n".join(p.strip() for p in body.plain if p.strip())
    if plain:
        text = strip_reply(plain)
    elif body.html:
        text = strip_reply(html_to_text("\n".join(body.html)))
    else:
        text = ""
    files = list(body.files)
    notes = []
    if len(text) > MAX_TEXT_CHARS:
        # The full text goes along as a file: a long mail is shortened, never cut off.
        files.insert(0, InboundFile("message.txt", "text/plain", data=text.encode("utf-8")))
        text = text[:MAX_TEXT_CHARS].rstrip()
        notes.append("[the message is longer; the full text is attached as message.txt]")
    if len(files) > MAX_FILES:
        notes.append(
            f"[{len(files) - MAX_FILES} more attachments are not shown here; "
            "the original email is kept]"
        )
        files = files[:MAX_FILES]
    if notes:
        text = "\n\n".join([text, *notes]) if text else "\n\n".join(notes)
    return text, files
