"""SWITCHBOARD_TICKET_REOPEN_HOURS: read, checked, and used by the follow-up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from switchboard.settings import SettingsError, load_settings
from tickets.followup import FollowUpPolicy


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"SWITCHBOARD_VAR_DIR": str(tmp_path), **values}


def test_default_is_72_hours(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path))
    assert settings.ticket_reopen_hours == 72
    assert FollowUpPolicy.from_settings(settings).reopen_window == timedelta(hours=72)


@pytest.mark.parametrize(("raw", "hours"), [("0", 0), ("1", 1), ("168", 168)])
def test_values_are_read(tmp_path: Path, raw: str, hours: int) -> None:
    settings = load_settings(env(tmp_path, SWITCHBOARD_TICKET_REOPEN_HOURS=raw))
    assert settings.ticket_reopen_hours == hours


@pytest.mark.parametrize("raw", ["-1", "abc", "1.5", "99999999"])
def test_bad_values_name_the_variable(tmp_path: Path, raw: str) -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_TICKET_REOPEN_HOURS"):
        load_settings(env(tmp_path, SWITCHBOARD_TICKET_REOPEN_HOURS=raw))
