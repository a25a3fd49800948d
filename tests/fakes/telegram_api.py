"""A fake Telegram Bot API on 127.0.0.1, port 0, answering the way Telegram does.

Serves `/bot{token}/{method}` (getMe, sendMessage, sendPhoto, sendDocument, getFile,
setWebhook, getWebhookInfo, sendChatAction) and file downloads at
`/file/bot{token}/{path}`. A wrong token gets Telegram's 401. Every request is recorded
with its form fields as sent (PTB posts strings as they are and everything else
JSON-encoded, and switches to multipart when a file is attached) and its files.

Script the next answers of a method with `script("sendMessage", rate_limited(3))`:
Telegram's own error bodies for 429 with `retry_after`, 5xx, 403 "blocked", 400, or
`disconnect()` — the connection dropped after the request arrived, so the sender cannot
know whether the message went out.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

TOKEN = "123456789:AAHfake-telegram-token_for-tests"
BOT_USER = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "Switchboard",
    "username": "switchboard_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


# sendChatAction's actions (Bot API 7.x).
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)


@dataclass(frozen=True)
class UploadedFile:
    filename: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True)
class ApiRequest:
    method: str
    token: str
    fields: dict[str, str]
    files: dict[str, UploadedFile]
    at: float  # time.monotonic() when it arrived

    def json_field(self, name: str) -> Any:
        """A non-string field as PTB sent it: JSON-encoded."""
        return json.loads(self.fields[name])

    @property
    def chat_id(self) -> int:
        return int(self.fields["chat_id"])


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    drop_connection: bool = False


def rate_limited(retry_after: int) -> Answer:
    return Answer(
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after},
        },
    )


def server_error(status: int = 500) -> Answer:
    phrase = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
    return Answer(
        status, {"ok": False, "error_code": status, "description": phrase.get(status, "Error")}
    )


def blocked() -> Answer:
    return Answer(
        403,
        {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
    )


def bad_request(description: str) -> Answer:
    return Answer(
        400, {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}
    )


def disconnect() -> Answer:
    return Answer(0, drop_connection=True)


def _ok(result: Any, **extra: Any) -> Answer:
    return Answer(200, {"ok": True, "result": result, **extra})


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeTelegramApi:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.requests: list[ApiRequest] = []
        self.webhook: dict[str, Any] = {"url": "", "has_custom_certificate": False}
        self._scripts: dict[str, deque[Answer]] = {}
        self._files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, data)
        self._message_ids = itertools.count(5001)
        self._file_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._method)
        app.router.add_get("/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- for tests -----------------------------------------------------------------------

    def script(self, method: str, *answers: Answer) -> None:
        """The next answers to `method`, in order; afterwards it answers normally."""
        self._scripts.setdefault(method, deque()).extend(answers)

    def add_file(self, file_id: str, data: bytes, file_path: str | None = None) -> None:
        """A file a customer sent, ready for getFile and download."""
        self._files[file_id] = (file_path or f"documents/file_{next(self._file_ids)}", data)

    def calls(self, method: str) -> list[ApiRequest]:
        return [r for r in self.requests if r.method == method and r.token == self.token]

    def sent(self) -> list[ApiRequest]:
        """Every accepted-or-not attempt to send the customer something, in order."""
        kinds = {"sendMessage", "sendPhoto", "sendDocument"}
        return [r for r in self.requests if r.method in kinds and r.token == self.token]

    # --- the API -------------------------------------------------------------------------

    async def _method(self, request: web.Request) -> web.StreamResponse:
        token, method = request.match_info["token"], request.match_info["method"]
        fields, files = await self._read_form(request)
        self.requests.append(ApiRequest(method, token, fields, files, time.monotonic()))
        if token != self.token:
            answer = Answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        elif self._scripts.get(method):
            answer = self._scripts[method].popleft()
        else:
            answer = self._answer(method, fields, files)
        if answer.drop_connection:
            # The request arrived; the answer never leaves.
            assert request.transport is not None
            request.transport.abort()
            raise web.HTTPInternalServerError()
        return web.json_response(answer.body, status=answer.status)

    async def _read_form(
        self, request: web.Request
    ) -> tuple[dict[str, str], dict[str, UploadedFile]]:
        fields: dict[str, str] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.method != "POST":
            return fields, files
        form: MultiDictProxy[Any] = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                files[name] = UploadedFile(value.filename, value.content_type, value.file.read())
            else:
                fields[name] = str(value)
        return fields, files

    def _answer(
        self, method: str, fields: dict[str, str], files: dict[str, UploadedFile]
    ) -> Answer:
        if method == "getMe":
            return _ok(BOT_USER)
        if method == "sendChatAction":
            return self._chat_action(fields)
        if method == "getFile":
            return self._get_file(fields)
        if method == "setWebhook":
            return self._set_webhook(fields)
        if method == "getWebhookInfo":
            return _ok({**self.webhook, "pending_update_count": 0})
        if method in ("sendMessage", "sendPhoto", "sendDocument"):
            return self._send(method, fields, files)
        return Answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    def _send(self, method: str, fields: dict[str, str], files: dict[str, UploadedFile]) -> Answer:
        try:
            chat_id = int(fields.get("chat_id", ""))
        except ValueError:
            return bad_request("chat not found")
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": BOT_USER,
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "date": int(time.time()),
        }
        if method == "sendMessage":
            text = fields.get("text", "")
            if not text.strip():
                return bad_request("message text is empty")
            if _utf16_len(text) > 4096:
                return bad_request("message is too long")
            return _ok({**message, "text": text})
        caption = fields.get("caption")
        if caption is not None:
            if _utf16_len(caption) > 1024:
                return bad_request("message caption is too long")
            message["caption"] = caption
        part = "photo" if method == "sendPhoto" else "document"
        upload = files.get(part)
        if upload is None:
            return bad_request(f"there is no {part} in the request")
        file_id = f"BQACAgIAAx-{part}-{next(self._file_ids)}"
        self.add_file(file_id, upload.data, f"{part}s/{file_id}")
        stored = {"file_id": file_id, "file_unique_id": file_id[-8:], "file_size": len(upload.data)}
        if part == "photo":
            message["photo"] = [{**stored, "width": 90, "height": 90}]
        else:
            message["document"] = {
                **stored,
                "file_name": upload.filename,
                "mime_type": upload.content_type,
            }
        return _ok(message)

    def _chat_action(self, fields: dict[str, str]) -> Answer:
        # Like the Bot API: a chat id and one of its actions, or a 400; `True` otherwise.
        try:
            int(fields.get("chat_id", ""))
        except ValueError:
            return bad_request("chat not found")
        if fields.get("action") not in CHAT_ACTIONS:
            return bad_request("wrong parameter action in request")
        return _ok(True)

    def _get_file(self, fields: dict[str, str]) -> Answer:
        file_id = fields.get("file_id", "")
        found = self._files.get(file_id)
        if found is None:
            return bad_request("invalid file_id")
        path, data = found
        if len(data) > 20 * 1024 * 1024:
            return bad_request("file is too big")
        return _ok(
            {
                "file_id": file_id,
                "file_unique_id": file_id[-8:],
                "file_size": len(data),
                "file_path": path,
            }
        )

    def _set_webhook(self, fields: dict[str, str]) -> Answer:
        url = fields.get("url", "")
        secret = fields.get("secret_token")
        if secret is not None and _SECRET_TOKEN.fullmatch(secret) is None:
            return bad_request("secret token contains unallowed characters")
        self.webhook = {
            "url": url,
            "has_custom_certificate": False,
            "allowed_updates": json.loads(fields.get("allowed_updates", "[]")),
        }
        return _ok(True, description="Webhook was set" if url else "Webhook was deleted")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        token, path = request.match_info["token"], request.match_info["path"]
        self.requests.append(ApiRequest("download", token, {"path": path}, {}, time.monotonic()))
        if token != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        for stored_path, data in self._files.values():
            if stored_path == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )
