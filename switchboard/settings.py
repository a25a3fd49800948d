"""Settings from `SWITCHBOARD_*` environment variables (and an optional TOML file).

A bad value raises `SettingsError` naming the variable, so start-up stops with one
clear line instead of a traceback somewhere deep in the app.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from switchboard import loop as event_loops

PREFIX = "SWITCHBOARD_"
SMTP_TLS_MODES = ("starttls", "ssl", "none")
BOT_ENGINES = ("builtin", "rasa")
EVENT_LOOPS = ("uvloop", "asyncio")


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything the hub reads from its environment, validated once."""

    database_url: str
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    secret_key: str = ""
    var_dir: Path = Path("var")
    telegram_bot_token: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    email_address: str | None = None
    # The authserv-id our MTA writes in Authentication-Results; unset: no sender verified.
    email_authserv_id: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_tls: str = "starttls"
    smtp_ingress_port: int | None = None
    imap_host: str | None = None
    imap_port: int | None = None
    imap_username: str | None = None
    imap_password: str | None = None
    imap_folder: str = "INBOX"
    imap_tls: str = "ssl"
    bot_engine: str = "builtin"
    # `serve`, `worker` and `demo` run on this loop (`switchboard.loop`).
    event_loop: str = "asyncio"
    rasa_url: str | None = None
    # Seconds between two cheap looks at whether the knowledge base changed (catches
    # CLI imports and events lost while Redis was down).
    bot_poll_interval: float = 5.0
    # A customer reply within this many hours of a ticket being solved reopens it;
    # later, it starts a new ticket. 0: never reopen.
    ticket_reopen_hours: int = 72
    # The SLA worker marks a clock "about to breach" this many minutes before it is due.
    sla_warning_minutes: int = 15
    # A digit reply or the rating link counts as the CSAT answer this many hours after
    # the request; later the digit is an ordinary message and the link has expired.
    csat_window_hours: int = 72
    # Seconds an agent's inbox may stay disconnected before routing counts them offline
    # and hands back their unstarted tickets.
    presence_grace_seconds: int = 60
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Not part of the public contract: knobs for tests and benchmarks.
    run_workers: bool = True
    upload_max_bytes: int = 10 * 1024 * 1024
    ws_max_msg_bytes: int = 64 * 1024
    # Per widget socket, per 10 s window: sends before "slow down", frames before 1008.
    widget_send_limit: int = 20
    widget_frame_limit: int = 60
    widget_sockets_per_address: int = 50
    outbox_max_attempts: int = 8
    # Seconds an out-of-order channel update waits for the one before it.
    inbound_reorder_hold: float = 2.0
    # Seconds between two looks into each IMAP mailbox.
    imap_poll_interval: float = 30.0
    redis_prefix: str = "switchboard:"
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def public_origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _int(env: Mapping[str, str], name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = env.get(PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{PREFIX}{name} must be between {lo} and {hi}, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(PREFIX + name) or default
    if raw not in allowed:
        raise SettingsError(f"{PREFIX}{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _url(
    env: Mapping[str, str], name: str, default: str | None, schemes: tuple[str, ...]
) -> str | None:
    raw = env.get(PREFIX + name) or default
    if raw is None:
        return None
    parts = urlsplit(raw)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in schemes or (scheme != "sqlite" and not parts.netloc):
        raise SettingsError(f"{PREFIX}{name} must be a {'/'.join(schemes)} URL, got {raw!r}")
    return raw


def _networks(
    env: Mapping[str, str], name: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    raw = env.get(PREFIX + name) or ""
    networks = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingsError(
                f"{PREFIX}{name} must be comma-separated IP addresses or networks, got {part!r}"
            ) from None
    return tuple(networks)


def _database_url(env: Mapping[str, str], var_dir: Path) -> str:
    raw = env.get(PREFIX + "DATABASE_URL")
    if not raw:
        return f"sqlite+aiosqlite:///{(var_dir / 'switchboard.db').resolve()}"
    url = _url(env, "DATABASE_URL", None, ("sqlite", "postgresql", "postgres"))
    assert url is not None
    # Accept the plain forms people paste and pick the async driver for them.
    if url.startswith("postgres://"):
        url = "postgresql+asyncpg://" + url[len("postgres://") :]
    elif url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://") :]
    elif url.startswith("sqlite://"):
        url = "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def _secret_key(env: Mapping[str, str], var_dir: Path) -> str:
    raw = env.get(PREFIX + "SECRET_KEY")
    if raw:
        if len(raw) < 32:
            raise SettingsError(f"{PREFIX}SECRET_KEY must be at least 32 characters long")
        return raw
    # First run on one machine: generate a key and keep it, so sessions survive restarts.
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def _from_toml(path: str) -> dict[str, str]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{PREFIX}CONFIG file {path!r} cannot be read: {exc}") from None
    return {PREFIX + str(k).upper(): str(v) for k, v in data.items()}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings; raise `SettingsError` on the first bad value."""
    env: dict[str, str] = {}
    source = dict(os.environ if environ is None else environ)
    if source.get(PREFIX + "CONFIG"):
        env.update(_from_toml(source[PREFIX + "CONFIG"]))
    env.update({k: v for k, v in source.items() if k.startswith(PREFIX)})

    var_dir = Path(env.get(PREFIX + "VAR_DIR") or "var")
    port = _int(env, "PORT", 8080, 0, 65535)
    assert port is not None
    reopen_hours = _int(env, "TICKET_REOPEN_HOURS", 72, 0, 24 * 365)
    assert reopen_hours is not None
    sla_warning = _int(env, "SLA_WARNING_MINUTES", 15, 0, 7 * 24 * 60)
    assert sla_warning is not None
    csat_window = _int(env, "CSAT_WINDOW_HOURS", 72, 1, 90 * 24)
    assert csat_window is not None
    redis_url = _url(env, "REDIS_URL", None, ("redis", "rediss", "unix"))
    public_url = _url(env, "PUBLIC_URL", "http://127.0.0.1:8080", ("http", "https"))
    assert public_url is not None
    settings = Settings(
        database_url=_database_url(env, var_dir),
        redis_url=redis_url,
        host=env.get(PREFIX + "HOST") or "127.0.0.1",
        port=port,
        public_url=public_url.rstrip("/"),
        secret_key=_secret_key(env, var_dir),
        var_dir=var_dir,
        telegram_bot_token=env.get(PREFIX + "TELEGRAM_BOT_TOKEN") or None,
        telegram_webhook_secret=env.get(PREFIX + "TELEGRAM_WEBHOOK_SECRET") or None,
        telegram_api_url=_url(
            env, "TELEGRAM_API_URL", "https://api.telegram.org", ("http", "https")
        )
        or "",
        slack_bot_token=env.get(PREFIX + "SLACK_BOT_TOKEN") or None,
        slack_signing_secret=env.get(PREFIX + "SLACK_SIGNING_SECRET") or None,
        slack_api_url=_url(env, "SLACK_API_URL", "https://slack.com/api/", ("http", "https")) or "",
        email_address=env.get(PREFIX + "EMAIL_ADDRESS") or None,
        email_authserv_id=env.get(PREFIX + "EMAIL_AUTHSERV_ID") or None,
        smtp_host=env.get(PREFIX + "SMTP_HOST") or None,
        smtp_port=_int(env, "SMTP_PORT", None, 1, 65535),
        smtp_username=env.get(PREFIX + "SMTP_USERNAME") or None,
        smtp_password=env.get(PREFIX + "SMTP_PASSWORD") or None,
        smtp_tls=_choice(env, "SMTP_TLS", "starttls", SMTP_TLS_MODES),
        smtp_ingress_port=_int(env, "SMTP_INGRESS_PORT", None, 0, 65535),
        imap_host=env.get(PREFIX + "IMAP_HOST") or None,
        imap_port=_int(env, "IMAP_PORT", None, 1, 65535),
        imap_username=env.get(PREFIX + "IMAP_USERNAME") or None,
        imap_password=env.get(PREFIX + "IMAP_PASSWORD") or None,
        imap_folder=env.get(PREFIX + "IMAP_FOLDER") or "INBOX",
        imap_tls=_choice(env, "IMAP_TLS", "ssl", SMTP_TLS_MODES),
        bot_engine=_choice(env, "BOT_ENGINE", "builtin", BOT_ENGINES),
        event_loop=_event_loop(env),
        rasa_url=_url(env, "RASA_URL", None, ("http", "https")),
        bot_poll_interval=float(_int(env, "BOT_POLL_INTERVAL", 5, 1, 3600) or 5),
        ticket_reopen_hours=reopen_hours,
        sla_warning_minutes=sla_warning,
        csat_window_hours=csat_window,
        presence_grace_seconds=_int(env, "PRESENCE_GRACE_SECONDS", 60, 0, 24 * 3600) or 0,
        trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
        widget_send_limit=_int(env, "WIDGET_SEND_LIMIT", 20, 1, 1_000_000) or 20,
        widget_frame_limit=_int(env, "WIDGET_FRAME_LIMIT", 60, 1, 1_000_000) or 60,
        widget_sockets_per_address=_int(env, "WIDGET_SOCKETS_PER_ADDRESS", 50, 1, 1_000_000) or 50,
    )
    if settings.bot_engine == "rasa" and not settings.rasa_url:
        raise SettingsError(f"{PREFIX}RASA_URL is required when {PREFIX}BOT_ENGINE is rasa")
    if settings.telegram_webhook_secret is not None:
        _check_telegram_secret(settings.telegram_webhook_secret)
    return settings


def _event_loop(env: Mapping[str, str]) -> str:
    available = event_loops.uvloop_available()
    chosen = _choice(env, "EVENT_LOOP", "uvloop" if available else "asyncio", EVENT_LOOPS)
    if chosen == "uvloop" and not available:
        raise SettingsError(
            f"{PREFIX}EVENT_LOOP is uvloop but the uvloop package is not installed "
            "(it is not made for Windows); set it to asyncio"
        )
    return chosen


def _check_telegram_secret(value: str) -> None:
    # Telegram accepts 1-256 characters from A-Za-z0-9_- for setWebhook's secret_token.
    ok = 1 <= len(value) <= 256 and all(c.isascii() and (c.isalnum() or c in "_-") for c in value)
    if not ok:
        raise SettingsError(
            f"{PREFIX}TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
        )
