"""The `switchboard` command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from switchboard.settings import Settings, SettingsError, load_settings

log = logging.getLogger("switchboard")

DEMO_USERS = (
    ("admin@demo.switchboard", "Ada Admin", "admin", "demo-admin-1234"),
    ("supervisor@demo.switchboard", "Sam Supervisor", "supervisor", "demo-super-1234"),
    ("agent1@demo.switchboard", "Alex Agent", "agent", "demo-agent-1234"),
    ("agent2@demo.switchboard", "Bo Agent", "agent", "demo-agent-5678"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP server (and, on one machine, the workers)")
    sub.add_parser("worker", help="run background workers only (outbox delivery)")
    sub.add_parser("migrate", help="bring the database schema up to date")
    sub.add_parser("demo", help="migrate a SQLite database, seed demo users, then serve")
    user = sub.add_parser("create-user", help="create an agent, supervisor or admin")
    user.add_argument("--email", required=True)
    user.add_argument("--name", default="")
    user.add_argument("--role", required=True, choices=["admin", "supervisor", "agent"])
    user.add_argument("--password", help="omit to be asked (or set SWITCHBOARD_NEW_PASSWORD)")
    token = sub.add_parser("create-token", help="print a new API token for a user")
    token.add_argument("--email", required=True)
    token.add_argument("--name", default="cli")
    inbox = sub.add_parser("inbox", help="inbox settings")
    inbox_sub = inbox.add_subparsers(dest="inbox_command", required=True)
    secret = inbox_sub.add_parser(
        "show-identity-secret",
        help="print a web-chat inbox's secret for signing identified visitors (made on first use)",
    )
    secret.add_argument("--inbox", default="default", help="the inbox key (default: default)")
    inbox_sub.add_parser("list", help="every inbox with the URL its channel must call")
    telegram = sub.add_parser("telegram", help="Telegram inboxes")
    telegram_sub = telegram.add_subparsers(dest="telegram_command", required=True)
    webhook = telegram_sub.add_parser(
        "set-webhook", help="have Telegram deliver the bot's updates to this hub, with the secret"
    )
    webhook.add_argument("--inbox", default="default", help="the inbox key (default: default)")
    bot = sub.add_parser("bot", help="the intent bot")
    bot_sub = bot.add_subparsers(dest="bot_command", required=True)
    from bot.eval import add_eval_arguments

    add_eval_arguments(
        bot_sub.add_parser("eval", help="train an engine on a data set and score it")
    )
    backup = sub.add_parser("backup", help="write the whole database to one file")
    backup.add_argument("file", type=Path, help="the archive to write (.jsonl.gz)")
    restore = sub.add_parser(
        "restore", help="load a backup into an empty database, then migrate it"
    )
    restore.add_argument("file", type=Path, help="an archive written by `switchboard backup`")
    kb = sub.add_parser("kb", help="the knowledge base")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    kb_import = kb_sub.add_parser("import", help="add or update articles from a .json or .csv")
    kb_import.add_argument("file")
    kb_export = kb_sub.add_parser("export", help="write every article to a .json or .csv")
    kb_export.add_argument("file")
    kb_rasa = kb_sub.add_parser("export-rasa", help="write Rasa 3.x nlu, domain and rules")
    kb_rasa.add_argument("dir")
    return parser


async def _require_current_schema(settings: Settings) -> None:
    from switchboard.migrate import current_revision, head_revision

    current, head = await current_revision(settings.database_url), head_revision()
    if current != head:
        raise SettingsError(
            f"the database schema is at {current or 'nothing'}, not {head}: "
            "run `switchboard migrate` first"
        )


def _serve(settings: Settings, *, demo_page: bool = False, banner: str = "") -> None:
    from aiohttp import web

    from switchboard.app import create_app

    asyncio.run(_require_current_schema(settings))
    app = create_app(settings, demo_page=demo_page)
    if demo_page:
        from web.demo import DEMO_LOGINS

        app[DEMO_LOGINS] = [{"email": e, "role": r, "password": p} for e, _n, r, p in DEMO_USERS]
    from switchboard.loop import new_event_loop
    from web.accesslog import AccessLogger

    web.run_app(
        app,
        loop=new_event_loop(settings.event_loop),
        host=settings.host,
        port=settings.port,
        access_log_class=AccessLogger,
        print=(lambda _m: print(banner or f"Switchboard on {settings.public_url}", flush=True)),
    )


async def _create_user(settings: Settings, email: str, name: str, role: str, password: str) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    from switchboard import accounts
    from switchboard.audit import record
    from switchboard.bus import InProcessBus
    from switchboard.db import create_engine, create_sessionmaker
    from switchboard.tx import Database

    engine = create_engine(settings.database_url)
    try:
        db = Database(engine, create_sessionmaker(engine), InProcessBus())

        async def create(s: AsyncSession) -> None:
            user = await accounts.do_create_user(
                s, email=email, name=name, role=role, password=password
            )
            await record(
                s, "user.created", actor_label="cli", target_type="user", target_id=user.id,
                target_label=user.email, details={"role": role, "name": user.name},
            )  # fmt: skip

        await db.run(create)
    finally:
        await engine.dispose()


async def _create_token(settings: Settings, email: str, name: str) -> str:
    from switchboard import accounts
    from switchboard.audit import record
    from switchboard.bus import InProcessBus
    from switchboard.db import create_engine, create_sessionmaker
    from switchboard.errors import NotFound
    from switchboard.tx import Database

    engine = create_engine(settings.database_url)
    try:
        db = Database(engine, create_sessionmaker(engine), InProcessBus())

        async def work(s: object) -> str:
            from sqlalchemy.ext.asyncio import AsyncSession

            assert isinstance(s, AsyncSession)
            user = await accounts.get_user_by_email(s, email)
            if user is None:
                raise NotFound(f"no user with email {email}")
            token = await accounts.do_create_api_token(s, user, name)
            await record(
                s, "token.created", actor_label="cli", target_type="user", target_id=user.id,
                target_label=user.email, details={"name": name},
            )  # fmt: skip
            return token

        return await db.run(work)
    finally:
        await engine.dispose()


async def _list_inboxes(settings: Settings) -> list[dict[str, Any]]:
    from sqlalchemy.ext.asyncio import AsyncSession

    from switchboard.bus import InProcessBus
    from switchboard.crypto import CredentialBox
    from switchboard.db import create_engine, create_sessionmaker
    from switchboard.inboxes import do_ensure_default_inboxes, list_inboxes
    from switchboard.tx import Database

    engine = create_engine(settings.database_url)
    try:
        db = Database(engine, create_sessionmaker(engine), InProcessBus())

        async def work(s: AsyncSession) -> list[dict[str, Any]]:
            await do_ensure_default_inboxes(s, settings, CredentialBox(settings.secret_key))
            return await list_inboxes(s, settings.public_url)

        return await db.run(work)
    finally:
        await engine.dispose()


async def _show_identity_secret(settings: Settings, inbox_key: str) -> str:
    from sqlalchemy.ext.asyncio import AsyncSession

    from customers.identify import do_ensure_identity_secret
    from switchboard.bus import InProcessBus
    from switchboard.crypto import CredentialBox
    from switchboard.db import create_engine, create_sessionmaker
    from switchboard.inboxes import do_ensure_default_inboxes
    from switchboard.tx import Database

    engine = create_engine(settings.database_url)
    try:
        db = Database(engine, create_sessionmaker(engine), InProcessBus())
        box = CredentialBox(settings.secret_key)

        async def work(s: AsyncSession) -> str:
            # The default inboxes exist even if the server never started on this database.
            await do_ensure_default_inboxes(s, settings, box)
            return await do_ensure_identity_secret(s, inbox_key, box)

        return await db.run(work)
    finally:
        await engine.dispose()


async def _set_telegram_webhook(settings: Settings, key: str) -> str:
    """Register the inbox's webhook URL and secret with Telegram; return the URL."""
    from channels.telegram.adapter import TelegramAdapter, valid_secret_token
    from switchboard.app import build_registry
    from switchboard.bus import InProcessBus
    from switchboard.crypto import CredentialBox
    from switchboard.db import create_engine, create_sessionmaker
    from switchboard.inboxes import do_ensure_default_inboxes
    from switchboard.tx import Database

    await _require_current_schema(settings)
    engine = create_engine(settings.database_url)
    db = Database(engine, create_sessionmaker(engine), InProcessBus())
    registry = build_registry(settings, db)
    try:
        # The inbox the settings describe, as `serve` would leave it.
        box = CredentialBox(settings.secret_key)
        await db.run(lambda s: do_ensure_default_inboxes(s, settings, box))
        found = await registry.by_key("telegram", key)
        if found is None:
            raise SettingsError(
                f"there is no Telegram inbox with the key {key!r} "
                "(SWITCHBOARD_TELEGRAM_BOT_TOKEN makes the default one)"
            )
        setup, adapter = found
        assert isinstance(adapter, TelegramAdapter)
        if not valid_secret_token(setup.credentials.get("webhook_secret", "")):
            raise SettingsError(
                f"Telegram inbox {key!r} needs a webhook secret of 1-256 characters of "
                "A-Z, a-z, 0-9, _ and - (SWITCHBOARD_TELEGRAM_WEBHOOK_SECRET for the default)"
            )
        if not setup.webhook_url.startswith("https://"):
            raise SettingsError(
                f"Telegram only delivers to https:// URLs, not {setup.webhook_url}: "
                "set SWITCHBOARD_PUBLIC_URL to the hub's public https address"
            )
        return await adapter.set_webhook()
    finally:
        await registry.aclose()
        await engine.dispose()


