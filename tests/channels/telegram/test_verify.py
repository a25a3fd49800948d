"""The webhook's checks on their own: the secret token (SECURITY.md 4: 7) and the body's
shape (4: 10), as pure functions of the raw request."""

from __future__ import annotations

import hmac
import json
from typing import Any

import pytest

from channels.base import Delivery, WebhookRejected
from channels.telegram.adapter import TelegramAdapter, valid_secret_token
from switchboard.db import utcnow
from tests.channels.telegram.support import SECRET, payload, raw, setup_for
from tests.fakes.telegram_api import TOKEN


def refusal(adapter: TelegramAdapter, request: Any) -> int:
    with pytest.raises(WebhookRejected) as refused:
        adapter.verify(request, utcnow())
        adapter.delivery(request)
    return refused.value.status


def test_the_right_secret_passes() -> None:
    adapter = TelegramAdapter(setup_for())
    adapter.verify(raw(payload("private_text")), utcnow())


@pytest.mark.parametrize(
    "secret",
    [None, "", "wrong", SECRET[:-1], SECRET + "x", SECRET.upper(), "sécret-ü", TOKEN],
)
def test_a_missing_or_wrong_secret_is_403(secret: str | None) -> None:
    adapter = TelegramAdapter(setup_for())
    assert refusal(adapter, raw(payload("private_text"), secret=secret)) == 403


def test_the_header_name_is_case_insensitive() -> None:
    request = raw(payload("private_text"), secret=None)
    headers = {**request.headers, "x-telegram-bot-api-secret-token": SECRET}
    TelegramAdapter(setup_for()).verify(
        type(request)(headers=headers, query={}, body=request.body), utcnow()
    )


def test_an_inbox_without_a_secret_refuses_every_webhook() -> None:
    adapter = TelegramAdapter(setup_for(secret=""))
    for given in (None, "", "anything"):
        assert refusal(adapter, raw(payload("private_text"), secret=given)) == 403


def test_the_secret_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # as the adapter module sees it
    adapter = TelegramAdapter(setup_for())
    adapter.verify(raw(payload("private_text")), utcnow())
    assert refusal(adapter, raw(payload("private_text"), secret="wrong")) == 403
    assert seen == [(SECRET.encode(), SECRET.encode()), (b"wrong", SECRET.encode())]


def test_delivery_is_keyed_and_ordered_by_update_id() -> None:
    adapter = TelegramAdapter(setup_for())
    assert adapter.delivery(raw(payload("private_text"))) == Delivery(
        dedupe_key="update:829104531", order_key=829104531
    )


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),
        (b"   ", "application/json"),
        (b"{not json", "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (b"[]", "application/json"),
        (b'[{"update_id": 1}]', "application/json"),
        (b'"update"', "application/json"),
        (b"{}", "application/json"),
        (b'{"update_id": "1"}', "application/json"),
        (b'{"update_id": true}', "application/json"),
        (b'{"update_id": 1.0}', "application/json"),
        (b'{"update_id": -1}', "application/json"),
        (b'{"update_id": 9223372036854775808}', "application/json"),  # 2**63
        (b'{"update_id": 1e400}', "application/json"),
        (b'{"update_id": NaN}', "application/json"),
        (b'{"update_id": 1' + b"0" * 5000 + b"}", "application/json"),
        (b'{"update_id": 1, "message": ' + b"[" * 100 + b"]" * 100 + b"}", "application/json"),
        (b'{"update_id": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json"),
        (json.dumps(payload("private_text")).encode(), "text/plain"),
        (json.dumps(payload("private_text")).encode(), "application/x-www-form-urlencoded"),
        (json.dumps(payload("private_text")).encode(), ""),
    ],
)
def test_a_malformed_body_is_400(body: bytes, content_type: str) -> None:
    adapter = TelegramAdapter(setup_for())
    assert refusal(adapter, raw(body, content_type=content_type)) == 400


def test_the_largest_64_bit_update_id_is_accepted() -> None:
    adapter = TelegramAdapter(setup_for())
    body = json.dumps({"update_id": 2**63 - 1, "poll": {}}).encode()
    assert adapter.delivery(raw(body)).order_key == 2**63 - 1


def test_json_content_type_with_a_charset_is_fine() -> None:
    adapter = TelegramAdapter(setup_for())
    request = raw(payload("private_text"), content_type="application/json; charset=utf-8")
    assert adapter.delivery(request).dedupe_key == "update:829104531"


@pytest.mark.parametrize(
    ("secret", "ok"),
    [
        ("a", True),
        ("A-z_0-9", True),
        ("x" * 256, True),
        ("", False),
        ("x" * 257, False),
        ("has space", False),
        ("ünïcode", False),
        ("semi;colon", False),
    ],
)
def test_secret_tokens_telegram_accepts(secret: str, ok: bool) -> None:
    assert valid_secret_token(secret) is ok
