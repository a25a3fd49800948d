"""The email channel: raw RFC 822 bytes in (from the SMTP ingress or IMAP), SMTP out.

Config: `address` (the support address), `smtp_host`, `smtp_port`, `smtp_username`,
`smtp_tls` ("starttls" | "ssl" | "none"), optional `smtp_cafile` (a private CA for an
internal relay), `from_name`, `authserv_id` (our MTA's Authentication-Results id);
credentials: `smtp_password`. Threading context (subject, reply token, References)
comes from the hooks in `channels.email.threading`, through `OutboundMessage.extra`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import SMTP, compat32
from typing import Any, ClassVar

import aiosmtplib
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPException,
    SMTPRecipientRefused,
    SMTPResponseException,
    SMTPSenderRefused,
)

from channels.base import (
    ChannelEvent,
    Delivery,
    DeliveryFailed,
    DeliveryReceipt,
    Ignored,
    InboundFile,
    InboundMessage,
    InboxSetup,
    OutboundMessage,
    RawInbound,
)
from channels.email.compose import Reply, compose, conversation_token, our_message_id
from channels.email.decode import header_value
from channels.email.parse import ParsedEmail, key_for, normalise_message_id, parse_email

AUTOMATIC_AUTHORS = ("system", "bot")


# Who claimed to be whom and was not believed: kept apart so operators can watch it.
audit = logging.getLogger("switchboard.audit")


class DeliveryOutcomeUnknown(Exception):
    """The connection failed after our message was handed over: the server may have
    queued it. Not a `DeliveryFailed`, so the outbox marks the reply "unconfirmed" for
    an agent to check instead of sending it again (a customer mailed twice is worse)."""


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


class EmailAdapter:
    kind: ClassVar[str] = "email"
    # A repeated SMTP send is a second mail in the customer's inbox.
    idempotent: ClassVar[bool] = False
    accepts_webhooks: ClassVar[bool] = False

    def __init__(self, setup: InboxSetup) -> None:
        self.setup = setup
        config = setup.config
        self.address = str(config.get("address") or "").strip().lower()
        local, _, domain = self.address.rpartition("@")
        self.local = local.split("+", 1)[0]
        self.domain = domain or "localhost"
        self.from_name = str(config.get("from_name") or setup.name or "Support")
        self.authserv_id = str(config.get("authserv_id") or "") or None
        self.smtp_host = str(config.get("smtp_host") or "localhost")
        self.smtp_tls = str(config.get("smtp_tls") or "starttls").lower()
        port = config.get("smtp_port")
        self.smtp_port = int(port) if port else {"ssl": 465, "starttls": 587}.get(self.smtp_tls, 25)
        self.smtp_username = str(config.get("smtp_username") or "") or None
        self.smtp_password = setup.credentials.get("smtp_password") or None
        self.smtp_cafile = str(config.get("smtp_cafile") or "") or None
        self.timeout = float(config.get("smtp_timeout") or 30)

    # --- inbound -------------------------------------------------------------------------

    def verify(self, raw: RawInbound, now: datetime) -> None:
        # The transports authenticate (SMTP RCPT checks, IMAP login); the bytes carry no
        # signature we could check. Who the sender is comes from Authentication-Results.
        return None

    def delivery(self, raw: RawInbound) -> Delivery:
        # Headers only: the transports call this for every mail before answering.
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw.body, headersonly=True)
        message_id = normalise_message_id(header_value(headers, "Message-ID"))
        if message_id is None:
            return Delivery(dedupe_key="sha256:" + hashlib.sha256(raw.body).hexdigest())
        return Delivery(dedupe_key=f"msgid:{key_for(message_id)}")

    def parse(self, raw: RawInbound) -> Sequence[ChannelEvent]:
        parsed = self._parse(raw)
        if not parsed.sender:
            return [Ignored("an email with no sender address")]
        if self.is_our_address(parsed.sender):
            # Our own mail come back (a list, a forward rule, a spoof): never a customer,
            # never answered. The raw delivery stays in inbound_events as the audit record.
            audit.warning(
                "email %s claims our own address %s as sender: not attributed, not answered",
                parsed.message_id_header,
                parsed.sender,
            )
            return [Ignored(f"an email from our own address {parsed.sender}")]
        if parsed.verified_email is None and _dmarc_failed(parsed.authentication_results):
            audit.warning(
                "email %s from %s failed DMARC at our MTA: kept, the sender not verified",
                parsed.message_id_header,
                parsed.sender,
            )
        return [self._message(parsed)]

    def is_our_address(self, address: str) -> bool:
        local, _, domain = address.lower().rpartition("@")
        return domain == self.domain and local.split("+", 1)[0] == self.local

    def reply_tokens(self, recipients: Sequence[str]) -> list[str]:
        """The `<token>` of every `support+<token>@our.domain` the mail was sent to."""
        tokens = []
        for address in recipients:
            local, _, domain = address.rpartition("@")
            base, plus, tag = local.partition("+")
            if plus and tag and domain.lower() == self.domain and base.lower() == self.local:
                tokens.append(tag)
        return tokens

    def _parse(self, raw: RawInbound) -> ParsedEmail:
        return parse_email(raw.body, envelope=raw.headers, authserv_id=self.authserv_id)

    def _message(self, parsed: ParsedEmail) -> InboundMessage:
        threading: dict[str, Any] = {
            "message_id": parsed.message_id,
            "message_id_header": parsed.message_id_header,
            "in_reply_to": list(parsed.in_reply_to),
            "references": list(parsed.references),
            "reply_tokens": self.reply_tokens(parsed.recipients),
            "automatic": list(parsed.automatic),
            "bounce": parsed.bounce,
            "bounced_message_ids": list(parsed.bounced_message_ids),
            "authentication_results": (parsed.authentication_results or "")[:1000] or None,
        }
        return InboundMessage(
            channel=self.kind,
            inbox_id=self.setup.id,
            sender_id=parsed.sender,
            external_id=parsed.external_id,
            # Provisional: the threading hooks pick the conversation.
            thread_key=f"email:{parsed.external_id}",
            text=parsed.text,
            sent_at=parsed.sent_at,
            sender_name=parsed.sender_name,
            raw=threading,
            files=parsed.files,
            subject=(parsed.subject or None) and parsed.subject[:500],
            html=parsed.html,
            automatic=bool(parsed.automatic),
            verified_email=parsed.verified_email,
        )

    async def fetch(self, file: InboundFile) -> bytes:
        # Mail carries its attachments inline; there is nothing to download.
        return file.data or b""

    # --- outbound ------------------------------------------------------------------------

    def reply_address(self, token: str | None) -> str:
        return f"{self.local}+{token}@{self.domain}" if token else self.address

    def build(self, msg: OutboundMessage, now: datetime) -> tuple[str, bytes]:
        """(our Message-ID, the message bytes) for one reply."""
        extra = msg.extra
        message_id = our_message_id(
            conversation_token(msg.inbox_id, msg.thread_key), msg.message_id, self.domain
        )
        reply = Reply(
            from_address=self.address,
            from_name=self.from_name,
            to=msg.recipient_id,
            subject=str(extra.get("subject") or "Re: your message"),
            text=msg.text,
            message_id=message_id,
            reply_to=self.reply_address(extra.get("reply_token")),
            in_reply_to=extra.get("in_reply_to"),
            references=list(extra.get("references") or ()),
            automatic=msg.author_kind in AUTOMATIC_AUTHORS,
            files=msg.files,
        )
        composed = compose(reply, now)
        # A non-ASCII address goes out under SMTPUTF8, with UTF-8 headers to match.
        policy = SMTP if msg.recipient_id.isascii() else SMTP.clone(utf8=True)
        return message_id, composed.as_bytes(policy=policy)

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        suppressed = msg.extra.get("suppressed")
        if suppressed:
            raise DeliveryFailed(str(suppressed), permanent=True)
        recipient = msg.recipient_id.strip()
        if "@" not in recipient or any(c.isspace() or ord(c) < 32 for c in recipient):
            raise DeliveryFailed(f"not an email address: {recipient[:80]!r}", permanent=True)
        message_id, data = self.build(msg, datetime.now(UTC))
        await self._transfer(recipient, data, utf8=not recipient.isascii())
        return DeliveryReceipt(external_id=message_id)

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.smtp_cafile)

    async def _transfer(self, recipient: str, data: bytes, *, utf8: bool) -> None:
        smtp = aiosmtplib.SMTP(
            hostname=self.smtp_host,
            port=self.smtp_port,
            local_hostname=self.domain,
            use_tls=self.smtp_tls == "ssl",
            start_tls=self.smtp_tls == "starttls",
            tls_context=self._tls_context() if self.smtp_tls != "none" else None,
            username=self.smtp_username,
            password=self.smtp_password if self.smtp_username else None,
            timeout=self.timeout,
        )
        try:
            await self._connect(smtp)
            await self._envelope(smtp, recipient, utf8)
            try:
                await smtp.data(data)
            except SMTPResponseException as refused:
                # The server answered: the outcome is known.
                raise DeliveryFailed(
                    f"the mail server refused the message: {refused.code} {refused.message}",
                    permanent=_is_permanent(refused.code),
                ) from refused
            except (SMTPException, OSError) as lost:
                # Cut off while the message was being handed over or before the server's
                # final answer: it may have been queued. Retrying could mail it twice.
                raise DeliveryOutcomeUnknown(
                    f"the connection to {self.smtp_host} broke during DATA ({lost!r})"
                ) from lost
        finally:
            with contextlib.suppress(Exception):
                await smtp.quit()
            smtp.close()

    async def _connect(self, smtp: aiosmtplib.SMTP) -> None:
        try:
            await smtp.connect()
        except SMTPAuthenticationError as refused:
            # Retried: an admin fixing the password gets the queued replies delivered.
            raise DeliveryFailed(
                f"the mail server refused our login: {refused.code} {refused.message}"
            ) from refused
        except (SMTPException, OSError) as failed:
            where = f"{self.smtp_host}:{self.smtp_port}"
            raise DeliveryFailed(f"cannot reach {where}: {failed!r}") from failed

    async def _envelope(self, smtp: aiosmtplib.SMTP, recipient: str, utf8: bool) -> None:
        options = []
        if utf8:
            if not smtp.supports_extension("smtputf8"):
                raise DeliveryFailed(
                    "the mail server cannot send to internationalised addresses (no SMTPUTF8)",
                    permanent=True,
                )
            options.append("SMTPUTF8")
        encoding = "utf-8" if utf8 else "ascii"
        try:
            await smtp.mail(self.address, options=options, encoding=encoding)
            await smtp.rcpt(recipient, encoding=encoding)
        except SMTPRecipientRefused as refused:
            raise DeliveryFailed(
                f"the mail server refused the recipient {recipient}: "
                f"{refused.code} {refused.message}",
                permanent=_is_permanent(refused.code),
            ) from refused
        except SMTPSenderRefused as refused:
            raise DeliveryFailed(
                f"the mail server refused our sender address: {refused.code} {refused.message}",
                permanent=_is_permanent(refused.code),
            ) from refused
        except SMTPResponseException as refused:
            raise DeliveryFailed(
                f"the mail server refused the envelope: {refused.code} {refused.message}",
                permanent=_is_permanent(refused.code),
            ) from refused
        except (SMTPException, OSError) as failed:
            broke = f"the connection to {self.smtp_host} broke: {failed!r}"
            raise DeliveryFailed(broke) from failed

    async def aclose(self) -> None:
        return None


def _dmarc_failed(authentication_results: str | None) -> bool:
    return authentication_results is not None and "dmarc=fail" in authentication_results.lower()
