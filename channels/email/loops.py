"""Automatic mail: auto-replies, bounces, lists and loops, which are kept but never answered.

RFC 3834 says never to answer mail whose `Auto-Submitted` is anything but `no`; the
other headers are what real auto-responders, list servers and MTAs send instead (Zammad's
AutoResponseCheck, frappe/helpdesk#3628). Answering any of them is how two responders
end up mailing each other forever (osTicket#1041, FreeScout#3670, Chatwoot#5131).
"""

from __future__ import annotations

from email.message import Message

from channels.email.decode import header_value, header_values

_BULK_PRECEDENCE = {"bulk", "junk", "list"}
_SYSTEM_SENDERS = {"mailer-daemon", "postmaster"}


def _first(msg: Message, name: str) -> str | None:
    # Decoded and flattened: the reasons are kept with the message, for the record.
    value = header_value(msg, name)
    return value.strip() if value is not None else None


def automatic_reasons(msg: Message, sender: str, envelope_from: str | None = None) -> list[str]:
    """Why this mail was sent by a machine (empty: a person wrote it).

    `envelope_from` is the SMTP MAIL FROM when the transport knows it ("" for the null
    sender that bounces use); None when it does not."""
    reasons = []
    auto_submitted = _first(msg, "Auto-Submitted")
    if auto_submitted is not None and auto_submitted.split(";")[0].strip().lower() != "no":
        reasons.append(f"Auto-Submitted: {auto_submitted[:60]}")
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "X-Loop"):
        value = _first(msg, name)
        if value is not None:
            reasons.append(f"{name}: {value[:60]}")
    precedence = (_first(msg, "Precedence") or "").lower()
    if precedence in _BULK_PRECEDENCE:
        reasons.append(f"Precedence: {precedence}")
    for name in ("List-Id", "List-Unsubscribe"):
        if _first(msg, name) is not None:
            reasons.append(f"{name} present")
    reasons.extend(bounce_reasons(msg, sender, envelope_from))
    return reasons


def bounce_reasons(msg: Message, sender: str, envelope_from: str | None = None) -> list[str]:
    """Why this is a delivery report: multipart/report, a MAILER-DAEMON or postmaster
    sender, or the null return path (`Return-Path: <>`, or MAIL FROM:<> as our own
    ingress saw it)."""
    reasons = []
    if msg.get_content_type() == "multipart/report":
        reasons.append("multipart/report")
    local = sender.partition("@")[0].lower()
    if local in _SYSTEM_SENDERS:
        reasons.append(f"sender {local}")
    return_paths = header_values(msg, "Return-Path")
    if return_paths and return_paths[0].strip() in ("<>", ""):
        reasons.append("empty Return-Path")
    elif envelope_from is not None and envelope_from.strip() in ("", "<>"):
        reasons.append("empty envelope sender")
    return reasons
