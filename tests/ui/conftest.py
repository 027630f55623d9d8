"""Console tests: every app runs on the scripted FakeEngine, deterministic (no clock/ETA)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labconsole.ui.app import LabConsoleApp, create_app
from labconsole.ui.fake_engine import FakeEngine


@pytest.fixture
def app_factory(tmp_path: Path) -> Callable[..., LabConsoleApp]:
    """``app_factory(engine=None, **kwargs)`` → a console on a FakeEngine (or the one given);
    its session records go under a temporary runs folder unless ``runs_root`` is given."""

    def make(engine: Any = None, **kwargs: Any) -> LabConsoleApp:
        kwargs.setdefault("runs_root", str(tmp_path / "runs"))
        return create_app(engine if engine is not None else FakeEngine(), deterministic=True, **kwargs)

    return make
