"""Helpers for the console tests (Pilot)."""

from __future__ import annotations

from typing import Any

from labconsole.ui.app import LabConsoleApp
from labconsole.ui.screenshots import open_session, wait_for

__all__ = ["notifications", "open_session", "wait_for"]


def notifications(app: LabConsoleApp) -> list[Any]:
    return list(app._notifications)
