"""Shared fixtures: the real app on real databases, a bus per backend, no internet.

Every storage and bus test runs twice: on SQLite with the in-process bus, and on
PostgreSQL with Redis. Without those services the second run is skipped, unless
SWITCHBOARD_TEST_REQUIRE_SERVICES=1 (CI), where an unreachable service fails the run.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard import accounts
from switchboard.app import create_app
from switchboard.bus import InProcessBus
from switchboard.db import create_engine, create_sessionmaker
from switchboard.migrate import upgrade
from switchboard.schema import metadata
from switchboard.settings import Settings
from switchboard.tx import Database

REQUIRE_SERVICES = os.environ.get("SWITCHBOARD_TEST_REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get(
    "SWITCHBOARD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "test-secret-key-" + "x" * 40
PASSWORD = "correct horse battery"


# --- no internet -------------------------------------------------------------------------

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise RuntimeError(f"test tried to reach {host}: only loopback is allowed")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture(autouse=True)
def _cheap_password_hashing(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Argon2 at its cheapest everywhere (verification reads the parameters from the
    hash): the production cost, ~0.1 s a hash and more a login on this machine, added up
    over the suite. Tests marked `real_password_hashing` keep the production hasher."""
    if request.node.get_closest_marker("real_password_hashing") is None:
        from tests.security.support import use_cheap_password_hashing

        use_cheap_password_hashing(monkeypatch)


# --- services ----------------------------------------------------------------------------


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _need(service: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{service} on {host}:{port} is required (SWITCHBOARD_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(f"{service} on {host}:{port} is not reachable")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    _need("PostgreSQL", "127.0.0.1", 5432)
    name = f"sb_test_{os.getpid()}_{secrets.token_hex(3)}"

    async def create() -> None:
        admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
            # Commits wait for no disk flush: what a crash would lose is a test database
            # about to be dropped, and what other sessions see is unchanged.
            await conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
        await admin.dispose()

    async def drop() -> None:
        admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    asyncio.run(create())
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    asyncio.run(upgrade(url))
    yield url
    asyncio.run(drop())


async def _truncate(url: str) -> None:
    """Empty every table and restart every id sequence, as TRUNCATE ... RESTART IDENTITY
    would. DELETE with the foreign-key triggers off instead: TRUNCATE makes new files for
    each of the ~50 tables and their indexes, 0.3-1 s a test on a loaded machine, while
    deleting the few rows a test wrote takes milliseconds."""
    # Our own table names, quoted: nothing from outside reaches this script.
    deletes = [f'DELETE FROM "{t.name}";' for t in metadata.sorted_tables]  # noqa: S608
    script = "".join(
        [
            "BEGIN; SET LOCAL session_replication_role = replica;",
            *deletes,
            "SELECT setval(seqrelid::regclass, seqstart, false) FROM pg_sequence;",
            "COMMIT;",
        ]
    )
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await conn.execute(script)
    except asyncpg.InsufficientPrivilegeError:
        # Not a superuser (SWITCHBOARD_TEST_POSTGRES_URL): the triggers stay on; TRUNCATE.
        await conn.execute("ROLLBACK")
        tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@dataclass(frozen=True)
class Backend:
    name: str  # "sqlite" or "postgres"
    database_url: str
    redis_url: str | None


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "switchboard.db"
        shutil.copy(sqlite_template, path)
        return Backend("sqlite", f"sqlite+aiosqlite:///{path}", None)
    _need("Redis", "127.0.0.1", 6379)
    url = request.getfixturevalue("postgres_url")
    asyncio.run(_truncate(url))
    return Backend("postgres", url, REDIS_URL)


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Settings:
    return Settings(
        database_url=backend.database_url,
        redis_url=backend.redis_url,
        secret_key=SECRET,
        var_dir=tmp_path / "var",
        public_url="http://127.0.0.1:8080",
        # A fresh Redis namespace per test: tests never hear each other's events.
        redis_prefix=f"sbtest:{secrets.token_hex(6)}:",
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """A direct handle on the test database, for arranging and checking state."""
    engine = create_engine(settings.database_url)
    yield Database(engine, create_sessionmaker(engine), InProcessBus())
    await engine.dispose()


AppClient = TestClient[Any, Any]
ClientFactory = Callable[..., Awaitable[AppClient]]


@pytest.fixture
async def make_client(aiohttp_client: Any, settings: Settings) -> ClientFactory:
    """Start one more instance of the real app (same database and bus) and a client for it."""

    async def factory(**overrides: Any) -> AppClient:
        app = create_app(settings.with_overrides(**overrides))
        client: AppClient = await aiohttp_client(app)
        return client

    return factory


@pytest.fixture
async def client(make_client: ClientFactory) -> AppClient:
    return await make_client()


async def create_user(db: Database, email: str, role: str = "agent", name: str = "") -> int:
    user = await db.run(
        lambda s: accounts.do_create_user(
            s, email=email, name=name or email.split("@")[0], role=role, password=PASSWORD
        )
    )
    return user.id


async def login(client: AppClient, email: str, password: str = PASSWORD) -> str:
    """Log in through the real form; return the CSRF token of the new session."""
    page = await client.get("/login")
    assert page.status == 200
    form_token = client.session.cookie_jar.filter_cookies(client.make_url("/"))[
        "sb_login_csrf"
    ].value
    response = await client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": form_token, "next": "/inbox"},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    inbox = await client.get("/inbox")
    html = await inbox.text()
    marker = 'name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


async def widget_session(client: AppClient) -> tuple[str, str]:
    """A visitor token for the default web-chat inbox: (public key, token)."""
    from sqlalchemy import select

    from conversations.models import Inbox

    app_db = client.app[__import__("switchboard.appkeys", fromlist=["DB"]).DB]
    async with app_db.reading() as s:
        public_key = (
            await s.execute(select(Inbox.public_key).where(Inbox.kind == "webchat"))
        ).scalar_one()
    response = await client.post("/widget/session", json={"inbox": public_key})
    assert response.status == 200
    return public_key, (await response.json())["token"]
