"""Identified web-chat visitors: the site signs its user's id (and email) with the inbox's
identity secret; a forged identity is an anonymous visitor (SECURITY.md 4: 37)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from customers.identify import email_hash, identifier_hash
from customers.models import Customer, Identity
from switchboard.cli import main
from switchboard.tx import Database
from tests.conftest import AppClient
from tests.customers.support import (
    count,
    customers,
    identities,
    identity,
    identity_secret,
    signed_claims,
    start_session,
    webchat_inbox,
)
from tests.security.support import (
    agent_token,
    bearer,
    conversation_of,
    open_widget,
    receive,
    send_text,
)


async def test_one_identified_user_on_two_devices_is_one_conversation(
    client: AppClient, db: Database
) -> None:
    secret = await identity_secret(db)
    web = await webchat_inbox(db)
    claims = signed_claims(secret, "cust-9001", "kim@example.com", "Kim Park")
    laptop = await start_session(client, web.public_key, claims)
    phone = await start_session(client, web.public_key, claims)
    assert laptop["visitor_id"] == phone["visitor_id"] == "user:cust-9001"

    on_laptop = await open_widget(client, laptop["token"])
    first = await send_text(on_laptop, "laptop-0001", "hello from my laptop")
    assert first["type"] == "ack" and first["seq"] == 1
    on_phone = await open_widget(client, phone["token"])
    await on_phone.send_json({"type": "resume", "last_seq": 0})
    assert (await receive(on_phone, "message"))["message"]["text"] == "hello from my laptop"
    second = await send_text(on_phone, "phone-00001", "and from my phone")
    assert second["type"] == "ack" and second["seq"] == 2
    # The laptop shows the conversation as it grows: its own message, then the phone's.
    shown = [(await receive(on_laptop, "message"))["message"]["text"] for _ in range(2)]
    assert shown == ["hello from my laptop", "and from my phone"]
    await on_laptop.close()
    await on_phone.close()

    (chat,) = await identities(db)
    assert chat.external_id == "user:cust-9001" and chat.verified
    (customer,) = await customers(db)
    assert customer.name == "Kim Park" and customer.verified_email == "kim@example.com"


def _forgeries(secret: str) -> list[tuple[str, dict[str, Any]]]:
    good = signed_claims(secret, "u-1", "lou@example.com", "Lou")
    other = signed_claims(secret, "u-2")
    flipped = good["identifier_hash"][:-1] + ("0" if good["identifier_hash"][-1] != "0" else "1")
    return [
        ("no hash", {"user_id": "u-1", "name": "Lou"}),
        ("empty hash", {**good, "identifier_hash": ""}),
        ("one digit changed", {**good, "identifier_hash": flipped}),
        ("truncated hash", {**good, "identifier_hash": good["identifier_hash"][:32]}),
        ("hash with a tail", {**good, "identifier_hash": good["identifier_hash"] + "00"}),
        ("another user's hash", {**good, "identifier_hash": other["identifier_hash"]}),
        ("wrong user id", {**good, "user_id": "u-2"}),
        ("hash of the wrong secret", signed_claims("not-the-secret", "u-1", "lou@example.com")),
        ("unsigned email", {**other, "email": "lou@example.com"}),
        ("email hash of another email", {**good, "email": "boss@example.com"}),
        (
            "email hash of another user",
            {**other, "email": "lou@example.com", "email_hash": good["email_hash"]},
        ),
        ("email alone", {"email": "lou@example.com", "name": "Lou"}),
        ("hash as a number", {**good, "identifier_hash": 12345}),
        ("user id as a list", {**good, "user_id": ["u-1"]}),
        ("non-ASCII hash", {**good, "identifier_hash": "é" * 64}),
        ("user id with a newline", signed_claims(secret, "u-1\n")),
        ("user id too long", signed_claims(secret, "u" * 129)),
        ("user id with a space", signed_claims(secret, "u 1")),
    ]


async def test_forged_or_incomplete_identities_are_anonymous_visitors(
    client: AppClient, db: Database
) -> None:
    secret = await identity_secret(db)
    web = await webchat_inbox(db)
    anonymous = await start_session(client, web.public_key)

    for label, claims in _forgeries(secret):
        response = await client.post("/widget/session", json={"inbox": web.public_key, **claims})
        assert response.status == 200, label
        data = await response.json()
        # The same answer as for a visitor who claimed nothing: no hint of what failed.
        assert data.keys() == anonymous.keys(), label
        assert data["visitor_id"].startswith("v_"), label

    # The claims were ignored: no identity, no customer, no name or email taken from them.
    assert await count(db, Identity) == 0
    assert await count(db, Customer) == 0

    # The same setup with the real signatures is accepted: the refusals were for the forgery.
    accepted = await start_session(
        client, web.public_key, signed_claims(secret, "u-1", "lou@example.com", "Lou")
    )
    assert accepted["visitor_id"] == "user:u-1"


async def test_without_an_identity_secret_nobody_is_identified(
    client: AppClient, db: Database
) -> None:
    web = await webchat_inbox(db)
    guessed = signed_claims("", "u-1")
    session = await start_session(client, web.public_key, guessed)
    assert session["visitor_id"].startswith("v_")
    assert await count(db, Identity) == 0


async def test_an_identified_token_is_renewed_only_while_the_site_vouches(
    client: AppClient, db: Database
) -> None:
    secret = await identity_secret(db)
    web = await webchat_inbox(db)
    claims = signed_claims(secret, "max")
    identified = await start_session(client, web.public_key, claims)

    # The site stopped vouching (its user logged out): the next person here is a stranger.
    after_logout = await start_session(client, web.public_key, token=identified["token"])
    assert after_logout["visitor_id"].startswith("v_")
    # A forged claim next to a good anonymous token keeps that anonymous visitor.
    forged = {**claims, "identifier_hash": "0" * 64}
    kept = await start_session(client, web.public_key, forged, token=after_logout["token"])
    assert kept["visitor_id"] == after_logout["visitor_id"]
    # Logging in again, from the anonymous token, is the identified visitor again.
    again = await start_session(client, web.public_key, claims, token=kept["token"])
    assert again["visitor_id"] == "user:max"


async def test_long_and_numeric_user_ids_make_working_tokens(
    client: AppClient, db: Database
) -> None:
    secret = await identity_secret(db)
    web = await webchat_inbox(db)
    longest = "auth0|" + "x" * 122
    session = await start_session(client, web.public_key, signed_claims(secret, longest))
    assert session["visitor_id"] == f"user:{longest}"
    widget = await open_widget(client, session["token"])
    assert (await send_text(widget, "long-id-0001", "hi"))["type"] == "ack"
    await widget.close()

    numeric = {"user_id": 42, "identifier_hash": identifier_hash(secret, "42")}
    assert (await start_session(client, web.public_key, numeric))["visitor_id"] == "user:42"


async def test_uppercase_hex_is_the_same_signature(client: AppClient, db: Database) -> None:
    secret = await identity_secret(db)
    web = await webchat_inbox(db)
    claims = {
        "user_id": "nia",
        "identifier_hash": identifier_hash(secret, "nia").upper(),
        "email": "Nia@Example.com",
        "email_hash": email_hash(secret, "nia", "Nia@Example.com").upper(),
    }
    session = await start_session(client, web.public_key, claims)
    assert session["visitor_id"] == "user:nia"
    (customer,) = await customers(db)
    assert customer.verified_email == "nia@example.com"


async def test_no_api_ever_returns_a_visitor_token(client: AppClient, db: Database) -> None:
    secret = await identity_secret(db)
    web = await webchat_inbox(db)
    session = await start_session(client, web.public_key, signed_claims(secret, "ola", "o@x.io"))
    widget = await open_widget(client, session["token"])
    assert (await send_text(widget, "ola-msg-0001", "hello"))["type"] == "ack"
    await widget.close()
    chat = await identity(db, "user:ola")
    assert chat is not None
    conversation_id = await conversation_of(db, "user:ola")
    headers = bearer(await agent_token(db))

    pages = [
        "/api/v1/me",
        "/api/v1/conversations",
        f"/api/v1/conversations/{conversation_id}",
        f"/api/v1/conversations/{conversation_id}/messages",
        f"/api/v1/customers/{chat.customer_id}",
        f"/api/v1/customers/{chat.customer_id}/suggestions",
        "/api/v1/openapi.json",
    ]
    signature = session["token"].rsplit(".", 1)[-1]
    for path in pages:
        response = await client.get(path, headers=headers)
        assert response.status == 200, path
        body = await response.text()
        assert session["token"] not in body and signature not in body, path


def test_the_cli_shows_one_identity_secret_per_inbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in list(os.environ):
        if key.startswith("SWITCHBOARD_") and key != "SWITCHBOARD_TEST_REQUIRE_SERVICES":
            monkeypatch.delenv(key)
    monkeypatch.setenv("SWITCHBOARD_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["migrate"]) == 0
    capsys.readouterr()

    assert main(["inbox", "show-identity-secret", "--inbox", "default"]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["inbox", "show-identity-secret"]) == 0
    assert capsys.readouterr().out.strip() == first
    assert len(first) == 64 and int(first, 16) >= 0

    assert main(["inbox", "show-identity-secret", "--inbox", "nope"]) == 1
    assert "no web-chat inbox" in capsys.readouterr().err


async def test_a_signed_email_given_later_is_taken_when_nobody_holds_it(
    client: AppClient, db: Database
) -> None:
    secret = await identity_secret(db)
    web = await webchat_inbox(db)
    await start_session(client, web.public_key, signed_claims(secret, "pia"))
    (customer,) = await customers(db)
    assert customer.verified_email is None

    for _ in range(2):  # the second visit finds nothing left to do
        await start_session(client, web.public_key, signed_claims(secret, "pia", "pia@x.io"))

    (customer,) = await customers(db)
    assert customer.verified_email == customer.email == "pia@x.io"
    assert await count(db, Identity) == 1
