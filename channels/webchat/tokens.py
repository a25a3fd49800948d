"""Signed visitor tokens: who a widget visitor is, without a server-side session.

The token is handed to the widget iframe once (`POST /widget/session`) and kept in its
localStorage. It is never returned by any other endpoint.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from channels.base import WebhookRejected

TOKEN_MAX_AGE_SECONDS = 365 * 24 * 3600
# An anonymous visitor ("v_" and random), or one the site identified with a signed user
# id ("user:<id>", see customers.identify): the same visitor on every device.
# A site's user id: printable ASCII without space, '"' and '\' (42, a UUID, "auth0|abc",
# an email); short enough that "user:<id>" fits a token and a message's external id.
USER_ID_PATTERN = r"[!#-\[\]-~]{1,128}"
IDENTIFIED_PREFIX = "user:"
_VISITOR_ID = re.compile(rf"^(v_[A-Za-z0-9_-]{{16,64}}|{IDENTIFIED_PREFIX}{USER_ID_PATTERN})$")


@dataclass(frozen=True)
class Visitor:
    inbox_key: str  # the inbox's public key
    visitor_id: str

    @property
    def identified(self) -> bool:
        return self.visitor_id.startswith(IDENTIFIED_PREFIX)


class VisitorTokens:
    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="switchboard.visitor.v1")

    def issue(self, inbox_key: str, visitor_id: str | None = None) -> tuple[Visitor, str]:
        """A token for this visitor id (only ids this hub made or checked), or a new one."""
        visitor = Visitor(inbox_key, visitor_id or "v_" + secrets.token_urlsafe(18))
        token = self._serializer.dumps({"i": visitor.inbox_key, "v": visitor.visitor_id})
        return visitor, token

    def verify(self, token: str, *, max_age: int = TOKEN_MAX_AGE_SECONDS) -> Visitor:
        """The visitor the token names; `WebhookRejected(401)` if forged, altered or expired."""
        # Real tokens are URL-safe ASCII; anything else (a lone surrogate from JSON, header
        # bytes that are not UTF-8) would make itsdangerous raise UnicodeEncodeError: a 500.
        if not token or len(token) > 512 or not token.isascii():
            raise WebhookRejected(401, "missing or malformed visitor token")
        try:
            data = self._serializer.loads(token, max_age=max_age)
        except SignatureExpired:
            raise WebhookRejected(401, "visitor token expired") from None
        except BadSignature:
            raise WebhookRejected(401, "invalid visitor token") from None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("i"), str)
            or not isinstance(data.get("v"), str)
            or not _VISITOR_ID.fullmatch(data["v"])
        ):
            raise WebhookRejected(401, "invalid visitor token")
        return Visitor(data["i"], data["v"])
