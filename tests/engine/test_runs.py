from __future__ import annotations

import json
from pathlib import Path

import pytest

from labconsole.engine.events import LogRecord
from labconsole.engine.runs import RunDir, atomic_write_text, list_runs


def test_create_layout_and_unique_names(tmp_path: Path) -> None:
    a = RunDir.create(tmp_path, "quick start", 1, when=0)
    b = RunDir.create(tmp_path, "quick start", 1, when=0)
    assert a.path != b.path
    assert a.name.endswith("quick-start-s1")
    assert (a.path / "checkpoints").is_dir() and (a.path / "artifacts").is_dir()


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.json"
    atomic_write_text(target, "old")
    import os

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temp file left behind


def test_events_append_and_torn_line_is_skipped(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "p", 0)
    run.append_event(LogRecord(run_id="r", level="info", message="one"))
    with open(run.path / "metrics.jsonl", "a") as handle:
        handle.write('{"type": "LogRecord", "mess')  # a crash mid-line
    records = list(run.events())
    assert len(records) == 1 and records[0]["message"] == "one"


def test_status_and_listing(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "p", 0)
    run.write_manifest({"status": "cancelled"})
    assert run.status() == "cancelled"
    run.mark_done()
    assert run.status() == "done"
    sweep = tmp_path / "x-sweep"
    inner = RunDir.create(sweep, "q", 1)
    inner.write_manifest({"status": "running"})
    names = {r.path for r in list_runs(tmp_path)}
    assert names == {run.path, inner.path}
    assert json.loads((run.path / "manifest.json").read_text())["status"] == "cancelled"
