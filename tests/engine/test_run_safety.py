"""Nothing a user ran is lost or silently changed: resume refuses another configuration and
corrupt records without writing, run directories are claimed atomically, disk problems name the
file, and work that cannot succeed is refused before the first epoch."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from labconsole.engine.api import run_job
from labconsole.engine.records import RunFormatError
from labconsole.engine.runs import STATUS_NEVER_STARTED, RunDir
from labconsole.errors import PresetError, StorageError, UserError
from labconsole.presets import load_preset

ERM_ONLY = ['stages=["erm"]', "erm.epochs=2"]


def erm_preset(*extra: str) -> Any:
    return load_preset("quickstart", [*ERM_ONLY, *extra], smoke=True)


def quiet(event: Any) -> None:
    pass


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A smoke ERM run stopped by Ctrl-C after its first epoch (the one thread of the engine
    tests is not in force for module fixtures; these runs are only compared with themselves)."""
    from labconsole.engine import events as ev

    def stop_after_first_epoch(event: Any) -> None:
        if isinstance(event, ev.EpochResult):
            raise KeyboardInterrupt

    run = run_job(erm_preset(), emit=stop_after_first_epoch, runs_root=tmp_path_factory.mktemp("stopped"))
    assert run.status() == "cancelled"
    return run


def snapshot(run: RunDir) -> dict[str, bytes]:
    return {str(p.relative_to(run.path)): p.read_bytes() for p in sorted(run.path.rglob("*")) if p.is_file()}


# -- resume refuses what is not the run's own ---------------------------------------------------


def test_resume_with_other_values_is_refused_naming_the_keys(stopped_run: RunDir) -> None:
    before = snapshot(stopped_run)
    other = erm_preset("erm.lr=0.05", "erm.epochs=3")
    with pytest.raises(UserError) as caught:
        run_job(other, emit=quiet, resume=stopped_run.path)
    message = str(caught.value)
    assert "erm.lr" in message and "erm.epochs" in message and "config.toml" in message
    assert snapshot(stopped_run) == before  # not a byte written


def test_resume_with_another_preset_is_refused(stopped_run: RunDir) -> None:
    before = snapshot(stopped_run)
    other = load_preset("erm-waterbirds", smoke=True)
    with pytest.raises(UserError, match=r"name: run has 'quickstart', given 'erm-waterbirds'"):
        run_job(other, emit=quiet, resume=stopped_run.path)
    assert snapshot(stopped_run) == before


@pytest.mark.parametrize("record", ["manifest.json", "summary.json"])
def test_resume_on_a_corrupt_record_names_it_and_writes_nothing(
    stopped_run: RunDir, tmp_path: Path, record: str
) -> None:
    import shutil

    copy = RunDir(Path(shutil.copytree(stopped_run.path, tmp_path / stopped_run.name)))
    (copy.path / record).write_bytes(b"\xff\xfe\x00 not json \x9c")
    before = snapshot(copy)
    with pytest.raises(RunFormatError, match=record.replace(".", r"\.")) as caught:
        run_job(erm_preset(), emit=quiet, resume=copy.path)
    assert caught.value.exit_code == 2
    assert snapshot(copy) == before  # the corrupt file is kept as it is; no metrics appended


def test_the_same_preset_resumes_to_the_end(stopped_run: RunDir, tmp_path: Path) -> None:
    import shutil

    copy = RunDir(Path(shutil.copytree(stopped_run.path, tmp_path / stopped_run.name)))
    assert run_job(erm_preset(), emit=quiet, resume=copy.path).status() == "done"


# -- run directories ------------------------------------------------------------------------------


