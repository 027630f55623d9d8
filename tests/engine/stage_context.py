"""Helpers shared by engine tests (a plain module: test files import it by name)."""

from __future__ import annotations

from pathlib import Path

import torch

from labconsole.engine.context import StageContext
from labconsole.engine.events import NeverCancelled
from labconsole.engine.runs import RunDir


def recording_context(tmp_path: Path, preset) -> StageContext:
    """A StageContext on CPU whose emitted events are kept in ``ctx.state["events"]``."""
    run = RunDir.create(tmp_path, preset.name, preset.seed)
    events: list = []
    ctx = StageContext(
        preset=preset,
        run=run,
        emit_raw=events.append,
        cancel=NeverCancelled(),
        device=torch.device("cpu"),
        run_id=run.name,
    )
    ctx.state["events"] = events
    return ctx
