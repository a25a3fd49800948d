"""A real Dovecot IMAP server for tests: a throw-away maildir on a free loopback port.

`start_dovecot()` writes a minimal Dovecot 2.3 configuration into a fresh temporary
directory (passwd-file users, maildir, a self-signed certificate for STARTTLS and
implicit TLS, plaintext login allowed on loopback), runs `dovecot -F` in the foreground
and waits until the port answers. Each test takes its own mailbox user. Test mail goes
in through IMAP APPEND, so the server assigns UIDs the way it does for real deliveries.

Dovecot refuses to run its login and mail processes as root. Run as root (CI), the
login processes use Debian's `dovenull` user, the internal ones `dovecot`, and mail is
stored as `dovecot`; run as anyone else, everything runs as that user.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aioimaplib import IMAP4
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REQUIRE_SERVICES = os.environ.get("SWITCHBOARD_TEST_REQUIRE_SERVICES") == "1"
PASSWORD = "dovecot-test-password"
MAILBOXES = 500  # users per server: one per test
_STARTUP_SECONDS = 15.0


def dovecot_binary() -> str | None:
    # Debian installs it in /usr/sbin, which is not on every user's PATH.
    return shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")


def need_dovecot() -> str:
    """The path of `dovecot`; skip (or, when services are required, fail) without it."""
    binary = dovecot_binary()
    if binary is not None:
        return binary
    reason = "dovecot is not installed (apt-get install dovecot-imapd)"
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason}; required because SWITCHBOARD_TEST_REQUIRE_SERVICES=1")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _accounts() -> tuple[str, str, pwd.struct_passwd]:
    """(internal user, login user, mail owner) for the current process."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return me.pw_name, me.pw_name, me
    try:
        mail_owner = pwd.getpwnam("dovecot")
        pwd.getpwnam("dovenull")
    except KeyError:
        pytest.fail("running as root needs Debian's dovecot and dovenull users")
    return "dovecot", "dovenull", mail_owner


def _certificate(root: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 (and its key); the certificate is also
    the CA file a client trusts it by."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Switchboard test IMAP")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (root / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (root / "key.pem").chmod(0o600)
    cert = root / "cert.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert


def _config(root: Path, port: int, imaps_port: int) -> str:
    internal, login, owner = _accounts()
    return f"""\
protocols = imap
listen = 127.0.0.1
instance_name = sb-test-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
# TLS offered both ways (STARTTLS on the plain port, implicit on the imaps port) but not
# required, so the plain tests log in without it.
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests that log in with a wrong password should not wait for Dovecot's brute-force
# delays (2 s, doubling up to 15 s); the anvil socket below turns the penalty off.
auth_failure_delay = 0
default_internal_user = {internal}
default_internal_group = {internal}
default_login_user = {login}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{root}/mail/%u
mail_fsync = never
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 50
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={owner.pw_uid} gid={owner.pw_gid} home={root}/home/%u
}}
"""


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            greeting = b""
            while b"\r\n" not in greeting:
                chunk = sock.recv(256)
                if not chunk:
                    return False
                greeting += chunk
            # "* OK Waiting for authentication process" means not ready for a login yet.
            return greeting.startswith(b"* OK") and b"Waiting" not in greeting
    except OSError:
        return False


@dataclass
class Mailbox:
    """One user's mail on a running Dovecot, and what a test does with it."""

    host: str
    port: int  # plain, with STARTTLS offered
    imaps_port: int  # implicit TLS
    cafile: str  # trusts the server's self-signed certificate
    username: str
    password: str

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[IMAP4]:
        """A logged-in IMAP session as the mailbox user (for arranging mail)."""
        client = IMAP4(self.host, self.port, timeout=10)
        try:
            await client.wait_hello_from_server()
            response = await client.login(self.username, self.password)
            assert response.result == "OK", response
            yield client
            with contextlib.suppress(Exception):
                await client.logout()
        finally:
            if client.protocol.transport is not None:
                client.protocol.transport.close()

    async def append(self, eml: bytes, folder: str = "INBOX") -> int:
        """Deliver one message into `folder`; return the UID the server gave it."""
        async with self.session() as client:
            response = await client.append(eml, mailbox=folder)
        assert response.result == "OK", response
        found = re.search(rb"APPENDUID \d+ (\d+)", b" ".join(bytes(x) for x in response.lines))
        assert found is not None, response
        return int(found.group(1))

    async def create(self, folder: str) -> None:
        async with self.session() as client:
            response = await client.create(folder)
        assert response.result == "OK", response

    async def recreate(self, folder: str) -> None:
        """Delete and create `folder` again: the server gives it a new UIDVALIDITY."""
        async with self.session() as client:
            assert (await client.delete(folder)).result == "OK"
            assert (await client.create(folder)).result == "OK"

    async def uidvalidity(self, folder: str = "INBOX") -> int:
        async with self.session() as client:
            response = await client.status(folder, "(UIDVALIDITY)")
        found = re.search(rb"UIDVALIDITY (\d+)", b" ".join(bytes(x) for x in response.lines))
        assert found is not None, response
        return int(found.group(1))


@dataclass
class Dovecot:
    """One running Dovecot. Each test takes a new mailbox user (`add_mailbox`), so one
    server serves a whole module: starting is quick, but stopping takes a second."""

    root: Path
    port: int
    imaps_port: int
    cafile: str
    process: subprocess.Popen[bytes]
    host: str = "127.0.0.1"
    _users: int = 0

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def add_mailbox(self) -> Mailbox:
        """The next unused user, with an empty maildir."""
        self._users += 1
        assert self._users <= MAILBOXES, "raise MAILBOXES in tests/dovecot.py"
        username, password = _user(self._users)
        return Mailbox(self.host, self.port, self.imaps_port, self.cafile, username, password)

    def stop(self) -> None:
        # SIGTERM: the master stops its own children (and reaps them) before it exits.
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _user(n: int) -> tuple[str, str]:
    return f"support{n}@example.test", f"{PASSWORD}-{n}"


def start_dovecot() -> Dovecot:
    """Start Dovecot in a new temporary directory; the caller stops it."""
    binary = need_dovecot()
    _, _, owner = _accounts()
    # Not pytest's tmp_path: its parents are private to this user, and Dovecot's own
    # users must reach the maildir and the sockets.
    root = Path(tempfile.mkdtemp(prefix="sb-dovecot-"))
    root.chmod(0o755)
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    for sub in ("mail", "home"):
        os.chown(root / sub, owner.pw_uid, owner.pw_gid)
    # Every user is written up front: Dovecot notices a changed passwd-file only when its
    # modification time moves on by a whole second.
    users = (_user(n) for n in range(1, MAILBOXES + 1))
    (root / "users").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in users))
    cafile = _certificate(root)
    port, imaps_port = _free_port(), _free_port()
    (root / "dovecot.conf").write_text(_config(root, port, imaps_port))
    process = subprocess.Popen(
        [binary, "-F", "-c", str(root / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = Dovecot(
        root=root, port=port, imaps_port=imaps_port, cafile=str(cafile), process=process
    )
    deadline = time.monotonic() + _STARTUP_SECONDS
    while not _answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            log = server.log()
            server.stop()
            pytest.fail(f"dovecot did not start on port {port}:\n{stderr}\n{log}")
        time.sleep(0.05)
    return server