async def _seed_demo(settings: Settings) -> None:
    from switchboard import accounts
    from switchboard.bus import InProcessBus
    from switchboard.db import create_engine, create_sessionmaker
    from switchboard.inboxes import do_ensure_default_inboxes
    from switchboard.tx import Database

    engine = create_engine(settings.database_url)
    try:
        db = Database(engine, create_sessionmaker(engine), InProcessBus())
        await db.run(do_ensure_default_inboxes)
        for email, name, role, password in DEMO_USERS:

            async def seed(
                s: object,
                email: str = email,
                name: str = name,
                role: str = role,
                password: str = password,
            ) -> None:
                from sqlalchemy.ext.asyncio import AsyncSession

                assert isinstance(s, AsyncSession)
                if await accounts.get_user_by_email(s, email) is None:
                    await accounts.do_create_user(
                        s, email=email, name=name, role=role, password=password
                    )

            await db.run(seed)
        from knowledge_base.commands import seed_demo

        await seed_demo(db)
        from switchboard.demo_floor import do_seed_floor

        await db.run(do_seed_floor)
        from bot.service import do_enable_bot_on_webchat

        # The demo page's visitors meet the bot answering from the demo knowledge base.
        await db.run(do_enable_bot_on_webchat)
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("SWITCHBOARD_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from switchboard.errors import DomainError

    if args.command == "bot" and args.bot_command == "eval":
        from bot.eval import run_eval_command

        return run_eval_command(args)  # needs no settings or database
    try:
        settings = load_settings()
        if args.command == "serve":
            _serve(settings)
        elif args.command == "worker":
            from switchboard.worker import run_worker

            asyncio.run(_require_current_schema(settings))
            from switchboard import loop

            loop.run(run_worker(settings), settings.event_loop)
        elif args.command == "migrate":
            from switchboard.migrate import upgrade

            asyncio.run(upgrade(settings.database_url))
            print("database schema is up to date")
        elif args.command == "demo":
            from switchboard.migrate import upgrade

            if not settings.is_sqlite:
                print("note: demo data goes into SWITCHBOARD_DATABASE_URL", file=sys.stderr)
            asyncio.run(upgrade(settings.database_url))
            asyncio.run(_seed_demo(settings))
            lines = [
                f"Switchboard demo on {settings.public_url}",
                "",
                f"  demo shop with the chat widget: {settings.public_url}/demo",
                f"  agent inbox:                    {settings.public_url}/login",
                "",
                "  logins (email / password / role):",
            ]
            lines += [f"    {e:30} {p:18} {r}" for e, _n, r, p in DEMO_USERS]
            _serve(settings, demo_page=True, banner="\n".join(lines))
        elif args.command == "create-user":
            password = (
                args.password or os.environ.get("SWITCHBOARD_NEW_PASSWORD") or getpass.getpass()
            )
            asyncio.run(_create_user(settings, args.email, args.name, args.role, password))
            print(f"created {args.role} {args.email}")
        elif args.command == "create-token":
            print(asyncio.run(_create_token(settings, args.email, args.name)))
        elif args.command == "telegram":
            from channels.telegram.adapter import WebhookSetupError

            try:
                url = asyncio.run(_set_telegram_webhook(settings, args.inbox))
            except WebhookSetupError as exc:
                print(f"switchboard: {exc}", file=sys.stderr)
                return 1
            print(f"Telegram now delivers inbox {args.inbox}'s updates to {url}")
        elif args.command == "inbox" and args.inbox_command == "list":
            for row in asyncio.run(_list_inboxes(settings)):
                where = row["webhook_url"] or row["config"].get("address") or row["widget_key"]
                print(f"{row['kind']:<9} {row['key']:<16} {row['name']:<20} {where or ''}")
        elif args.command == "inbox" and args.inbox_command == "show-identity-secret":
            print(asyncio.run(_show_identity_secret(settings, args.inbox)))
        elif args.command in ("backup", "restore"):
            from switchboard import backup as archive

            if args.command == "backup":
                done = asyncio.run(archive.backup(settings.database_url, args.file))
                verb = "backed up"
            else:
                done = asyncio.run(archive.restore(settings.database_url, args.file))
                verb = "restored"
            print(
                f"{verb} {done.total} rows in {len(done.rows)} tables "
                f"(schema revision {done.revision}): {args.file}"
            )
        elif args.command == "kb":
            from knowledge_base.commands import run as run_kb

            asyncio.run(_require_current_schema(settings))
            target = args.dir if args.kb_command == "export-rasa" else args.file
            print(asyncio.run(run_kb(settings, args.kb_command, target)))
    except SettingsError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"switchboard: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
