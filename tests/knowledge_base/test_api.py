"""The knowledge-base routes under /api/v1: agents read, admins write, every save is a
version, and nothing a body says can choose the author, the version or an id."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard.tx import Database
from tests.conftest import AppClient
from tests.knowledge_base.support import HOURS, bearer, staff_token

API = "/api/v1/kb/articles"


async def _admin_and_agent(db: Database) -> tuple[int, dict[str, str], dict[str, str]]:
    admin_id, admin = await staff_token(db, "ada@example.com", "admin")
    _agent_id, agent = await staff_token(db, "alex@example.com", "agent")
    return admin_id, bearer(admin), bearer(agent)


async def _create(client: AppClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = await client.post(API, json={**HOURS, **fields}, headers=headers)
    assert response.status == 201, await response.text()
    article: dict[str, Any] = (await response.json())["article"]
    return article


async def test_admin_writes_agent_reads_with_full_history(client: AppClient, db: Database) -> None:
    admin_id, admin, agent = await _admin_and_agent(db)
    created = await _create(client, admin, answer_markdown="Open [daily](https://x.example).")
    assert created["status"] == "draft" and created["version"] == 1
    assert '<a href="https://x.example"' in created["answer_html"]
    path = f"{API}/{created['id']}"
    patched = await client.patch(
        path, json={"question": "What are your hours?", "change_note": "wording"}, headers=admin
    )
    assert (await patched.json())["article"]["version"] == 2
    published = await client.post(f"{path}/publish", headers=admin)
    assert (await published.json())["article"]["status"] == "published"

    shown = await (await client.get(path, headers=agent)).json()
    assert shown["article"]["question"] == "What are your hours?"
    assert shown["article"]["version"] == 3
    versions = (await (await client.get(f"{path}/versions", headers=agent)).json())["versions"]
    assert [(v["version"], v["question"], v["status"]) for v in versions] == [
        (1, "When are you open?", "draft"),
        (2, "What are your hours?", "draft"),
        (3, "What are your hours?", "published"),
    ]
    assert {v["author_user_id"] for v in versions} == {admin_id}
    assert versions[1]["change_note"] == "wording"

    unpublished = await client.post(f"{path}/unpublish", headers=admin)
    assert (await unpublished.json())["article"]["status"] == "draft"


async def test_filters_and_search(client: AppClient, db: Database) -> None:
    _admin_id, admin, agent = await _admin_and_agent(db)
    hours = await _create(client, admin)
    await client.post(f"{API}/{hours['id']}/publish", headers=admin)
    await _create(
        client,
        admin,
        key="shipping_zh",
        locale="zh-Hans",
        question="运费多少？",
        phrasings=["送货要钱吗"],
        answer_markdown="满 100 元免运费。",
    )

    async def keys(query: str) -> list[str]:
        response = await client.get(f"{API}?{query}", headers=agent)
        assert response.status == 200, await response.text()
        return [a["key"] for a in (await response.json())["articles"]]

    assert await keys("") == ["opening_hours", "shipping_zh"]
    assert await keys("status=published") == ["opening_hours"]
    assert await keys("locale=zh") == ["shipping_zh"]
    assert await keys("q=運費") == ["shipping_zh"]
    assert await keys("q=open") == ["opening_hours"]
    assert await keys("q=open&status=draft") == []
    assert await keys("limit=1&offset=1") == ["shipping_zh"]


async def test_who_may_do_what(client: AppClient, db: Database) -> None:
    _admin_id, admin, agent = await _admin_and_agent(db)
    created = await _create(client, admin)
    path = f"{API}/{created['id']}"
    for method, url in (
        ("POST", API),
        ("PATCH", path),
        ("POST", f"{path}/publish"),
        ("POST", f"{path}/unpublish"),
    ):
        response = await client.request(method, url, json=HOURS, headers=agent)
        assert response.status == 403, (method, url)
        response = await client.request(method, url, json=HOURS)
        assert response.status == 401, (method, url)
    for url in (API, path, f"{path}/versions"):
        assert (await client.get(url)).status == 401
    for url in (f"{API}/999", f"{API}/999/versions", f"{API}/abc", f"{API}/99999999999"):
        assert (await client.get(url, headers=agent)).status == 404, url
    assert (await client.patch(f"{API}/999", json={}, headers=admin)).status == 404
    assert (await client.post(f"{API}/999/publish", headers=admin)).status == 404


async def test_mass_assignment_is_ignored(client: AppClient, db: Database) -> None:
    admin_id, admin, _agent = await _admin_and_agent(db)
    sneaky = {"id": 4242, "version": 99, "author_user_id": 7, "status": "published"}
    created = await _create(client, admin, **sneaky, published_at="2020-01-01T00:00:00Z")
    assert created["id"] != 4242 and created["version"] == 1
    assert created["status"] == "draft" and created["published_at"] is None
    path = f"{API}/{created['id']}"
    response = await client.patch(path, json={**sneaky, "created_at": "2000-01-01"}, headers=admin)
    article = (await response.json())["article"]
    assert article["version"] == 2 and article["status"] == "draft"
    versions = (await (await client.get(f"{path}/versions", headers=admin)).json())["versions"]
    assert [v["author_user_id"] for v in versions] == [admin_id, admin_id]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**HOURS, "key": "Not A Slug"}, "key"),
        ({**HOURS, "question": "q" * 501}, "question"),
        ({**HOURS, "answer_markdown": "a" * 20_001}, "answer_markdown"),
        ({**HOURS, "phrasings": ["x" * 501]}, "phrasings"),
        ({**HOURS, "phrasings": [f"p{i}" for i in range(101)]}, "phrasings"),
        ({**HOURS, "tags": "hours"}, "tags"),
        ({**HOURS, "locale": "<script>"}, "locale"),
        ({**HOURS, "question": None}, "question"),
        ({**HOURS, "change_note": 5}, "change_note"),
    ],
)
async def test_bad_input_gets_a_clear_400(
    client: AppClient, db: Database, body: dict[str, Any], message: str
) -> None:
    _admin_id, admin, _agent = await _admin_and_agent(db)
    response = await client.post(API, json=body, headers=admin)
    assert response.status == 400
    assert message in (await response.json())["error"]["message"]


async def test_bad_query_parameters_get_a_400(client: AppClient, db: Database) -> None:
    _admin_id, _admin, agent = await _admin_and_agent(db)
    for query in (
        "status=gone",
        "locale=z%25",
        "limit=-1",
        "limit=1000",
        "q=" + "x" * 201,
        "offset=x",
    ):
        assert (await client.get(f"{API}?{query}", headers=agent)).status == 400, query


async def test_duplicate_key_is_a_conflict(client: AppClient, db: Database) -> None:
    _admin_id, admin, _agent = await _admin_and_agent(db)
    await _create(client, admin)
    assert (await client.post(API, json=HOURS, headers=admin)).status == 409


async def test_every_kb_route_is_in_the_openapi_document(client: AppClient) -> None:
    """Each route the app serves under /kb is described, with the same methods."""
    document = await (await client.get("/api/v1/openapi.json")).json()
    served: dict[str, set[str]] = {}
    for route in client.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if "/kb/" in path and route.method != "HEAD":
            served.setdefault(path.removeprefix("/api/v1"), set()).add(route.method.lower())
    described = {p: set(ops) for p, ops in document["paths"].items() if p.startswith("/kb/")}
    assert served == described
    assert "ArticleWrite" in document["components"]["schemas"]


async def test_search_follows_edits(client: AppClient, db: Database) -> None:
    _admin_id, admin, agent = await _admin_and_agent(db)
    created = await _create(client, admin, key="parking", question="Is there parking?")
    other = await _create(client, admin, key="wifi", question="Do you have wifi?")

    async def found(query: str) -> list[int]:
        response = await client.get(f"{API}?q={query}", headers=agent)
        return [a["id"] for a in (await response.json())["articles"]]

    assert await found("parking") == [created["id"]]
    await client.patch(
        f"{API}/{created['id']}",
        json={
            "question": "Where can I leave my bicycle?",
            "phrasings": [],
            "answer_markdown": "At the rack.",
        },
        headers=admin,
    )
    assert await found("parking") == []
    assert await found("bicyc") == [created["id"]]
    assert await found("wifi") == [other["id"]]


async def test_the_largest_article_fits_and_hostile_markdown_renders_inert(
    client: AppClient, db: Database
) -> None:
    _admin_id, admin, agent = await _admin_and_agent(db)
    largest = {
        **HOURS,
        "question": "问" * 500,
        "phrasings": [f"{n:03d}" + "说" * 497 for n in range(100)],
        "answer_markdown": "答" * 19_900
        + "<script>alert(1)</script>[x](javascript:alert(1))[y](https://ok.example)",
    }
    created = await _create(client, admin, **largest)  # sent as \uXXXX escapes: ~420 KB
    html = (await (await client.get(f"{API}/{created['id']}", headers=agent)).json())["article"][
        "answer_html"
    ]
    assert "<script" not in html and 'href="javascript' not in html  # both shown as text
    assert html.count("<a ") == 1 and 'href="https://ok.example"' in html
