"""Executors: in-process, one worker per GPU (CUDA_VISIBLE_DEVICES pinning), SLURM via submitit's
local executor. Each run records where it ran."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from labconsole.engine.executors import LocalExecutor, PointJob, SlurmExecutor, make_executor
from labconsole.engine.runs import RunDir
from labconsole.engine.sweep import aggregate_sweep, run_sweep
from labconsole.errors import UserError
from labconsole.presets import expand_sweep, load_preset, preset_from_dict


def fake_run_job(
    preset: Any, *, emit: Any, cancel: Any = None, run_dir: Path | None = None, resume: Path | None = None
) -> RunDir:
    run = RunDir(Path(run_dir or resume))
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_manifest({"preset": preset.name, "seed": preset.seed, "status": "done"})
    run.write_summary({"splits": {"test": {"wga": 0.1 * (preset.seed + 1)}}})
    run.mark_done()
    return run


def test_local_executor_runs_in_process_and_records_where(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("labconsole.engine.api.run_job", fake_run_job)
    preset = preset_from_dict({"name": "where", "device": "cpu", "sweep": {"seeds": [0, 1]}})
    sweep_dir = run_sweep(
        preset, expand_sweep(preset), emit=lambda e: None, runs_root=tmp_path, executor=LocalExecutor()
    )
    for seed in (0, 1):
        executor = RunDir(sweep_dir / f"s{seed}").manifest()["executor"]
        assert executor["kind"] == "local" and executor["host"]
    assert aggregate_sweep(sweep_dir).runs.done == 2


def test_cpu_presets_never_fan_out_to_gpus(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert LocalExecutor().plan_devices("cpu") == []
    assert LocalExecutor().plan_devices("auto") == ["0", "1", "2"]


def test_make_executor_rejects_unknown_kinds() -> None:
    with pytest.raises(UserError, match="expected `local` or `slurm`"):
        make_executor("kubernetes")
    assert make_executor("slurm", partition="gpu", time_min=30, gpus=2).describe()["partition"] == "gpu"


def crashing_job(job: PointJob, kind: str, extra: dict[str, Any]) -> Any:
    raise RuntimeError(f"out of memory in {job.name}")


def test_submitit_failure_is_reported_per_point(tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the job process cannot import tests/
    jobs = [PointJob(name="p0", run_dir=str(tmp_path / "p0"), preset={"name": "x"})]
    outcomes = SlurmExecutor(cluster="local", function=crashing_job, time_min=2, gpus_per_run=0).run(
        jobs, emit=lambda e: None, cancel=_Never(), log_dir=tmp_path / "logs"
    )
    assert outcomes[0].status == "failed" and "out of memory in p0" in outcomes[0].error


class _Never:
    def is_set(self) -> bool:
        return False


def _tiny_sweep(lrs: list[float]) -> Any:
    axes = "{" + f'"erm.lr" = [{", ".join(str(x) for x in lrs)}]' + "}"
    return load_preset("presets/quickstart.toml", ['stages=["erm"]', "erm.epochs=1", f"sweep.axes={axes}"], smoke=True)


@pytest.mark.slow
def test_submitit_local_executor_runs_a_real_point(tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    preset = _tiny_sweep([0.001])
    executor = SlurmExecutor(cluster="local", time_min=10, gpus_per_run=0, cpus_per_run=1)
    sweep_dir = run_sweep(preset, expand_sweep(preset), emit=lambda e: None, runs_root=tmp_path, executor=executor)
    run = RunDir(sweep_dir / "lr=0.001_s0")
    assert run.is_done
    where = run.manifest()["executor"]
    assert where["kind"] == "submitit-local" and where["slurm_job_id"]


FAKE_WORKER = """
import json, os, sys
from labconsole.engine.runs import RunDir
spec = json.load(open(sys.argv[-1]))
run = RunDir(__import__("pathlib").Path(spec["run_dir"]))
run.path.mkdir(parents=True, exist_ok=True)
run.write_manifest({"preset": "x", "status": "done",
                    "executor": {"kind": "local-gpu", "cuda_visible_devices": os.environ["CUDA_VISIBLE_DEVICES"]}})
run.write_summary({})
run.mark_done()
"""


def test_one_worker_per_gpu_is_pinned_with_cuda_visible_devices(tmp_path: Path) -> None:
    # A stand-in interpreter runs a fake worker, so the test checks the scheduling and pinning
    # (the real worker path is what the submitit test runs).
    worker = tmp_path / "fake_worker.py"
    worker.write_text(FAKE_WORKER)
    python = tmp_path / "fakepython"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{worker}" "$@"\n')
    python.chmod(0o755)
    preset = preset_from_dict({"name": "gpus", "sweep": {"seeds": [0, 1, 2]}})
    sweep_dir = run_sweep(
        preset,
        expand_sweep(preset),
        emit=lambda e: None,
        runs_root=tmp_path / "runs",
        executor=LocalExecutor(devices=["0", "1"], python=str(python)),
    )
    pinned = [RunDir(sweep_dir / f"s{seed}").manifest()["executor"]["cuda_visible_devices"] for seed in (0, 1, 2)]
    assert sorted(set(pinned)) == ["0", "1"]  # three runs shared two GPUs, each pinned to one
    assert aggregate_sweep(sweep_dir).runs.done == 3
