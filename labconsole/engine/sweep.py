"""Sweeps: one run per (axis values × seed) in a sweep directory, resumable, aggregated.

``runs/<stamp>-<preset>-sweep/``: ``sweep.json`` (the points and their run folders),
``<point>/`` run directories, and ``aggregate.json`` (mean ± s.e. per combination).
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any, Callable

from labconsole.engine.events import CancelToken, Emit, NeverCancelled
from labconsole.engine.runs import RunDir, atomic_write_json


def point_name(point: dict[str, Any]) -> str:
    parts = [f"{k.split('.')[-1]}={v}" for k, v in point.items() if k != "seed"]
    parts.append(f"s{point.get('seed', 0)}")
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", "_".join(parts))


def run_sweep(
    preset: Any,
    points: list[tuple[dict[str, Any], Any]],
    *,
    emit: Emit,
    cancel: CancelToken | None = None,
    runs_root: Path | str = "runs",
    sweep_dir: Path | None = None,
    run_point: Callable[..., RunDir] | None = None,
) -> Path:
    """Run every point not already ``done`` in ``sweep_dir`` (a new one unless resuming)."""
    from labconsole.engine.api import run_job

    cancel = cancel or NeverCancelled()
    run_point = run_point or run_job
    if sweep_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        sweep_dir = Path(runs_root) / f"{stamp}-{preset.name}-sweep"
    sweep_dir.mkdir(parents=True, exist_ok=True)
    index = {"preset": preset.name, "reproduces": preset.reproduces, "variant": preset.variant,
             "axes": {k: list(v) for k, v in preset.sweep.axes.items()},
             "points": [{"point": p, "dir": point_name(p)} for p, _ in points]}
    atomic_write_json(sweep_dir / "sweep.json", index)
    for point, point_preset in points:
        if cancel.is_set():
            break
        target = sweep_dir / point_name(point)
        run = RunDir(target)
        if run.is_done:
            continue
        resume = target if (target / "manifest.json").exists() else None
        run_point(point_preset, emit=emit, cancel=cancel, run_dir=None if resume else target, resume=resume)
    aggregate_sweep(sweep_dir)
    return sweep_dir


def _mean_se(values: list[float]) -> dict[str, Any]:
    n = len(values)
    if n == 0:
        return {"mean": None, "se": None, "std": None, "n": 0}
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "se": std / math.sqrt(n) if n > 1 else None, "std": std, "n": n}


def flatten_numbers(obj: Any, prefix: str = "") -> dict[str, float]:
    """``{"splits": {"test": {"wga": 0.5}}}`` → ``{"splits.test.wga": 0.5}`` (numbers only)."""
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten_numbers(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = float(obj)
    return out


def aggregate_sweep(sweep_dir: Path) -> dict[str, Any]:
    """Mean ± s.e. over seeds of every number in each run's summary, per combination."""
    index = json.loads((sweep_dir / "sweep.json").read_text())
    groups: dict[str, dict[str, Any]] = {}
    for item in index["points"]:
        point = dict(item["point"])
        seed = point.pop("seed", 0)
        key = json.dumps(point, sort_keys=True)
        entry = groups.setdefault(key, {"point": point, "runs": [], "incomplete": [], "values": {}})
        run = RunDir(sweep_dir / item["dir"])
        if not run.is_done:
            entry["incomplete"].append({"dir": item["dir"], "seed": seed, "status": run.status() if run.path.exists() else "missing"})
            continue
        entry["runs"].append(item["dir"])
        for name, value in flatten_numbers(run.summary()).items():
            entry["values"].setdefault(name, []).append(value)
    combos = []
    for entry in groups.values():
        stats = {name: _mean_se(vals) for name, vals in entry["values"].items()}
        combos.append({"point": entry["point"], "runs": entry["runs"], "incomplete": entry["incomplete"],
                       "metrics": stats})
    aggregate = {"preset": index["preset"], "reproduces": index.get("reproduces", ""), "combinations": combos}
    atomic_write_json(sweep_dir / "aggregate.json", aggregate)
    return aggregate
