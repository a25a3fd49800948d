"""The Slack webhook edge with hostile input (SECURITY.md §4 items 1–6, 10, 11): every
refusal is a clear status, nothing is stored, and nothing is a 500."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.channels.slack.support import (
    SECRET,
    WEBHOOK,
    encode,
    eventually,
    filed,
    messages,
    payload,
    post_event,
    signed_headers,
)
from tests.conftest import AppClient, ClientFactory
from tests.fakes.slack_api import FakeSlackApi


async def post_raw(client: AppClient, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    response = await client.post(WEBHOOK, data=body, headers=headers)
    return response.status, await response.text()


async def nothing_stored(db: Any) -> None:
    assert await filed(db) == []
    assert await messages(db) == []


async def test_missing_signature_or_timestamp_is_401_and_nothing_is_stored(
    slack_client: AppClient, db: Any
) -> None:
    body = encode(payload("dm_message"))
    good = signed_headers(body)
    for drop in (["X-Slack-Signature"], ["X-Slack-Request-Timestamp"], list(good)[1:]):
        headers = {k: v for k, v in good.items() if k not in drop}
        status, text = await post_raw(slack_client, body, headers)
        assert status == 401, (drop, text)
    await nothing_stored(db)


async def test_stale_or_future_timestamps_are_replays(slack_client: AppClient, db: Any) -> None:
    body = encode(payload("dm_message"))
    now = int(time.time())
    # Ten seconds past the edge: the exact edges are tested with a fixed clock.
    for skew in (-310, 310, -86_400, 10**9):
        status, _ = await post_raw(slack_client, body, signed_headers(body, timestamp=now + skew))
        assert status == 401, skew
    await nothing_stored(db)
    # Inside the window it is accepted: the refusals above were about time alone.
    status, _ = await post_raw(slack_client, body, signed_headers(body, timestamp=now - 240))
    assert status == 200


async def test_a_body_re_serialised_after_signing_is_refused(
    slack_client: AppClient, db: Any
) -> None:
    data = payload("dm_message")
    headers = signed_headers(json.dumps(data).encode())
    for variant in (
        json.dumps(data, indent=2).encode(),
        json.dumps(data, separators=(",", ":")).encode(),
        json.dumps(data, ensure_ascii=False, sort_keys=True).encode(),
    ):
        status, _ = await post_raw(slack_client, variant, headers)
        assert status == 401
    await nothing_stored(db)


async def test_malformed_signatures_are_401_never_500(slack_client: AppClient, db: Any) -> None:
    body = encode(payload("dm_message"))
    good = signed_headers(body)
    signature, ts = good["X-Slack-Signature"], good["X-Slack-Request-Timestamp"]
    signed_by_other = signed_headers(body, secret="not-" + SECRET)["X-Slack-Signature"]
    for bad_signature in (
        "",
        "v0=",
        signature[:-1],  # truncated
        signature[:20],
        signature + "0",  # over-long
        signature + "a" * 4000,
        "v1=" + signature[3:],
        signature.upper(),
        signed_by_other,
        "v0=" + "é" * 64,  # non-ASCII: compare_digest would raise on it
    ):
        status, text = await post_raw(
            slack_client, body, {**good, "X-Slack-Signature": bad_signature}
        )
        assert status == 401, (bad_signature[:30], text)
    for bad_ts in ("abc", "1e9", f"{ts}.5", f"+{ts}", "-1", "٣" * 10, "9" * 5000):
        status, text = await post_raw(
            slack_client, body, {**good, "X-Slack-Request-Timestamp": bad_ts}
        )
        assert status == 401, (bad_ts[:30], text)
    await nothing_stored(db)


async def test_retries_and_duplicate_event_ids_give_one_message(
    slack_client: AppClient, db: Any
) -> None:
    first = payload("dm_message")
    assert (await post_event(slack_client, first))[0] == 200
    # Slack's retry after a slow answer: same event, retry headers.
    status, _ = await post_event(
        slack_client,
        first,
        extra_headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert status == 200
    # A redelivery re-encoded by Slack (same event_id, fresh signature and event_time).
    again = payload("dm_message")
    again["event_time"] += 60
    assert (await post_event(slack_client, again))[0] == 200

    stored = await eventually(lambda: messages(db), what="the message")
    events = await filed(db)
    assert len(events) == 1 and events[0].dedupe_key == "event:Ev0DM00001"
    assert [m.text.split(",")[0] for m in stored] == ["Hi @U0BOT"]


async def test_url_verification_echoes_the_challenge_only_when_signed(
    slack_client: AppClient, db: Any
) -> None:
    data = payload("url_verification")
    body = encode(data)
    unsigned = await slack_client.post(
        WEBHOOK, data=body, headers={"Content-Type": "application/json"}
    )
    assert unsigned.status == 401
    assert data["challenge"] not in await unsigned.text()
    forged = signed_headers(body, secret="guessed-secret")
    status, text = await post_raw(slack_client, body, forged)
    assert status == 401 and data["challenge"] not in text

    status, text = await post_event(slack_client, data)
    assert status == 200
    assert json.loads(text) == {"challenge": data["challenge"]}
    await nothing_stored(db)


async def test_malformed_bodies_are_400_with_a_plain_error(
    slack_client: AppClient, db: Any
) -> None:
    for body in (
        b"",
        b"{not json",
        b"[]",
        b'[{"type": "event_callback"}]',
        b"[" * 50_000 + b"]" * 50_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b'{"type": "event_callback", "event": {"type": "message"}}',
        b'{"type": "event_callback", "event_id": "Ev1", "event": "message"}',
        b'{"type": "url_verification"}',
    ):
        status, text = await post_raw(slack_client, body, signed_headers(body))
        assert status == 400, (body[:30], text)
        assert json.loads(text)["error"] == "rejected"
        assert "Traceback" not in text
    body = encode(payload("dm_message"))
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=bogus",
    ):
        headers = {**signed_headers(body), "Content-Type": content_type}
        assert (await post_raw(slack_client, body, headers))[0] == 400, content_type
    await nothing_stored(db)


async def test_a_body_that_is_not_utf8_is_refused(slack_client: AppClient, db: Any) -> None:
    """Slack signs UTF-8; other bytes, even signed with the secret, are not Slack's."""
    body = '{"type": "caf\xe9"}'.encode("latin-1")
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }
    status, text = await post_raw(slack_client, body, headers)
    assert status == 401 and "UTF-8" in text
    await nothing_stored(db)


