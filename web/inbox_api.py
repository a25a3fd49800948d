"""REST routes for the agent inbox's list side under /api/v1: the conversation list by
view and filters, per-view counts, saved views, and search.

Staff only (agent and above). Every list, count and search is narrowed by the caller's
access rules (`web.access.visible_conversations`, `visible_customers`,
`visible_tickets`), so an agent finds only what they could open. Saved views belong to
one agent: another agent's view is the same 404 as no view. Ids and owners come from the
path and the caller, never from the body.

    GET    /inbox/conversations   ?view=mine|unassigned|my_queues|all &status= &priority=
                                  &channel= &tag= (comma-separated) | &saved=<view id>
                                  &cursor= &limit= | &ids=1,2 (those, if in the view)
    GET    /inbox/counts          per built-in and saved view: total and unread
    GET    /inbox/views           the caller's saved views
    POST   /inbox/views           {name, filters}
    PATCH  /inbox/views/{id}      {name?, filters?}
    DELETE /inbox/views/{id}
    GET    /search                ?q= &kind=messages|customers|tickets &cursor= &limit=
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from conversations import inbox_list, search
from conversations.inbox_list import BUILTIN_FILTERS, ListFilter, check_filters
from switchboard.appkeys import DB
from switchboard.errors import InvalidInput, NotFound
from switchboard.models import User
from web.access import (
    access_staff,
    row_id_from,
    visible_conversations,
    visible_customers,
    visible_tickets,
)
from web.bodies import read_json_object

MAX_IDS = 50


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        raise InvalidInput(f"{name} must be a whole number")
    value = int(raw)
    if not lo <= value <= hi:
        raise InvalidInput(f"{name} must be between {lo} and {hi}")
    return value


def _ids_param(raw: str) -> list[int]:
    ids: list[int] = []
    for part in raw.split(","):
        found = row_id_from(part.strip())
        if found is None:
            raise InvalidInput("ids must be conversation ids separated by commas")
        ids.append(found)
    if len(ids) > MAX_IDS:
        raise InvalidInput(f"at most {MAX_IDS} ids")
    return list(dict.fromkeys(ids))


def _view_id(raw: object) -> int:
    found = row_id_from(raw)
    if found is None:
        raise NotFound("view not found")
    return found


async def _filters(request: web.Request, session: AsyncSession, user: User) -> ListFilter:
    """The list's filters: a saved view of the caller's, or the query's own."""
    query = {k: v for k, v in request.query.items() if k not in {"cursor", "limit", "ids"}}
    if "saved" in query:
        if len(query) > 1:
            raise InvalidInput("saved cannot be combined with other filters")
        view = await inbox_list.access_saved_view(session, user.id, _view_id(query["saved"]))
        return check_filters(view.filters)
    if len(request.query) != len(set(request.query)):
        raise InvalidInput("give each filter once, values separated by commas")
    return check_filters(query)


async def conversations(request: web.Request) -> web.Response:
    user = access_staff(request)
    limit = _int_param(request, "limit", inbox_list.PAGE_SIZE, 1, inbox_list.MAX_PAGE_SIZE)
    cursor = request.query.get("cursor") or None
    raw_ids = request.query.get("ids")
    async with request.config_dict[DB].reading() as session:
        filters = await _filters(request, session, user)
        visible = visible_conversations(user)
        if raw_ids is not None:
            ids = _ids_param(raw_ids)
            where = inbox_list.filter_clause(filters, user.id)
            items = await inbox_list.list_items(
                session, user_id=user.id, visible=visible & where, ids=ids
            )
            return web.json_response({"conversations": items, "next_cursor": None})
        page = await inbox_list.list_page(
            session, user_id=user.id, visible=visible, filters=filters, cursor=cursor, limit=limit
        )
    return web.json_response({"conversations": page.conversations, "next_cursor": page.next_cursor})


async def counts(request: web.Request) -> web.Response:
    user = access_staff(request)
    async with request.config_dict[DB].reading() as session:
        saved = await inbox_list.list_saved_views(session, user.id)
        views: dict[str, ListFilter] = dict(BUILTIN_FILTERS)
        for view in saved:
            views[f"saved:{view.id}"] = check_filters(view.filters)
        found = await inbox_list.view_counts(
            session, user_id=user.id, visible=visible_conversations(user), views=views
        )
    return web.json_response({"counts": found, "cap": inbox_list.COUNT_CAP})


