"""`labconsole run --resume RUN` without a preset continues the run with its own config.toml;
anything typed beside it that differs from that file is refused by name, and nothing is written."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from labconsole.cli.app import app
from labconsole.engine.api import run_job
from labconsole.engine.resume import preset_from_run
from labconsole.engine.runs import RunDir
from labconsole.errors import UserError
from labconsole.presets import load_preset


@pytest.fixture(autouse=True)
def keep_threads() -> Iterator[None]:
    """`labconsole run` sets torch's thread count for the whole process; put it back."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A smoke ERM run stopped by Ctrl-C after its first of two epochs."""
    from labconsole.engine import events as ev

    def stop_after_first_epoch(event: Any) -> None:
        if isinstance(event, ev.EpochResult):
            raise KeyboardInterrupt

    preset = load_preset("quickstart", ['stages=["erm"]', "erm.epochs=2"], smoke=True)
    run = run_job(preset, emit=stop_after_first_epoch, runs_root=tmp_path_factory.mktemp("stopped"))
    assert run.status() == "cancelled"
    return run


@pytest.fixture
def copy(stopped_run: RunDir, tmp_path: Path) -> RunDir:
    return RunDir(Path(shutil.copytree(stopped_run.path, tmp_path / stopped_run.name)))


def snapshot(run: RunDir) -> dict[str, bytes]:
    return {str(p.relative_to(run.path)): p.read_bytes() for p in sorted(run.path.rglob("*")) if p.is_file()}


def test_resume_without_a_preset_uses_the_runs_own_config(copy: RunDir) -> None:
    config = (copy.path / "config.toml").read_bytes()
    result = CliRunner().invoke(app, ["run", "--resume", str(copy.path), "--no-report", "-q"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert copy.status() == "done" and copy.is_done
    assert (copy.path / "config.toml").read_bytes() == config
    assert f"run: {copy.path}" in result.output


def test_resume_without_a_preset_refuses_a_differing_value_by_name(copy: RunDir) -> None:
    before = snapshot(copy)
    result = CliRunner().invoke(app, ["run", "--resume", str(copy.path), "--set", "erm.lr=0.05", "--no-report"])
    assert isinstance(result.exception, UserError), result.output
    assert "erm.lr" in str(result.exception) and "config.toml" in str(result.exception)
    assert snapshot(copy) == before


def test_a_value_equal_to_the_runs_is_accepted(copy: RunDir) -> None:
    preset = preset_from_run(copy.path, ["erm.epochs=2"], smoke=True)
    assert preset.to_toml() == (copy.path / "config.toml").read_text(encoding="utf-8")


def test_run_without_preset_or_resume_says_what_to_give() -> None:
    result = CliRunner().invoke(app, ["run"])
    assert isinstance(result.exception, UserError)
    assert "give a preset" in str(result.exception) and "--resume" in str(result.exception)


def test_smoke_on_a_run_started_without_it_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text('{"preset": "quickstart", "stages": ["erm"], "status": "cancelled"}')
    (run / "config.toml").write_text('name = "quickstart"\nsmoke_profile = false\n')
    with pytest.raises(UserError, match="started without it"):
        preset_from_run(run, smoke=True)


@pytest.mark.parametrize("missing", ["manifest.json", "config.toml"])
def test_resume_of_a_folder_without_its_records_names_what_is_missing(tmp_path: Path, missing: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in {"manifest.json", "config.toml"} - {missing}:
        (run / name).write_text("{}" if name.endswith(".json") else 'name = "quickstart"\n')
    with pytest.raises(UserError, match=missing.replace(".", r"\.")):
        preset_from_run(run)
