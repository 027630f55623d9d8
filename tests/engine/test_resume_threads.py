"""Float sums depend on torch's thread count, so a run records the count it started with and a
resume runs with that count again (so its numbers match an uninterrupted run), or, on a machine
with fewer cores, says in the console and in metrics.jsonl that its numbers will differ in the
last bits."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from labconsole.engine import events as ev
from labconsole.engine.api import run_job
from labconsole.engine.records import Manifest, read_record
from labconsole.engine.resume import thread_count_warning
from labconsole.engine.runs import RunDir
from labconsole.presets import load_preset


def _preset() -> Any:
    return load_preset("quickstart", ['stages=["erm"]', "erm.epochs=2"], smoke=True)


def _stop_after_first_epoch(event: Any) -> None:
    if isinstance(event, ev.EpochResult):
        raise KeyboardInterrupt


def _warnings(events: list[Any]) -> list[str]:
    return [e.message for e in events if isinstance(e, ev.LogRecord) and e.level == "warning"]


def test_a_resume_runs_with_the_thread_count_the_run_started_with(tmp_path: Path) -> None:
    torch.set_num_threads(1)  # the engine tests' fixture puts the count back afterwards
    run = run_job(_preset(), emit=_stop_after_first_epoch, runs_root=tmp_path / "runs")
    assert run.read_manifest().torch_threads == 1
    other = RunDir(Path(shutil.copytree(run.path, tmp_path / "other")))

    same: list[Any] = []
    assert run_job(_preset(), emit=same.append, resume=run.path).status() == "done"
    assert _warnings(same) == []

    torch.set_num_threads(2)
    during: list[int] = []
    seen: list[Any] = []

    def record(event: Any) -> None:
        seen.append(event)
        if isinstance(event, ev.EpochResult):
            during.append(torch.get_num_threads())

    assert run_job(_preset(), emit=record, resume=other.path).status() == "done"
    assert during and set(during) == {1}, "the resumed epochs ran with another thread count"
    assert torch.get_num_threads() == 2, "the caller's thread count was not put back"
    assert _warnings(seen) == []
    assert other.read_manifest().torch_threads == 1  # still what the run started with
    assert (other.path / "summary.json").read_bytes() == (run.path / "summary.json").read_bytes()


def test_a_resume_on_fewer_cores_than_the_run_used_is_warned_about(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    run = run_job(_preset(), emit=_stop_after_first_epoch, runs_root=tmp_path / "runs")
    manifest_file = run.path / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["torch_threads"] = (os.cpu_count() or 1) + 1  # as if started on a bigger machine
    manifest_file.write_text(json.dumps(manifest))

    seen: list[Any] = []
    assert run_job(_preset(), emit=seen.append, resume=run.path).status() == "done"
    (warning,) = [w for w in _warnings(seen) if "thread" in w]
    assert f"started with {manifest['torch_threads']} torch thread" in warning and "resumed with 1" in warning
    assert "last bits" in warning
    logged = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert any(rec.get("level") == "warning" and rec.get("message") == warning for rec in logged)


def test_a_manifest_from_before_the_thread_count_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"preset": "quickstart", "stages": ["erm"], "status": "cancelled"}))
    manifest = read_record(Manifest, path)
    assert manifest.torch_threads is None
    assert thread_count_warning(manifest.torch_threads, 4) is None  # unknown: nothing to say


def test_thread_count_warning_names_both_counts() -> None:
    assert thread_count_warning(3, 3) is None
    text = thread_count_warning(7, 3)
    assert text is not None and "7" in text and "3" in text and "last bits" in text