async def saved_views(request: web.Request) -> web.Response:
    user = access_staff(request)
    async with request.config_dict[DB].reading() as session:
        views = await inbox_list.list_saved_views(session, user.id)
        return web.json_response({"views": [inbox_list.saved_view(v) for v in views]})


def _body_filters(data: dict[str, Any]) -> ListFilter:
    raw = data.get("filters", {})
    if not isinstance(raw, dict):
        raise InvalidInput("filters must be an object")
    return check_filters(raw)


async def create_view(request: web.Request) -> web.Response:
    user = access_staff(request)
    data = await read_json_object(request)
    name = inbox_list.check_view_name(data.get("name"))
    filters = _body_filters(data)

    async def write(session: AsyncSession) -> dict[str, Any]:
        view = await inbox_list.do_create_view(session, user.id, name, filters)
        return inbox_list.saved_view(view)

    view = await request.config_dict[DB].run(write)
    return web.json_response({"view": view}, status=201)


async def update_view(request: web.Request) -> web.Response:
    user = access_staff(request)
    view_id = _view_id(request.match_info["id"])
    data = await read_json_object(request)
    unknown = sorted(set(data) - {"name", "filters"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0][:40]!r}", code="unknown_field")
    name = inbox_list.check_view_name(data["name"]) if "name" in data else None
    filters = _body_filters(data) if "filters" in data else None

    async def write(session: AsyncSession) -> dict[str, Any]:
        view = await inbox_list.access_saved_view(session, user.id, view_id)
        await inbox_list.do_update_view(session, view, name=name, filters=filters)
        return inbox_list.saved_view(view)

    view = await request.config_dict[DB].run(write)
    return web.json_response({"view": view})


async def delete_view(request: web.Request) -> web.Response:
    user = access_staff(request)
    view_id = _view_id(request.match_info["id"])

    async def write(session: AsyncSession) -> None:
        view = await inbox_list.access_saved_view(session, user.id, view_id)
        await inbox_list.do_delete_view(session, view)

    await request.config_dict[DB].run(write)
    return web.Response(status=204)


async def search_all(request: web.Request) -> web.Response:
    user = access_staff(request)
    query = search.check_query(request.query.get("q"))
    raw_kind = request.query.get("kind")
    if raw_kind is not None and raw_kind not in {k.value for k in search.Kind}:
        raise InvalidInput("kind must be one of: " + ", ".join(k.value for k in search.Kind))
    kinds = [search.Kind(raw_kind)] if raw_kind else list(search.Kind)
    cursor = request.query.get("cursor") or None
    if cursor and raw_kind is None:
        raise InvalidInput("a cursor belongs to one kind: pass kind with it", code="bad_cursor")
    limit = _int_param(request, "limit", search.PAGE_SIZE, 1, search.MAX_PAGE_SIZE)
    db = request.config_dict[DB]
    if search.Kind.MESSAGES in kinds:
        # Whatever arrived since the last search is indexed first, so it is found now.
        async with db.reading() as session:
            behind = await search.pending(session)
        if behind:
            await db.run(search.catch_up)
    groups: dict[str, Any] = {}
    async with db.reading() as session:
        for kind in kinds:
            if kind is search.Kind.MESSAGES:
                page = await search.search_messages(
                    session, query, visible=visible_conversations(user), cursor=cursor, limit=limit
                )
            elif kind is search.Kind.CUSTOMERS:
                page = await search.search_customers(
                    session, query, visible=visible_customers(user), cursor=cursor, limit=limit
                )
            else:
                page = await search.search_tickets(
                    session, query, visible=visible_tickets(user), cursor=cursor, limit=limit
                )
            groups[kind.value] = {
                "items": page.items,
                "next_cursor": page.next_cursor,
                "truncated": page.truncated,
            }
    return web.json_response({"q": query.text, "results": groups})


def setup(app: web.Application) -> None:
    app.router.add_get("/inbox/conversations", conversations)
    app.router.add_get("/inbox/counts", counts)
    app.router.add_get("/inbox/views", saved_views)
    app.router.add_post("/inbox/views", create_view)
    app.router.add_patch("/inbox/views/{id}", update_view)
    app.router.add_delete("/inbox/views/{id}", delete_view)
    app.router.add_get("/search", search_all)
