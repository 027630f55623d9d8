"""Where the runs of a sweep execute.

* ``LocalExecutor`` (default): in this process, one run after the other; or, when several GPUs
  are visible and the preset may use CUDA, one worker process per GPU pinned with
  ``CUDA_VISIBLE_DEVICES`` (each GPU takes the next waiting run when its run ends).
* ``SlurmExecutor``: a job array through ``submitit`` (partition, time limit, GPUs per run);
  ``cluster="local"`` runs the same jobs as local subprocesses (how it is tested).

Every run records where it ran in its manifest under ``executor`` (kind, host, GPU pinning,
SLURM job id). A point job is plain data (``PointJob``) so it can be pickled to a cluster.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from labconsole.engine.events import CancelToken, Emit, Event, LogRecord, NeverCancelled
from labconsole.engine.runs import RunDir, atomic_write_json
from labconsole.errors import UserError


@dataclass
class PointJob:
    name: str
    run_dir: str
    preset: dict[str, JsonValue]  # the resolved preset of this point (model_dump, JSON-safe)
    resume: bool = False


@dataclass
class PointOutcome:
    name: str
    status: str  # done | failed | cancelled | submitted
    error: str | None = None
    where: dict[str, JsonValue] = field(default_factory=dict)


def where_am_i(kind: str, **extra: JsonValue) -> dict[str, JsonValue]:
    info: dict[str, JsonValue] = {
        "kind": kind,
        "host": platform.node(),
        "pid": os.getpid(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    info.update({k: v for k, v in extra.items() if v is not None})
    return info


def execute_point(
    job: PointJob, *, emit: Emit, cancel: CancelToken | None = None, where: dict[str, JsonValue] | None = None
) -> PointOutcome:
    """Run one point in this process and record where it ran; failures become outcomes."""
    from labconsole.engine.api import run_job
    from labconsole.presets import preset_from_dict

    preset = preset_from_dict(job.preset, source=f"sweep point {job.name}")
    where = where or where_am_i("local")
    target = Path(job.run_dir)
    resume = target if job.resume and (target / "manifest.json").exists() else None
    error = None
    try:
        run = run_job(preset, emit=emit, cancel=cancel, run_dir=None if resume else target, resume=resume)
        status = run.status()
    except UserError:
        raise
    except Exception as exc:  # run_job has marked the run failed; the sweep goes on
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    if (target / "manifest.json").exists():
        RunDir(target).update_manifest(executor=where)
    return PointOutcome(job.name, status, error, where)


class LocalExecutor:
    kind = "local"

    def __init__(self, devices: list[str] | None = None, python: str = sys.executable) -> None:
        # devices: GPU ids to pin one worker each to; None = detect; [] or one = in-process.
        self.devices = devices
        self.python = python

    def describe(self) -> dict[str, JsonValue]:
        devices: list[JsonValue] | None = list(self.devices) if self.devices is not None else None
        return {"kind": self.kind, "devices": devices}

    def plan_devices(self, preset_device: str) -> list[str]:
        if self.devices is not None:
            return list(self.devices)
        if preset_device == "cpu":
            return []
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible:
            return [d.strip() for d in visible.split(",") if d.strip()]
        try:
            import torch

            return [str(i) for i in range(torch.cuda.device_count())]
        except Exception:  # no usable CUDA: run on CPU in-process
            return []

    def run(self, jobs: list[PointJob], *, emit: Emit, cancel: CancelToken, log_dir: Path) -> list[PointOutcome]:
        devices = self.plan_devices(str(jobs[0].preset.get("device", "auto"))) if jobs else []
        if len(devices) <= 1:
            outcomes = []
            for job in jobs:
                if cancel.is_set():
                    break
                outcome = execute_point(job, emit=emit, cancel=cancel, where=where_am_i("local"))
                outcomes.append(outcome)
                if outcome.status == "cancelled":
                    break
            return outcomes
        return self._per_device(jobs, devices, emit=emit, cancel=cancel, log_dir=log_dir)

    def _per_device(
        self, jobs: list[PointJob], devices: list[str], *, emit: Emit, cancel: CancelToken, log_dir: Path
    ) -> list[PointOutcome]:
        """One worker process per device; each device takes the next waiting job."""
        log_dir.mkdir(parents=True, exist_ok=True)
        waiting = list(jobs)
        running: dict[str, tuple[subprocess.Popen[bytes], PointJob, Any]] = {}
        outcomes: list[PointOutcome] = []
        try:
            while waiting or running:
                for device in devices:
                    if device not in running and waiting and not cancel.is_set():
                        job = waiting.pop(0)
                        spec = log_dir / f"{job.name}.job.json"
                        atomic_write_json(spec, job.__dict__)
                        log = open(log_dir / f"{job.name}.log", "w", encoding="utf-8")  # noqa: SIM115 - outlives this block: closed when the job is reaped
                        env = {**os.environ, "CUDA_VISIBLE_DEVICES": device}
                        proc = subprocess.Popen(
                            [self.python, "-m", "labconsole.engine.executors", str(spec)],
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            env=env,
                        )
                        running[device] = (proc, job, log)
                        emit(LogRecord(run_id=job.name, level="info", message=f"{job.name}: started on GPU {device}"))
                for device, (proc, job, log) in list(running.items()):
                    if cancel.is_set() and proc.poll() is None:
                        proc.terminate()
                    code = proc.poll()
                    if code is None:
                        continue
                    log.close()
                    del running[device]
                    status = RunDir(Path(job.run_dir)).status() if Path(job.run_dir).exists() else "failed"
                    error = (
                        None if code == 0 else f"worker exited with code {code}; see {log_dir / (job.name + '.log')}"
                    )
                    outcomes.append(
                        PointOutcome(
                            job.name,
                            status if code == 0 else "failed",
                            error,
                            {"kind": "local-gpu", "cuda_visible_devices": device},
                        )
                    )
                    emit(
                        LogRecord(
                            run_id=job.name,
                            level="info" if code == 0 else "warning",
                            message=f"{job.name}: {outcomes[-1].status} (GPU {device})",
                        )
                    )
                if running:
                    time.sleep(0.5)
                if cancel.is_set() and not running:
                    break
        finally:
            for proc, _, log in running.values():
                proc.terminate()
                log.close()
        return outcomes


def run_point_job(job: PointJob, kind: str = "slurm", extra: dict[str, JsonValue] | None = None) -> PointOutcome:
    """Entry point of a cluster job (pickled by submitit): run one point, print its epochs."""
    job_id = None
    try:
        import submitit

        job_id = submitit.JobEnvironment().job_id
    except Exception:  # not inside a submitit job (direct call)
        job_id = os.environ.get("SLURM_JOB_ID")
    where = where_am_i(kind, slurm_job_id=job_id, **(extra or {}))
    return execute_point(job, emit=_print_event, where=where)


def _print_event(event: Event) -> None:
    kind = type(event).__name__
    if kind in ("EpochResult", "RunFinished", "RunStarted") or (
        isinstance(event, LogRecord) and event.level != "debug"
    ):
        text = {
            k: v
            for k, v in event.to_dict().items()
            if k in ("type", "stage", "epoch", "status", "message", "error", "run_dir")
        }
        print(json.dumps(text, default=str), flush=True)


class SlurmExecutor:
    kind = "slurm"

    def __init__(
        self,
        *,
        partition: str | None = None,
        time_min: int = 240,
        gpus_per_run: int = 1,
        cpus_per_run: int = 8,
        mem_gb: int | None = None,
        max_parallel: int = 32,
        cluster: str | None = "slurm",
        wait: bool = True,
        function: Callable[..., PointOutcome] = run_point_job,
    ) -> None:
        self.partition, self.time_min, self.gpus_per_run = partition, time_min, gpus_per_run
        self.cpus_per_run, self.mem_gb, self.max_parallel = cpus_per_run, mem_gb, max_parallel
        self.cluster, self.wait, self.function = cluster, wait, function

    def describe(self) -> dict[str, JsonValue]:
        return {
            "kind": self.kind,
            "cluster": self.cluster,
            "partition": self.partition,
            "time_min": self.time_min,
            "gpus_per_run": self.gpus_per_run,
            "cpus_per_run": self.cpus_per_run,
        }

    def run(self, jobs: list[PointJob], *, emit: Emit, cancel: CancelToken, log_dir: Path) -> list[PointOutcome]:
        try:
            import submitit
        except ImportError:
            raise UserError(
                "--executor slurm needs the `submitit` package: pip install 'labconsole[cluster]'"
            ) from None
        if not jobs:
            return []
        executor = submitit.AutoExecutor(folder=str(log_dir / "%j"), cluster=self.cluster)
        params: dict[str, Any] = {
            "timeout_min": self.time_min,
            "cpus_per_task": self.cpus_per_run,
            "name": "labconsole",
            "slurm_array_parallelism": self.max_parallel,
        }
        if self.gpus_per_run:
            params["gpus_per_node"] = self.gpus_per_run
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.mem_gb:
            params["mem_gb"] = self.mem_gb
        if self.cluster == "local":  # submitit's local executor takes no slurm_* parameters
            params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
        executor.update_parameters(**params)
        extra = {"partition": self.partition}
        submitted = executor.map_array(
            self.function,
            jobs,
            ["slurm" if self.cluster != "local" else "submitit-local"] * len(jobs),
            [extra] * len(jobs),
        )
        for job, handle in zip(jobs, submitted):
            emit(LogRecord(run_id=job.name, level="info", message=f"{job.name}: submitted as job {handle.job_id}"))
        if not self.wait:
            return [
                PointOutcome(j.name, "submitted", None, {"kind": self.kind, "slurm_job_id": h.job_id})
                for j, h in zip(jobs, submitted)
            ]
        outcomes = []
        for job, handle in zip(jobs, submitted):
            try:
                while not handle.done():
                    if cancel.is_set():
                        handle.cancel(check=False)
                        break
                    time.sleep(1.0)
                outcomes.append(handle.result())
            except Exception as exc:  # a crashed or cancelled job: say which and where its log is
                outcomes.append(
                    PointOutcome(
                        job.name,
                        "failed",
                        f"{type(exc).__name__}: {str(exc)[-500:]}",
                        {"kind": self.kind, "slurm_job_id": handle.job_id},
                    )
                )
            emit(
                LogRecord(
                    run_id=job.name,
                    level="info" if outcomes[-1].status == "done" else "warning",
                    message=f"{job.name}: {outcomes[-1].status} (job {handle.job_id})",
                )
            )
        return outcomes


def _worker_main(spec_path: str) -> int:
    """``python -m labconsole.engine.executors JOB.json``: one point, pinned by the parent."""
    raw = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    job = PointJob(**raw)
    outcome = execute_point(job, emit=_print_event, cancel=NeverCancelled(), where=where_am_i("local-gpu"))
    return 0 if outcome.status in ("done", "cancelled") else 1


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1]))


def make_executor(
    kind: str, *, partition: str | None = None, time_min: int = 240, gpus: int = 1
) -> LocalExecutor | SlurmExecutor:
    """The executor named on the command line (``--executor local|slurm``)."""
    if kind == "local":
        return LocalExecutor()
    if kind == "slurm":
        if time_min <= 0 or gpus < 0:
            raise UserError(f"--time {time_min} / --gpus {gpus}: expected a positive time limit and gpus >= 0")
        return SlurmExecutor(partition=partition, time_min=time_min, gpus_per_run=gpus)
    raise UserError(f"--executor {kind!r}: expected `local` or `slurm`")