def test_run_directory_is_claimed_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process creating the same name between a check and the mkdir gets a suffix."""
    when = 1_700_000_000.0
    first = RunDir.create(tmp_path, "quickstart", 0, when=when)
    # The other process's directory appears after any existence check would have run.
    monkeypatch.setattr(Path, "exists", lambda self: False)
    second = RunDir.create(tmp_path, "quickstart", 0, when=when)
    monkeypatch.undo()
    assert first.path != second.path
    assert second.path.name == first.path.name + "-2"
    assert (second.path / "checkpoints").is_dir()


# -- disks ------------------------------------------------------------------------------------------


def test_full_disk_names_the_file_and_the_run_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync

    def full_at_best_checkpoint(fd: int) -> None:
        if ".best.safetensors" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_at_best_checkpoint)
    with pytest.raises(StorageError) as caught:
        run_job(erm_preset(), emit=quiet, runs_root=tmp_path)
    monkeypatch.undo()
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "best.safetensors" in message and "disk is full" in message and "--resume" in message
    run = RunDir(next(tmp_path.iterdir()))
    assert run.status() == "failed"
    assert run_job(erm_preset(), emit=quiet, resume=run.path).status() == "done"  # space freed


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_unwritable_runs_folder_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    target = tmp_path / "runs"

    def refuse(self: Path, *args: Any, **kwargs: Any) -> None:
        raise OSError(code, os.strerror(code), str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(StorageError) as caught:
        run_job(erm_preset(), emit=quiet, runs_root=target)
    assert str(target) in str(caught.value) and "--out" in str(caught.value)


# -- validate before work ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override,needle",
    [
        ("neurons.top_k=[100000]", "neurons.top_k"),
        ('neurons.groups=["waterbird-sky"]', "neurons.groups"),
        ('neurons.include=["nothing.*"]', "neurons.include"),
    ],
)
def test_neuron_settings_are_checked_before_the_first_epoch(tmp_path: Path, override: str, needle: str) -> None:
    preset = load_preset("quickstart", ['stages=["erm", "neurons"]', override], smoke=True)
    with pytest.raises(UserError, match=needle):
        run_job(preset, emit=quiet, runs_root=tmp_path)
    assert not list(tmp_path.iterdir())  # refused before the run directory, so before any epoch


def test_failed_start_is_marked_never_started(tmp_path: Path) -> None:
    empty = tmp_path / "not-waterbirds"
    empty.mkdir()
    preset = load_preset("erm-waterbirds", [*ERM_ONLY, f'data.root="{empty}"'])
    with pytest.raises(UserError):
        run_job(preset, emit=quiet, runs_root=tmp_path / "runs")
    (run_path,) = (tmp_path / "runs").iterdir()
    assert RunDir(run_path).status() == STATUS_NEVER_STARTED


def test_preflight_error_names_top_k_and_model(tmp_path: Path) -> None:
    preset = load_preset("quickstart", ['stages=["erm", "neurons"]', "neurons.top_k=[1, 100000]"], smoke=True)
    with pytest.raises(PresetError, match=r"100000.*cifar_resnet8 has \d+ eligible neurons"):
        run_job(preset, emit=quiet, runs_root=tmp_path)


# -- the command line -------------------------------------------------------------------------------


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from labconsole.cli.app import main

    monkeypatch.setattr(sys, "argv", ["labconsole", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), captured.out + captured.err


def test_runs_lists_the_others_when_one_summary_is_undecodable(
    stopped_run: RunDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    good = shutil.copytree(stopped_run.path, tmp_path / "20260101-000000-good-s0")
    bad = shutil.copytree(stopped_run.path, tmp_path / "20260101-000001-bad-s0")
    (bad / "summary.json").write_bytes(b"\x80\x81 not utf-8")
    never = shutil.copytree(stopped_run.path, tmp_path / "20260101-000002-never-s0")
    RunDir(never).update_manifest(status=STATUS_NEVER_STARTED)
    code, output = cli(monkeypatch, capsys, "runs", str(tmp_path))
    assert code == 0, output
    assert good.name in output and "cancelled" in output
    assert bad.name in output and "unreadable" in output and "summary.json" in output
    assert never.name not in output and "never started" in output
    code, output = cli(monkeypatch, capsys, "runs", "--all", str(tmp_path))
    assert never.name in output


def test_report_on_a_folder_that_is_not_a_run_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.toml").write_text("title = 'my project'\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.json").write_text('{"name": "a web app", "icons": []}')
    for folder in (tmp_path, tmp_path / "other"):
        before = sorted(p.name for p in folder.iterdir())
        code, output = cli(monkeypatch, capsys, "report", str(folder))
        assert code == 2, output
        assert "not a labconsole run" in output
        assert sorted(p.name for p in folder.iterdir()) == before


def test_disk_error_outside_a_run_exits_2_naming_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stopped_run: RunDir
) -> None:
    import labconsole.report as report

    def read_only(*args: Any, **kwargs: Any) -> list[Path]:
        raise OSError(errno.EROFS, "Read-only file system", str(stopped_run.path / "report.html"))

    monkeypatch.setattr(report, "write_report", read_only)
    code, output = cli(monkeypatch, capsys, "report", str(stopped_run.path))
    assert code == 2
    assert "report.html" in output and "read-only" in output
