"""Telegram and Slack webhook throughput on PostgreSQL, and the email parser's rate.

    .venv/bin/python -m bench.channels [--messages N] [--chats C] [--json]

In one run, on a fresh PostgreSQL database (with Redis as the bus):

1. baseline: single-row INSERT transactions through asyncpg on the same database, with
   as many connections as there are chats (`bench.intake.baseline_asyncpg`);
2. per channel (Telegram, Slack): C chats post N messages in all as the channel would —
   a Telegram update with the secret-token header, a Slack event signed with the signing
   secret — each chat waiting for the 200 before its next message. Latency runs from the
   POST until the message is stored (its row's `created_at`); messages/s is N over the
   time until the last one was stored. Then an agent replies once in each conversation
   through the REST API; latency
   runs until the fake channel API receives the send. Both fakes (tests/fakes/) run in
   this process; the hub runs in its own (`bench._server`).
3. email: parse-only rate of a 50 KB multipart/alternative GBK mail with an attachment
   through the email adapter's `parse`, against the standard library's own parse of the
   same bytes (`email.message_from_bytes` with `policy.default`, every part decoded).

Replies are paced by the adapters at about one message per second per chat, as the
channels ask, so the reply rate is measured with one reply per chat. It prints figures
and never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench.intake import (
    SECRET,
    Hub,
    Profiler,
    baseline_asyncpg,
    code_version,
    create_agent_token,
    fresh_target,
    machine_info,
    ms,
    percentile,
    split,
)

TELEGRAM_SECRET = "bench_webhook_secret-123"
SLACK_SIGNING_SECRET = "bench-signing-secret"
WAIT = 60.0


async def stored_messages(url: str, expected: int) -> dict[str, tuple[float, int]]:
    """Wait until `expected` customer messages are stored; text → (stored at, conversation).

    "Stored at" is the row's `created_at`, taken by intake inside the transaction (so a
    few statements before its commit), on the same machine's clock as the senders'
    `time.time()`. Reading the table, rather than an agent socket, sees every message even
    when a flooded socket is told to resync."""
    import asyncpg

    dsn = "postgresql://" + url.split("://", 1)[1]
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(WAIT):
            while True:
                count = await conn.fetchval("SELECT count(*) FROM messages WHERE direction = 'in'")
                if count >= expected:
                    break
                await asyncio.sleep(0.05)
        rows = await conn.fetch(
            "SELECT text, created_at, conversation_id FROM messages WHERE direction = 'in'"
        )
    finally:
        await conn.close()
    return {r["text"]: (r["created_at"].timestamp(), r["conversation_id"]) for r in rows}


# --- the two channels, as their servers would call us -----------------------------------------


class TelegramSide:
    name = "telegram"

    def __init__(self) -> None:
        from tests.fakes.telegram_api import TOKEN, FakeTelegramApi

        self.fake = FakeTelegramApi()
        self.token = TOKEN
        self._update_id = 100_000

    async def start(self) -> dict[str, Any]:
        url = await self.fake.start()
        return {
            "telegram_bot_token": self.token,
            "telegram_webhook_secret": TELEGRAM_SECRET,
            "telegram_api_url": url,
        }

    async def stop(self) -> None:
        await self.fake.close()

    def request(self, chat: int, text: str) -> tuple[str, bytes, dict[str, str]]:
        self._update_id += 1
        user = {"id": 7_000_000 + chat, "is_bot": False, "first_name": f"Customer {chat}"}
        update = {
            "update_id": self._update_id,
            "message": {
                "message_id": self._update_id,
                "from": user,
                "chat": {**user, "type": "private"},
                "date": int(time.time()),
                "text": text,
            },
        }
        headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
        }
        return "/webhooks/telegram/default", json.dumps(update).encode(), headers

    def received(self) -> dict[str, float]:
        return {r.fields.get("text", ""): r.at for r in self.fake.sent()}


class SlackSide:
    name = "slack"

    def __init__(self) -> None:
        from tests.fakes.slack_api import FakeSlackApi

        self.fake = FakeSlackApi()
        self._serving: contextlib.AbstractAsyncContextManager[Any] | None = None
        self._event = 0

    async def start(self) -> dict[str, Any]:
        self._serving = self.fake.serve()
        await self._serving.__aenter__()
        return {
            "slack_bot_token": self.fake.token,
            "slack_signing_secret": SLACK_SIGNING_SECRET,
            "slack_api_url": self.fake.api_url,
        }

    async def stop(self) -> None:
        if self._serving is not None:
            await self._serving.__aexit__(None, None, None)

    def request(self, chat: int, text: str) -> tuple[str, bytes, dict[str, str]]:
        from slack_sdk.signature import SignatureVerifier

        self._event += 1
        ts = f"{int(time.time())}.{self._event:06d}"
        body = json.dumps(
            {
                "type": "event_callback",
                "team_id": "T0001",
                "api_app_id": "A0APP",
                "event_id": f"Ev{self._event:08d}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": "T0001", "user_id": "U0BOT", "is_bot": True}],
                "event": {
                    "type": "message",
                    "channel": f"D{chat:06d}",
                    "channel_type": "im",
                    "user": f"U{chat:06d}",
                    "text": text,
                    "ts": ts,
                    "event_ts": ts,
                },
            }
        ).encode()
        stamp = str(int(time.time()))
        signature = SignatureVerifier(SLACK_SIGNING_SECRET).generate_signature(
            timestamp=stamp, body=body
        )
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
        }
        return "/webhooks/slack/default", body, headers

    def received(self) -> dict[str, float]:
        return {posted.text: posted.at for posted in self.fake.posted}


Side = TelegramSide | SlackSide


def _figures(name: str, chats: int, lat: list[float], count: int, span: float) -> dict[str, Any]:
    return {
        "scenario": name,
        "concurrency": chats,
        "n": count,
        "rate": round(count / span, 1) if span > 0 else None,
        "p50_ms": ms(percentile(lat, 50)),
        "p99_ms": ms(percentile(lat, 99)),
    }


async def run_channel(
    side: Side, messages: int, chats: int, profile: Path | None = None
) -> list[dict[str, Any]]:
    async with fresh_target("postgres") as target:
        overrides = await side.start()
        hub = Hub(target, overrides)
        try:
            await hub.start()
            token = await create_agent_token(target.app_url)
            async with aiohttp.ClientSession() as http:
                sent_at: dict[str, float] = {}

                async def chat(number: int, count: int) -> None:
                    for i in range(count):
                        text = f"bench {side.name} chat {number} message {i}"
                        path, body, headers = side.request(number, text)
                        sent_at[text] = time.time()
                        async with http.post(hub.base + path, data=body, headers=headers) as r:
                            if r.status != 200:
                                raise RuntimeError(f"{path}: {r.status} {await r.text()}")

                started = time.time()
                async with Profiler(profile, hub.pid, f"{side.name}-intake"):
                    await asyncio.gather(
                        *(chat(n, c) for n, c in enumerate(split(messages, chats)) if c)
                    )
                    stored = await stored_messages(target.app_url, len(sent_at))
                intake_lat = [stored[t][0] - sent_at[t] for t in sent_at]
                intake = _figures(
                    f"{side.name} webhook → stored",
                    chats,
                    intake_lat,
                    len(sent_at),
                    max(at for at, _c in stored.values()) - started,
                )

                conversations = sorted({c for _at, c in stored.values()})
                reply_sent: dict[str, float] = {}

                async def reply(conversation_id: int) -> None:
                    text = f"bench reply to conversation {conversation_id}"
                    reply_sent[text] = time.monotonic()
                    async with http.post(
                        f"{hub.base}/api/v1/conversations/{conversation_id}/messages",
                        json={"text": text},
                        headers={"Authorization": f"Bearer {token}"},
                    ) as r:
                        if r.status not in (200, 201):
                            raise RuntimeError(f"reply: {r.status} {await r.text()}")

                replies_started = time.monotonic()
                await asyncio.gather(*(reply(c) for c in conversations))
                async with asyncio.timeout(WAIT):
                    # The fakes record arrivals in lists; a short poll is simplest here.
                    while not all(t in side.received() for t in reply_sent):  # noqa: ASYNC110
                        await asyncio.sleep(0.02)
                received = side.received()
                reply_lat = [received[t] - reply_sent[t] for t in reply_sent]
                replies = _figures(
                    f"{side.name} reply → channel API",
                    len(conversations),
                    reply_lat,
                    len(reply_sent),
                    max(received[t] for t in reply_sent) - replies_started,
                )
            baseline = await baseline_asyncpg(target.raw_dsn, chats, 5000)
            baseline["scenario"] = f"baseline asyncpg INSERT ({side.name} run)"
        finally:
            await hub.stop()
            await side.stop()
    intake["ratio_to_baseline"] = (
        round(intake["rate"] / baseline["rate"], 3) if intake["rate"] else None
    )
    return [baseline, intake, replies]


# --- email parsing ------------------------------------------------------------------------


def gbk_mail(size: int = 50 * 1024) -> bytes:
    """A multipart/alternative GBK mail (labelled gb2312, as Chinese clients do) with a
    quoted reply and a small attachment, padded to about `size` bytes."""
    from email.message import EmailMessage

    paragraph = "您好，我的订单还没有收到，请帮忙查一下。喆镕先生昨天已经付款了。\n"
    body = paragraph * max(1, size // (len(paragraph.encode("gbk")) * 3))
    quoted = "\n".join("> " + line for line in body.splitlines()[:20])
    message = EmailMessage()
    message["From"] = "张喆 <zhang@example.cn>"
    message["To"] = "support@example.com"
    message["Subject"] = "订单问题"
    message["Message-ID"] = "<bench-gbk@example.cn>"
    message.set_content(body + "\n在 2026年11月20日，客服 写道：\n" + quoted, charset="gb18030")
    message.add_alternative(
        "<html><body><p>" + body.replace("\n", "<br>") + "</p></body></html>", subtype="html"
    )
    message.add_attachment(b"%PDF-1.4\n" + b"0" * 2048, maintype="application", subtype="pdf")
    raw = message.as_bytes()
    return raw.replace(b'charset="gb18030"', b'charset="gb2312"').replace(
        b"charset=gb18030", b"charset=gb2312"
    )


def stdlib_parse(raw: bytes) -> int:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    total = 0
    for part in parsed.walk():
        if not part.is_multipart():
            with contextlib.suppress(LookupError, UnicodeError):
                content = part.get_content()
                total += len(content)
    return total


def rate(work: Callable[[], object], seconds: float = 3.0) -> dict[str, Any]:
    count, lat = 0, []
    stop = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        work()
        lat.append(time.perf_counter() - t0)
        count += 1
    wall = time.perf_counter() - started
    return {
        "n": count,
        "rate": round(count / wall, 1),
        "p50_ms": ms(percentile(lat, 50)),
        "p99_ms": ms(percentile(lat, 99)),
    }


def email_parse() -> list[dict[str, Any]]:
    from channels.base import InboxSetup, RawInbound
    from channels.email.adapter import EmailAdapter

    raw = gbk_mail()
    setup = InboxSetup(
        id=1,
        key="default",
        kind="email",
        name="Email",
        config={"address": "support@example.com"},
        credentials={},
        public_url="http://127.0.0.1:8080",
    )
    adapter = EmailAdapter(setup)
    inbound = RawInbound(headers={}, query={}, body=raw)
    baseline = {"scenario": "baseline stdlib email parse", **rate(lambda: stdlib_parse(raw))}
    ours = {"scenario": "email adapter parse", **rate(lambda: adapter.parse(inbound))}
    ours["ratio_to_baseline"] = round(ours["rate"] / baseline["rate"], 3)
    for row in (baseline, ours):
        row["bytes"] = len(raw)
    return [baseline, ours]


# --- report --------------------------------------------------------------------------------


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | concurrency | n | per second | p50 ms | p99 ms | ratio to baseline |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            "| {scenario} | {c} | {n} | {rate} | {p50} | {p99} | {ratio} |".format(
                scenario=row["scenario"],
                c=row.get("concurrency", "—"),
                n=row.get("n", "—"),
                rate=f"{row['rate']:,}" if row.get("rate") is not None else "—",
                p50=row.get("p50_ms", "—"),
                p99=row.get("p99_ms", "—"),
                ratio=row.get("ratio_to_baseline", "—"),
            )
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    sides: list[Callable[[], Side]] = []
    if "telegram" in args.channels:
        sides.append(TelegramSide)
    if "slack" in args.channels:
        sides.append(SlackSide)
    runs: list[Awaitable[list[dict[str, Any]]]] = []
    for make in sides:
        runs.append(run_channel(make(), args.messages, args.chats, args.profile))
    for run in runs:  # one at a time: they share the machine
        rows.extend(await run)
    if "email" in args.channels:
        rows.extend(email_parse())
    if args.profile:
        from bench.intake import summarize_profile

        for path in sorted(args.profile.glob("*-intake.txt")):
            print(path.stem, json.dumps(summarize_profile(path), indent=1, ensure_ascii=False))
    return {"code": code_version(), "machine": machine_info(), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--channels", default="telegram,slack,email")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument(
        "--profile", type=Path, help="py-spy the hub during intake (figures then not valid)"
    )
    args = parser.parse_args(argv)
    args.channels = set(args.channels.split(","))
    report = asyncio.run(main_async(args))
    print(render(report["rows"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

__all__ = ["SECRET", "main"]
