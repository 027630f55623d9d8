"""Sweeps: expansion into runs, resume, aggregation (mean ± s.e., n), failed runs, sweep reports."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from labconsole.engine.runs import RunDir
from labconsole.engine.sweep import aggregate_sweep, run_sweep
from labconsole.errors import UserError
from labconsole.presets import expand_sweep, preset_from_dict

SEEDS = [0, 1, 2]
LRS = [0.001, 0.01]


def sweep_preset(reference: dict[str, Any] | None = None) -> Any:
    return preset_from_dict(
        {
            "name": "sweepy",
            "stages": ["erm"],
            "reproduces": "a test table",
            "sweep": {"seeds": SEEDS, "axes": {"erm.lr": LRS}},
            "reference": reference or {},
        }
    )


def fake_wga(lr: float, seed: int) -> float:
    return 0.3 + 10 * lr + 0.01 * seed * seed


class FakeRunner:
    """Stands in for run_job: writes a finished run directory; can fail chosen points."""

    def __init__(self, fail: set[tuple[float, int]] = frozenset(), user_error: bool = False) -> None:
        self.calls: list[tuple[float, int]] = []
        self.fail, self.user_error = fail, user_error

    def __call__(self, preset: Any, *, emit: Any, cancel: Any, run_dir: Path | None, resume: Path | None) -> RunDir:
        key = (preset.erm.lr, preset.seed)
        self.calls.append(key)
        run = RunDir(Path(run_dir or resume))
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_manifest({"preset": preset.name, "seed": preset.seed, "status": "running"})
        if self.user_error:
            raise UserError("data folder not found: /nowhere")
        if key in self.fail:
            run.update_manifest(status="failed", error="RuntimeError: boom")
            raise RuntimeError("boom")
        run.write_summary({"splits": {"test": {"wga": fake_wga(*key), "mean": 0.9}}})
        run.update_manifest(status="done")
        run.mark_done()
        return run


def test_sweep_runs_every_combination_and_aggregates_mean_and_se(tmp_path: Path) -> None:
    preset = sweep_preset()
    runner = FakeRunner()
    sweep_dir = run_sweep(preset, expand_sweep(preset), emit=lambda e: None, runs_root=tmp_path, run_point=runner)
    assert sorted(runner.calls) == sorted((lr, s) for lr in LRS for s in SEEDS)
    aggregate = aggregate_sweep(sweep_dir).to_json()
    assert aggregate["runs"] == {"planned": 6, "done": 6, "failed": 0}
    for combo in aggregate["combinations"]:
        lr = combo["point"]["erm.lr"]
        values = [fake_wga(lr, s) for s in SEEDS]
        stats = combo["metrics"]["splits.test.wga"]
        assert stats["n"] == 3
        assert stats["mean"] == pytest.approx(statistics.mean(values))
        assert stats["se"] == pytest.approx(statistics.stdev(values) / math.sqrt(3))


def test_resume_skips_runs_already_done(tmp_path: Path) -> None:
    preset = sweep_preset()
    sweep_dir = run_sweep(preset, expand_sweep(preset), emit=lambda e: None, runs_root=tmp_path, run_point=FakeRunner())
    unfinished = sweep_dir / "lr=0.01_s1"
    (unfinished / "done").unlink()
    again = FakeRunner()
    run_sweep(preset, expand_sweep(preset), emit=lambda e: None, sweep_dir=sweep_dir, run_point=again)
    assert again.calls == [(0.01, 1)]


def test_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    preset = sweep_preset(
        reference={
            "Paper numbers (fraction)": {
                "_ours": {"wga": "splits.test.wga"},
                "_points": {"0.001": {"erm.lr": 0.001}, "0.01": {"erm.lr": 0.01}},
                "0.001": {"wga": 0.35},
                "0.01": {"wga": 0.5},
            }
        }
    )
    runner = FakeRunner(fail={(0.001, 2)})
    sweep_dir = run_sweep(preset, expand_sweep(preset), emit=lambda e: None, runs_root=tmp_path, run_point=runner)
    assert len(runner.calls) == 6
    aggregate = aggregate_sweep(sweep_dir).to_json()
    first = next(c for c in aggregate["combinations"] if c["point"]["erm.lr"] == 0.001)
    assert first["metrics"]["splits.test.wga"]["n"] == 2
    assert first["incomplete"] == [{"dir": "lr=0.001_s2", "seed": 2, "status": "failed", "error": "RuntimeError: boom"}]

    from labconsole.report import write_report

    write_report(sweep_dir)
    html = (sweep_dir / "report.html").read_text()
    assert "1 of 6 runs are not finished" in html and "RuntimeError: boom" in html
    # The paper column: 0.001 → 35.0 beside our mean over the two finished seeds.
    ours = 100 * statistics.mean(fake_wga(0.001, s) for s in (0, 1))
    assert f"{ours:.1f} ± " in html and ">35.0<" in html and f">{ours - 35.0:+.1f}<" in html
    for run in ("lr=0.001_s0", "lr=0.01_s2"):
        assert (sweep_dir / run / "report.html").exists()


def test_user_error_stops_the_sweep(tmp_path: Path) -> None:
    preset = sweep_preset()
    runner = FakeRunner(user_error=True)
    with pytest.raises(UserError, match="data folder not found"):
        run_sweep(preset, expand_sweep(preset), emit=lambda e: None, runs_root=tmp_path, run_point=runner)
    assert len(runner.calls) == 1


def test_sweep_json_records_axes_seeds_and_reference(tmp_path: Path) -> None:
    from labconsole.report.source import load_sweep

    preset = sweep_preset(reference={"t": {"0.01": {"wga": 0.5}}})
    sweep_dir = run_sweep(preset, expand_sweep(preset), emit=lambda e: None, runs_root=tmp_path, run_point=FakeRunner())
    source = load_sweep(sweep_dir)
    assert source.index.axes == {"erm.lr": LRS} and source.index.seeds == SEEDS
    assert source.reference == {"t": {"0.01": {"wga": 0.5}}}
    assert all(run is not None and run.is_done for _, _, run in source.runs)
