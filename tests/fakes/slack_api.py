"""A fake Slack Web API on 127.0.0.1, port 0: the methods the hub calls, answered as Slack does.

- `POST /api/auth.test` — our bot user, bot id and team (bolt calls it once per app).
- `POST /api/chat.postMessage` — JSON or form; answers `ts`, `channel` and the message
  with our `bot_id`, as Slack does; the post is kept in `posted`.
- `files.getUploadURLExternal` → an upload URL on this server (`POST /upload/v1/<id>`,
  answered `text/plain` like Slack's) → `files.completeUploadExternal`, which shares the
  uploaded files into the channel and thread with the initial comment (one `posted` entry).
- `GET /files-pri/<team>-<file id>/<name>` — `url_private` downloads, which need the bot
  token as a bearer; without it Slack redirects to its sign-in page, and so does this.

Every Web API request is kept in `calls`; every download attempt in `downloads`.
`fail_next(method, 429, retry_after=N)` answers the next call of that method with Slack's
rate-limit answer (status 429, `Retry-After: N`, `{"ok":false,"error":"ratelimited"}`);
`fail_next(method, 503)` with a load balancer's HTML error page; `fail_next(method, 200,
error="channel_not_found")` with an `ok: false` answer.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TEAM_ID = "T0001"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0APP"
DEFAULT_TOKEN = "xoxb-1111-2222-fake"


@dataclass(frozen=True)
class ApiCall:
    method: str
    token: str | None
    params: dict[str, Any]


@dataclass(frozen=True)
class Posted:
    """A message as it appeared in Slack."""

    channel: str
    text: str
    thread_ts: str | None
    ts: str
    files: list[dict[str, Any]] = field(default_factory=list)
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass(frozen=True)
class _Failure:
    status: int
    retry_after: int | None
    error: str | None


@dataclass
class _Upload:
    file_id: str
    filename: str
    length: int
    data: bytes | None = None


class FakeSlackApi:
    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        self.token = token
        self.url = ""  # set by `serve()`
        self.calls: list[ApiCall] = []
        self.posted: list[Posted] = []
        self.downloads: list[tuple[str, str | None]] = []  # (path, Authorization header)
        self._failures: dict[str, deque[_Failure]] = {}
        self._files: dict[str, tuple[bytes, str]] = {}
        self._uploads: dict[str, _Upload] = {}
        self._ids = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_post("/api/{method}", self._api)
        self.app.router.add_post("/upload/v1/{file_id}", self._upload)
        self.app.router.add_get("/files-pri/{team_file}/{name}", self._download)

    # --- control -----------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[FakeSlackApi]:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        try:
            yield self
        finally:
            await runner.cleanup()

    def fail_next(
        self,
        method: str,
        status: int = 429,
        *,
        retry_after: int | None = None,
        error: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with this failure."""
        queue = self._failures.setdefault(method, deque())
        queue.extend([_Failure(status, retry_after, error)] * times)

    def add_file(self, name: str, data: bytes, mimetype: str) -> dict[str, Any]:
        """A file a user shared: its Slack file object, with `url_private` on this server."""
        file_id = f"F{next(self._ids):06d}"
        self._files[file_id] = (data, mimetype)
        url = f"{self.url}/files-pri/{TEAM_ID}-{file_id}/{name}"
        return {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1],
            "size": len(data),
            "url_private": url,
            "url_private_download": url + "?download=1",
        }

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    def _next_ts(self) -> str:
        n = next(self._ids)
        return f"{1700000000 + n}.{n:06d}"

    # --- the Web API -------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body if isinstance(body, dict) else {})
        else:
            params.update(await request.post())
        authorization = request.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ") if authorization else params.get("token")
        self.calls.append(ApiCall(method, token, params))

        queue = self._failures.get(method)
        if queue:
            failure = queue.popleft()
            return self._failure(failure)
        if token != self.token:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }.get(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"}, status=404)
        return web.json_response(handler(params), headers={"x-oauth-scopes": "chat:write"})

    @staticmethod
    def _failure(failure: _Failure) -> web.Response:
        if failure.status == 429:
            return web.json_response(
                {"ok": False, "error": failure.error or "ratelimited"},
                status=429,
                headers={"Retry-After": str(failure.retry_after or 1)},
            )
        if failure.status >= 500:
            return web.Response(
                status=failure.status,
                text="<html><body><h1>Service Unavailable</h1></body></html>",
                content_type="text/html",
            )
        return web.json_response(
            {"ok": False, "error": failure.error or "fatal_error"}, status=failure.status
        )

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://acme.slack.com/",
            "team": "Acme",
            "user": "switchboard",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _message(self, channel: str, text: str, thread_ts: str | None) -> dict[str, Any]:
        ts = self._next_ts()
        message: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "text": text,
            "ts": ts,
            "team": TEAM_ID,
        }
        if thread_ts:
            message["thread_ts"] = thread_ts
        return message

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, text = params.get("channel"), params.get("text")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not text:
            return {"ok": False, "error": "no_text"}
        thread_ts = params.get("thread_ts") or None
        message = self._message(channel, text, thread_ts)
        self.posted.append(Posted(channel, text, thread_ts, message["ts"]))
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

    def _upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ids):06d}"
        self._uploads[file_id] = _Upload(file_id, params["filename"], int(params["length"]))
        return {"ok": True, "upload_url": f"{self.url}/upload/v1/{file_id}", "file_id": file_id}

    def _complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        files = json.loads(params["files"])
        shared = []
        for item in files:
            upload = self._uploads.get(item["id"])
            if upload is None or upload.data is None:
                return {"ok": False, "error": "file_not_found"}
            shared.append({"id": upload.file_id, "name": upload.filename, "data": upload.data})
        channel = params.get("channel_id")
        if channel:
            thread_ts = params.get("thread_ts") or None
            message = self._message(channel, params.get("initial_comment") or "", thread_ts)
            self.posted.append(
                Posted(channel, message["text"], thread_ts, message["ts"], files=shared)
            )
        return {"ok": True, "files": [{"id": f["id"], "title": f["name"]} for f in shared]}

    # --- files -------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self._uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="not found")
        upload.data = await request.read()
        return web.Response(text=f"OK - {len(upload.data)}", content_type="text/plain")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        authorization = request.headers.get("Authorization")
        self.downloads.append((request.path, authorization))
        if authorization != f"Bearer {self.token}":
            raise web.HTTPFound("/signin?redir=" + request.path)
        team_file = request.match_info["team_file"]
        found = self._files.get(team_file.removeprefix(f"{TEAM_ID}-"))
        if found is None:
            return web.Response(status=404, text="file not found")
        data, mimetype = found
        return web.Response(body=data, content_type=mimetype)