async def test_oversized_and_compressed_bodies_are_refused(
    slack_client: AppClient, db: Any
) -> None:
    big = encode({**payload("dm_message"), "padding": "x" * (1024 * 1024)})
    status, _ = await post_raw(slack_client, big, signed_headers(big))
    assert status == 413
    # Without a Content-Length (chunked), the cap holds while reading.
    chunked = await slack_client.post(WEBHOOK, data=_chunks(big), headers=signed_headers(big))
    assert chunked.status == 413
    plain = encode(payload("dm_message"))
    squeezed = gzip.compress(plain)
    headers = {**signed_headers(plain), "Content-Encoding": "gzip"}
    status, _ = await post_raw(slack_client, squeezed, headers)
    assert status == 415
    await nothing_stored(db)


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]


async def test_an_inbox_without_a_signing_secret_takes_nothing(
    make_client: ClientFactory, slack_api: FakeSlackApi, db: Any
) -> None:
    client = await make_client(
        slack_bot_token="xoxb-1111-2222-fake",
        slack_signing_secret="",
        slack_api_url=slack_api.api_url,
    )
    status, _ = await post_event(client, payload("dm_message"))
    assert status == 401
    status, text = await post_event(client, payload("url_verification"))
    assert status == 401 and "challenge" not in text
    await nothing_stored(db)


async def test_unknown_inbox_key_is_404(slack_client: AppClient) -> None:
    body = encode(payload("dm_message"))
    response = await slack_client.post(
        "/webhooks/slack/nope", data=body, headers=signed_headers(body)
    )
    assert response.status == 404


async def test_bots_echoes_and_notices_store_nothing(
    slack_client: AppClient, slack_api: FakeSlackApi, db: Any
) -> None:
    echo_without_hints = payload("own_echo")
    del echo_without_hints["authorizations"]  # only auth.test says it is ours
    for data in (
        payload("own_echo"),
        echo_without_hints,
        payload("other_bot_message"),
        payload("channel_join"),
        payload("app_mention"),
        payload("reaction_added"),
    ):
        status, text = await post_event(slack_client, data)
        assert status == 200, (data["event_id"], text)
    await nothing_stored(db)
    # Bolt asked auth.test once, through the configured API URL, with the bot token.
    assert [c.token for c in slack_api.calls_to("auth.test")] == ["xoxb-1111-2222-fake"]


async def test_no_200_for_an_event_bolt_could_not_authorize(
    slack_client: AppClient, slack_api: FakeSlackApi, db: Any
) -> None:
    """Bolt answers 200 when auth.test fails; the edge turns that into a retry."""
    slack_api.fail_next("auth.test", 200, error="invalid_auth")
    status, _ = await post_event(slack_client, payload("dm_message"))
    assert status == 503
    await nothing_stored(db)
    # Slack retries; auth.test works again now.
    status, _ = await post_event(
        slack_client, payload("dm_message"), extra_headers={"X-Slack-Retry-Num": "1"}
    )
    assert status == 200
    stored = await eventually(lambda: messages(db), what="the retried message")
    assert len(stored) == 1


async def test_a_database_failure_is_a_500_so_slack_retries(
    slack_client: AppClient, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conversations import filing

    async def broken(*args: Any, **kwargs: Any) -> list[bool]:
        raise ConnectionResetError("database went away")

    monkeypatch.setattr(filing, "do_accept_many", broken)
    status, text = await post_event(slack_client, payload("dm_message"))
    assert status == 500 and "database" not in text
    await nothing_stored(db)
