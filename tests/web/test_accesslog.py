"""The widget's visitor token travels in the socket URL; it must never reach the log."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from web.accesslog import AccessLogger


def test_access_log_leaves_out_the_query_string(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.access")
    access = AccessLogger(logger, "")
    request = make_mocked_request("GET", "/widget/ws?token=secret-visitor-token")
    with caplog.at_level(logging.INFO, logger="test.access"):
        access.log(request, web.Response(status=101), 0.002)
    assert "/widget/ws" in caplog.text
    assert "secret-visitor-token" not in caplog.text
