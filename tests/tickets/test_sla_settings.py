"""SWITCHBOARD_SLA_WARNING_MINUTES: read, checked, and used by the SLA worker."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from switchboard.settings import SettingsError, load_settings
from tickets.sla_worker import SlaWorkerPolicy


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"SWITCHBOARD_VAR_DIR": str(tmp_path), **values}


def test_default_is_15_minutes(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path))
    assert SlaWorkerPolicy.from_settings(settings).warning == timedelta(minutes=15)


@pytest.mark.parametrize(("raw", "minutes"), [("0", 0), ("30", 30), ("10080", 10080)])
def test_values_are_read(tmp_path: Path, raw: str, minutes: int) -> None:
    settings = load_settings(env(tmp_path, SWITCHBOARD_SLA_WARNING_MINUTES=raw))
    assert SlaWorkerPolicy.from_settings(settings).warning == timedelta(minutes=minutes)


@pytest.mark.parametrize("raw", ["-1", "abc", "1.5", "10081"])
def test_bad_values_name_the_variable(tmp_path: Path, raw: str) -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_SLA_WARNING_MINUTES"):
        load_settings(env(tmp_path, SWITCHBOARD_SLA_WARNING_MINUTES=raw))
