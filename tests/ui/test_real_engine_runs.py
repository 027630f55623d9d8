"""The console's real engine over run directories: the Runs list hides runs that never
started (as ``labconsole runs`` does), and a resume reads the run's own config.toml through
the engine's resume helper, naming a missing or unreadable file. No torch work: cheap."""

from __future__ import annotations

from pathlib import Path

import pytest

from labconsole.engine.runs import STATUS_NEVER_STARTED, RunDir
from labconsole.errors import UserError
from labconsole.ui.real_engine import RealEngine


def make_run(root: Path, preset: str, status: str, when: float) -> RunDir:
    run = RunDir.create(root, preset, 0, when=when)
    run.write_manifest({"preset": preset, "stages": ["erm"], "status": status})
    run.write_summary({})
    return run


def test_the_runs_list_hides_runs_that_never_started(tmp_path: Path) -> None:
    shown = make_run(tmp_path, "quickstart", "cancelled", when=1_700_000_000)
    hidden = make_run(tmp_path, "broken", STATUS_NEVER_STARTED, when=1_700_000_100)
    names = [entry.name for entry in RealEngine(str(tmp_path)).list_runs(str(tmp_path))]
    assert shown.name in names
    assert hidden.name not in names


def test_resume_names_a_missing_or_unreadable_config(tmp_path: Path) -> None:
    import threading

    run = make_run(tmp_path, "quickstart", "cancelled", when=1_700_000_000)
    engine = RealEngine(str(tmp_path))
    with pytest.raises(UserError, match=r"no config\.toml"):
        engine.resume_job(str(run.path), emit=lambda event: None, cancel=threading.Event())
    (run.path / "config.toml").write_bytes(b"name = '\xff\xfe'\n")  # not UTF-8
    with pytest.raises(UserError, match=r"config\.toml: unreadable"):
        engine.resume_job(str(run.path), emit=lambda event: None, cancel=threading.Event())
