"""CSAT by email through the running hub: a customer's mail comes in by the SMTP
ingress, an agent solves the ticket, the rating request reaches the SMTP peer with a
signed link and the digit instruction, the customer replies "4" (quoting our mail) and
the rating is stored (no thanks by mail: the request was the hour's one automatic mail);
the link then opens the rating page, which thanks."""

from __future__ import annotations

import asyncio
import re
from email.utils import parseaddr

import aiosmtplib

from switchboard.appkeys import SETTINGS, SMTP_INGRESS
from switchboard.tx import Database
from tests.channels.email.conftest import SmtpPeerFactory
from tests.channels.email.conftest import smtp_peer as smtp_peer  # the fixture, used here too
from tests.channels.email.conftest_transports import SUPPORT, email_bytes
from tests.conftest import AppClient, ClientFactory
from tests.security.support import bearer, staff_token
from tests.tickets.test_csat import surveys

ANN = "ann@customer.test"


async def mail_in(client: AppClient, raw: bytes, to: str = SUPPORT) -> None:
    await aiosmtplib.send(
        raw,
        sender=ANN,
        recipients=[to],
        hostname="127.0.0.1",
        port=client.app[SMTP_INGRESS].port,
        start_tls=False,
    )


async def ticket_of_first(client: AppClient, token: str) -> int:
    """The id of the ticket the follow-up opens for the first mail."""
    for _ in range(300):
        listed = await (await client.get("/api/v1/tickets", headers=bearer(token))).json()
        if listed["tickets"]:
            return int(listed["tickets"][0]["id"])
        await asyncio.sleep(0.05)
    raise AssertionError("no ticket opened")


async def test_email_request_digit_reply_and_link(
    make_client: ClientFactory, db: Database, smtp_peer: SmtpPeerFactory
) -> None:
    peer = smtp_peer()
    client = await make_client(
        email_address=SUPPORT,
        smtp_host=peer.host,
        smtp_port=peer.port,
        smtp_tls="none",
        smtp_ingress_port=0,
    )
    agent_id, agent = await staff_token(db, "mail-agent@example.com", "agent")
    await mail_in(
        client,
        email_bytes("Parcel missing", "My parcel never arrived.", sender=f"Ann <{ANN}>"),
    )
    ticket_id = await ticket_of_first(client, agent)
    solved = await client.patch(
        f"/api/v1/tickets/{ticket_id}", json={"status": "solved"}, headers=bearer(agent)
    )
    assert solved.status == 200

    [request] = await peer.wait_for(1, within=20)
    assert request.rcpt_tos == [ANN]
    body = request.message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Reply with a digit from 1 to 5." in text
    public_url = client.app[SETTINGS].public_url
    [link] = re.findall(re.escape(public_url) + r"/csat/[A-Za-z0-9._-]+", text)

    # Ann answers "4" from her mail client, which quotes our mail below it.
    quoted = "\n".join(f"> {line}" for line in text.splitlines())
    reply_to = str(request.message["Reply-To"])
    await mail_in(
        client,
        email_bytes(
            str(request.message["Subject"]),
            f"4\n\nOn Monday, Support wrote:\n{quoted}",
            sender=f"Ann <{ANN}>",
            to=reply_to,
            extra={
                "In-Reply-To": str(request.message["Message-ID"]),
                "References": str(request.message["Message-ID"]),
            },
        ),
        to=parseaddr(reply_to)[1],
    )
    for _ in range(300):  # the follow-up worker takes the reply
        found = await surveys(db)
        if found[0].rating is not None:
            break
        await asyncio.sleep(0.05)
    [survey] = await surveys(db)
    assert (survey.ticket_id, survey.rating, survey.answered_via) == (ticket_id, 4, "reply")
    assert survey.agent_user_id == agent_id
    view = await (await client.get(f"/api/v1/tickets/{ticket_id}", headers=bearer(agent))).json()
    assert view["ticket"]["status"] == "solved"
    # No thanks by mail: the request was this hour's one automatic mail (loop guard).
    assert len(peer.received) == 1

    # The link in the same mail opens the page, which shows the rating and can change it.
    path = link[len(public_url) :]
    page = await client.get(path)
    assert page.status == 200
    assert 'value="4" required checked' in await page.text()
    answer = await client.post(path, data={"rating": "5", "comment": "Found it, thanks"})
    assert answer.status == 200
    [survey] = await surveys(db)
    assert (survey.rating, survey.comment, survey.answered_via) == (5, "Found it, thanks", "link")
    assert "Thank you for your rating!" in await answer.text()
