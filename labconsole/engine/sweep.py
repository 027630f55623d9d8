"""Sweeps: one run per (axis values × seed) in a sweep directory, resumable, aggregated.

``runs/<stamp>-<preset>-sweep/``: ``sweep.json`` (the points and their run folders),
``<point>/`` run directories, and ``aggregate.json`` (mean ± s.e. per combination).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from labconsole.engine.events import CancelToken, Emit, NeverCancelled
from labconsole.engine.records import (
    Combination,
    ExecutorInfo,
    IncompleteRun,
    MeanSE,
    Point,
    RunCounts,
    SweepAggregate,
    SweepIndex,
    SweepPoint,
    flatten_numbers,
    read_record,
)
from labconsole.engine.runs import RunDir, atomic_write_json
from labconsole.errors import UserError

if TYPE_CHECKING:
    from labconsole.engine.executors import LocalExecutor, SlurmExecutor
    from labconsole.presets import Preset

__all__ = ["aggregate_sweep", "flatten_numbers", "point_name", "run_sweep"]


def point_name(point: Point) -> str:
    parts = [f"{k.split('.')[-1]}={v}" for k, v in point.items() if k != "seed"]
    parts.append(f"s{point.get('seed', 0)}")
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", "_".join(parts))


def run_sweep(
    preset: Preset,
    points: list[tuple[Point, Preset]],
    *,
    emit: Emit,
    cancel: CancelToken | None = None,
    runs_root: Path | str = "runs",
    sweep_dir: Path | None = None,
    run_point: Callable[..., RunDir] | None = None,
    executor: LocalExecutor | SlurmExecutor | None = None,
) -> Path:
    """Run every point not already ``done`` in ``sweep_dir`` (a new one unless resuming).

    A failed run is recorded (its manifest says why) and the sweep goes on; a cancelled run
    stops it. ``executor`` is a ``LocalExecutor`` (default) or ``SlurmExecutor``; ``run_point``
    replaces ``run_job`` in-process (tests).
    """
    from labconsole.engine.executors import LocalExecutor, PointJob

    cancel = cancel or NeverCancelled()
    if sweep_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        sweep_dir = Path(runs_root) / f"{stamp}-{preset.name}-sweep"
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    executor = executor or LocalExecutor()
    names = [point_name(p) for p, _ in points]
    if len(set(names)) != len(names):
        raise UserError(
            f"[sweep] of {preset.name}: two combinations give the same folder name; make the axis values distinct"
        )
    index = SweepIndex(
        preset=preset.name,
        reproduces=preset.reproduces,
        variant=preset.variant,
        description=preset.description,
        axes={k: list(v) for k, v in preset.sweep.axes.items()},
        seeds=sorted({p.seed for _, p in points}),
        reference=preset.reference,
        executor=ExecutorInfo.model_validate(executor.describe()),
        points=[SweepPoint(point=p, dir=name) for (p, _), name in zip(points, names)],
    )
    atomic_write_json(sweep_dir / "sweep.json", index.to_json())
    pending = []
    for (_point, point_preset), name in zip(points, names):
        target = sweep_dir / name
        if RunDir(target).is_done:
            continue  # resume: finished runs are kept as they are
        pending.append(
            (
                point_preset,
                PointJob(
                    name=name,
                    run_dir=str(target),
                    preset=point_preset.model_dump(mode="json"),
                    resume=(target / "manifest.json").exists(),
                ),
            )
        )
    if run_point is not None:
        for point_preset, job in pending:
            if cancel.is_set():
                break
            target = Path(job.run_dir)
            resume = target if job.resume else None
            try:
                run = run_point(
                    point_preset, emit=emit, cancel=cancel, run_dir=None if resume else target, resume=resume
                )
            except UserError:
                raise
            except Exception:  # recorded in the run's manifest; the aggregate lists it as failed
                continue
            if run.status() == "cancelled":
                break
    elif pending:
        executor.run([job for _, job in pending], emit=emit, cancel=cancel, log_dir=sweep_dir / "logs")
    aggregate_sweep(sweep_dir)
    return sweep_dir


def _mean_se(values: list[float]) -> MeanSE:
    n = len(values)
    if n == 0:
        return MeanSE(mean=None, se=None, std=None, n=0)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return MeanSE(mean=mean, se=std / math.sqrt(n) if n > 1 else None, std=std, n=n)


def aggregate_sweep(sweep_dir: Path) -> SweepAggregate:
    """Mean ± s.e. over seeds of every number in each run's summary, per combination."""
    index = read_record(SweepIndex, sweep_dir / "sweep.json", missing_ok=False)
    combos: dict[str, Combination] = {}
    values: dict[str, dict[str, list[float]]] = {}
    for item in index.points:
        point = dict(item.point)
        seed = point.pop("seed", 0)
        key = json.dumps(point, sort_keys=True)
        combo = combos.setdefault(key, Combination(point=point, runs=[], incomplete=[], metrics={}))
        run = RunDir(sweep_dir / item.dir)
        if not run.is_done:
            manifest = run.manifest() if run.path.exists() else {}
            error = manifest.get("error")
            combo.incomplete.append(
                IncompleteRun(
                    dir=item.dir,
                    seed=seed,
                    status=run.status() if run.path.exists() else "missing",
                    error=error if isinstance(error, str) else None,
                )
            )
            continue
        combo.runs.append(item.dir)
        for name, value in run.read_summary().numbers().items():
            values.setdefault(key, {}).setdefault(name, []).append(value)
    for key, combo in combos.items():
        combo.metrics = {name: _mean_se(vals) for name, vals in values.get(key, {}).items()}
    aggregate = SweepAggregate(
        preset=index.preset,
        reproduces=index.reproduces,
        runs=RunCounts(
            planned=len(index.points),
            done=sum(len(c.runs) for c in combos.values()),
            failed=sum(1 for c in combos.values() for i in c.incomplete if i.status == "failed"),
        ),
        statistic="mean, sample std (n-1) and standard error std/sqrt(n) over finished seeds",
        combinations=list(combos.values()),
    )
    atomic_write_json(sweep_dir / "aggregate.json", aggregate.to_json())
    return aggregate
