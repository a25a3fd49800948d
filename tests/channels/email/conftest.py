"""An SMTP peer for the email tests: aiosmtpd on 127.0.0.1, port 0, recording envelopes.

`smtp_peer(tls=..., auth=...)` starts one: plain, STARTTLS or implicit TLS (with a
self-signed certificate made at test time with `cryptography`), optionally requiring
AUTH. Recipients listed in `peer.refuse` get that reply at RCPT (550 for an unknown user,
450 for a busy mailbox); `peer.hang_up_after_data` drops the connection once the message
is in, before the final answer.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SMTP_USER = "hub@example.com"
SMTP_PASSWORD = "smtp-password-for-tests"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    authenticated: bool
    tls: bool

    @property
    def message(self) -> EmailMessage:
        # Parsed as a client reads it (line ends as Python's own).
        parsed = message_from_bytes(self.content.replace(b"\r\n", b"\n"), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpPeer:
    host: str
    port: int
    tls: str  # "none" | "starttls" | "ssl"
    cafile: str | None
    auth: bool
    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # recipient → SMTP reply
    # Take the message, then drop the connection instead of answering: the sender cannot
    # know whether it was queued.
    hang_up_after_data: bool = False

    def config(self, address: str = "support@example.com") -> dict[str, Any]:
        """An email inbox's config for sending through this peer."""
        config: dict[str, Any] = {
            "address": address,
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_tls": self.tls,
            "smtp_timeout": 10,
        }
        if self.cafile:
            config["smtp_cafile"] = self.cafile
        if self.auth:
            config["smtp_username"] = SMTP_USER
        return config

    def credentials(self) -> dict[str, str]:
        return {"smtp_password": SMTP_PASSWORD if self.auth else ""}

    async def wait_for(self, count: int = 1, within: float = 10.0) -> list[Received]:
        """The first `count` messages, once they arrived."""
        # The peer runs in its own thread: poll with a deadline rather than share an Event.
        async with asyncio.timeout(within):
            while len(self.received) < count:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        return self.received[:count]


class _Recorder:
    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refusal = self.peer.refuse.get(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        transport = server.transport
        self.peer.received.append(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                content=content,
                authenticated=bool(session.authenticated),
                tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
            )
        )
        if self.peer.hang_up_after_data and transport is not None:
            transport.close()
        return "250 2.0.0 Queued"


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    # handled=False: aiosmtpd then answers 535 itself.
    return AuthResult(success=ok, handled=False)


class _PortZeroController(Controller):
    """aiosmtpd's Controller on a port the OS picks: it reads the port back from the
    listening socket before its readiness check connects to it."""

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        create = super()._create_server()

        async def listening() -> asyncio.AbstractServer:
            server = await create
            assert isinstance(server, asyncio.Server)
            self.port = server.sockets[0].getsockname()[1]
            return server

        return listening()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


SmtpPeerFactory = Callable[..., SmtpPeer]


@pytest.fixture
def smtp_peer(tmp_path: Path) -> Iterator[SmtpPeerFactory]:
    controllers: list[Controller] = []

    def start(tls: str = "none", auth: bool = False) -> SmtpPeer:
        cafile = None
        server_context = None
        if tls != "none":
            cert, key = _self_signed(tmp_path)
            server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_context.load_cert_chain(cert, key)
            cafile = str(cert)
        peer = SmtpPeer("127.0.0.1", 0, tls, cafile, auth)
        kwargs: dict[str, Any] = {}
        if tls == "ssl":
            kwargs["ssl_context"] = server_context
        if tls == "starttls":
            kwargs.update(tls_context=server_context, require_starttls=True)
        if auth:
            kwargs.update(authenticator=_authenticator, auth_required=True)
            # aiosmtpd counts only STARTTLS as TLS; an implicit-TLS socket is one too.
            kwargs["auth_require_tls"] = tls != "ssl"
        controller = _PortZeroController(
            _Recorder(peer), hostname="127.0.0.1", port=0, ready_timeout=10, **kwargs
        )
        controller.start()
        controllers.append(controller)
        peer.port = controller.port
        return peer

    yield start
    for controller in controllers:
        controller.stop()
