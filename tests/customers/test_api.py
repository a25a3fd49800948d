"""The customer routes under /api/v1: who gets in, what a body can and cannot set
(SECURITY.md 4: 26, 27, 28, 32, 37, 46)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conversations.models import Conversation, Message
from customers.models import Customer, CustomerMerge
from switchboard.tx import Database
from tests.conftest import AppClient, create_user, login
from tests.customers.support import (
    count,
    email_from,
    email_inbox,
    identity,
    identity_secret,
    intake,
    signed_claims,
    start_session,
    webchat_inbox,
)
from tests.security.support import agent_token, bearer, open_widget, send_text, staff_token

NOT_FOUND = {"error": {"code": "not_found", "message": "customer not found"}}


async def arrange(client: AppClient, db: Database) -> dict[str, Any]:
    """An identified visitor who wrote, and the same person by (unverified) mail."""
    secret = await identity_secret(db)
    web = await webchat_inbox(db)
    visitor = await start_session(
        client, web.public_key, signed_claims(secret, "jo-1", "jo@example.com", "Jo Ray")
    )
    widget = await open_widget(client, visitor["token"])
    assert (await send_text(widget, "jo-message-1", "where is my parcel?"))["type"] == "ack"
    await widget.close()
    mailed = await intake(
        db, email_from(await email_inbox(db), "jo@example.com", verified=False, name="Jo Ray")
    )
    chat = await identity(db, "user:jo-1")
    assert chat is not None
    return {"visitor": visitor, "chat": chat.customer_id, "mail": mailed.customer_id}


async def test_who_may_read_a_customer(client: AppClient, db: Database) -> None:
    known = await arrange(client, db)
    path = f"/api/v1/customers/{known['chat']}"
    token = known["visitor"]["token"]

    assert (await client.get(path)).status == 401
    assert (await client.get(path, headers={"X-Visitor-Token": token})).status == 401
    assert (await client.get(path, headers=bearer(token))).status == 401
    assert (await client.post(f"{path}/merge", json={"other_id": known["mail"]})).status == 401

    for role in ("agent", "supervisor", "admin"):
        _, user_token = await staff_token(db, f"{role}@example.com", role)
        response = await client.get(path, headers=bearer(user_token))
        assert response.status == 200, role
    profile = (await response.json())["customer"]
    assert profile["name"] == "Jo Ray" and profile["verified_email"] == "jo@example.com"
    assert profile["merged_into"] is None
    assert [
        (i["channel"], i["external_id"], i["verified"], i["reachable"])
        for i in profile["identities"]
    ] == [("webchat", "user:jo-1", True, True)]
    assert len(profile["conversations"]) == 1
    assert token not in await response.text()


async def test_unknown_and_malformed_ids_get_one_and_the_same_404(
    client: AppClient, db: Database
) -> None:
    known = await arrange(client, db)
    headers = bearer(await agent_token(db))
    assert (await client.get(f"/api/v1/customers/{known['chat']}", headers=headers)).status == 200

    for raw in ("999999", "0", "-1", "abc", "99999999999", "2147483648", "１２", "1e3"):
        for suffix in ("", "/suggestions"):
            response = await client.get(f"/api/v1/customers/{raw}{suffix}", headers=headers)
            assert response.status == 404, raw
            assert await response.json() == NOT_FOUND, raw
        response = await client.post(
            f"/api/v1/customers/{raw}/merge", json={"other_id": known["mail"]}, headers=headers
        )
        assert (response.status, await response.json()) == (404, NOT_FOUND), raw
    for other in (999999, "999999", 2**40, 0):
        response = await client.post(
            f"/api/v1/customers/{known['chat']}/merge", json={"other_id": other}, headers=headers
        )
        assert (response.status, await response.json()) == (404, NOT_FOUND), other
    for bad in (None, True, [known["mail"]], {"id": known["mail"]}):
        response = await client.post(
            f"/api/v1/customers/{known['chat']}/merge", json={"other_id": bad}, headers=headers
        )
        assert response.status == 400, bad
    response = await client.post("/api/v1/customer-merges/999999/undo", headers=headers)
    assert response.status == 404
    assert await count(db, CustomerMerge) == 0


async def test_suggest_merge_look_and_undo(client: AppClient, db: Database) -> None:
    known = await arrange(client, db)
    agent_id, token = await staff_token(db, "lena@example.com", "agent")
    headers = bearer(token)
    chat, mail = known["chat"], known["mail"]
    totals = (await count(db, Conversation), await count(db, Message))

    response = await client.get(f"/api/v1/customers/{chat}/suggestions", headers=headers)
    assert response.status == 200
    (suggestion,) = (await response.json())["suggestions"]
    assert suggestion["customer"]["id"] == mail
    assert suggestion["reasons"] == ["same_email", "same_name"]

    # Fields beyond other_id are not the caller's to set: ids, owner and actor are ours.
    response = await client.post(
        f"/api/v1/customers/{chat}/merge",
        json={
            "other_id": mail,
            "survivor_id": mail,
            "merged_id": chat,
            "actor_user_id": 1,
            "merged_into_id": 1,
            "role": "admin",
        },
        headers=headers,
    )
    assert response.status == 201, await response.text()
    merge = (await response.json())["merge"]
    assert (merge["survivor_id"], merge["merged_id"], merge["actor_user_id"]) == (
        chat,
        mail,
        agent_id,
    )
    assert merge["moved"] == {
        "identities": 1,
        "conversations": 1,
        "attachments": 0,
        "notes": 0,
        "tags": 0,
        "attributes": 0,
        "profile": 0,
    }

    gone = await (await client.get(f"/api/v1/customers/{mail}", headers=headers)).json()
    assert gone["customer"]["merged_into"] == chat and gone["customer"]["identities"] == []
    kept = await (await client.get(f"/api/v1/customers/{chat}", headers=headers)).json()
    assert len(kept["customer"]["conversations"]) == 2
    assert [m["id"] for m in kept["customer"]["merges"]] == [merge["id"]]

    again = await client.post(
        f"/api/v1/customers/{chat}/merge", json={"other_id": mail}, headers=headers
    )
    assert again.status == 409
    undo = await client.post(f"/api/v1/customer-merges/{merge['id']}/undo", headers=headers)
    assert undo.status == 200 and (await undo.json())["merge"]["undone_at"]
    assert (
        await client.post(f"/api/v1/customer-merges/{merge['id']}/undo", headers=headers)
    ).status == 409
    back = await (await client.get(f"/api/v1/customers/{mail}", headers=headers)).json()
    assert back["customer"]["merged_into"] is None and len(back["customer"]["conversations"]) == 1
    assert (await count(db, Conversation), await count(db, Message)) == totals


async def test_a_browser_merge_needs_the_csrf_token(client: AppClient, db: Database) -> None:
    known = await arrange(client, db)
    await create_user(db, "sam@example.com")
    csrf = await login(client, "sam@example.com")
    path = f"/api/v1/customers/{known['chat']}/merge"

    refused = await client.post(path, json={"other_id": known["mail"]})
    assert refused.status == 403
    assert await count(db, CustomerMerge) == 0
    accepted = await client.post(
        path, json={"other_id": known["mail"]}, headers={"X-CSRF-Token": csrf}
    )
    assert accepted.status == 201
    # Reading is a GET with the session alone.
    assert (await client.get(f"/api/v1/customers/{known['mail']}")).status == 200


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_crossed_merges_through_the_api_one_wins_one_is_told(
    client: AppClient, db: Database
) -> None:
    known = await arrange(client, db)
    headers = bearer(await agent_token(db))
    a, b = known["chat"], known["mail"]

    responses = await asyncio.gather(
        client.post(f"/api/v1/customers/{a}/merge", json={"other_id": b}, headers=headers),
        client.post(f"/api/v1/customers/{b}/merge", json={"other_id": a}, headers=headers),
    )

    assert sorted(r.status for r in responses) == [201, 409]
    loser = next(r for r in responses if r.status == 409)
    assert (await loser.json())["error"]["code"] in ("already_merged", "merged_record")
    async with db.reading() as session:
        merged = [
            c
            for c in (await session.execute(Customer.__table__.select())).all()
            if c.merged_into_id is not None
        ]
    assert len(merged) == 1


async def test_the_routes_are_in_the_openapi_document(client: AppClient) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    assert "get" in document["paths"]["/customers/{id}"]
    assert "get" in document["paths"]["/customers/{id}/suggestions"]
    assert "post" in document["paths"]["/customers/{id}/merge"]
    assert "post" in document["paths"]["/customer-merges/{id}/undo"]
    assert "patch" in document["paths"]["/customers/{id}"]
    assert {"get", "post"} <= set(document["paths"]["/customers/{id}/notes"])
    schemas = document["components"]["schemas"]
    assert {"tier", "lifecycle_stage", "tags", "attributes"} <= set(
        schemas["Customer"]["properties"]
    )
    assert schemas["CustomerChanges"]["additionalProperties"] is False
    assert document["components"]["schemas"]["Merge"]["required"] == ["other_id"]
