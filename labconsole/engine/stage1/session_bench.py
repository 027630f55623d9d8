"""``bench session``: what the console's Neurons screen does, timed against the plain path.

Both paths run in one process on the same checkpoint and data:

* **plain**: the session without the eval fast path's additions, i.e. the readout loop that
  runs one pass per seed and per control draw through the unfolded model (with its cut cache),
  a loss pass over each group to pick the gradient criterion's worst samples, and a rebuilt
  dataset on open;
* **fast**: BN folded into the convs, the interventions of one call walked together over the
  cut's cached chunks, progressive estimate → exact, losses reused from the baseline pass and
  the dataset read from the run directory.

The fast path's exact numbers are checked against the plain path's (``same_numbers``). Every
step with a target prints it: the time limit (idle 2-core CPU), the least ratio plain / fast,
and whether the median met both.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from labconsole.engine.stage1.folding import FoldedModel
from labconsole.engine.stage1.session import Session

MIN_RATIO = 3.0  # each step at least 3× faster than the plain path measured in the same run


def target_seconds(step: str) -> float | None:
    """The time a step must stay within (None: the step has only the ratio target, or none)."""
    if step == "open":
        return 3.0
    if step.startswith("gradient ranking") and step.endswith("(first)"):
        return 2.0
    if step.startswith("gradient ranking"):
        return 1.0
    if step.endswith("[first numbers]"):
        return 1.0
    if step.endswith("[exact]"):
        return 4.0
    if "cut cached" in step:
        return 0.2
    return None


def has_target(step: str) -> bool:
    return not step.startswith("magnitude")


class PlainSession(Session):
    """The session without the folded fast path: every readout goes the plain way."""

    def folded(self) -> FoldedModel | None:
        return None


def fresh_quickstart_run(folder: Path) -> Path:
    """A run directory with an untrained quickstart model (config.toml + checkpoint): what a
    first ``labconsole run presets/quickstart.toml`` leaves, minus the training."""
    from labconsole.engine.data.registry import load_dataset
    from labconsole.engine.models.checkpoint import save_checkpoint, sidecar_for
    from labconsole.engine.models.factory import create_model
    from labconsole.presets import PRESETS_DIR, load_preset

    source = PRESETS_DIR / "quickstart.toml"
    preset = load_preset(source)
    run = folder / "quickstart-untrained"
    run.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, run / "config.toml")
    bundle = load_dataset(preset.data)
    torch.manual_seed(preset.seed)
    model = create_model(
        preset.model.backbone,
        bundle.groups.num_classes,
        in_channels=bundle.channels,
        image_size=bundle.image_size,
        width=preset.model.width,
    )
    meta = sidecar_for(
        model,
        backbone=preset.model.backbone,
        num_classes=bundle.groups.num_classes,
        in_channels=bundle.channels,
        image_size=bundle.image_size,
        width=preset.model.width,
        dataset=preset.data.dataset,
        group_names=list(bundle.groups.group_names),
    )
    save_checkpoint(run / "checkpoints" / "best.safetensors", model, meta)
    return run


def newest_quickstart_run(runs_root: Path) -> Path | None:
    found = sorted(p.parent.parent for p in Path(runs_root).glob("*quickstart*/checkpoints/best.safetensors"))
    return found[-1] if found else None


def ensure_run_cache(run_dir: Path) -> str:
    """Make sure the run holds its decoded dataset (as a run with Stage I leaves it). Building it
    here, untimed, also warms the in-process pieces the plain path's rebuild reuses."""
    from labconsole.engine.data.registry import load_dataset
    from labconsole.engine.models.checkpoint import read_sidecar, resolve_checkpoint
    from labconsole.engine.stage1 import run_data_cache
    from labconsole.engine.stage1.session_open import data_config_for

    path = resolve_checkpoint(run_dir)
    data_cfg, _, _ = data_config_for(path, read_sidecar(path), None)
    bundle = load_dataset(data_cfg)
    if run_data_cache.read_bundle(Path(run_dir), data_cfg) is not None:
        return "read from the run directory (already there)"
    if run_data_cache.write_bundle(Path(run_dir), data_cfg, bundle):
        return "written to the run directory before timing"
    return "not cacheable: both paths build the dataset"


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def _rank_all(session: Session, fresh: bool) -> None:
    if fresh:
        session._scores.clear()
        session._samples.clear()
    for group in session.group_names:
        session.rank("gradient", group=group, k=3)


def measure_session(run_dir: Path, *, repeats: int = 1, seeds: int = 10) -> dict[str, Any]:
    """Medians over ``repeats`` of every step, for both paths; see the module docstring."""
    rows: dict[str, dict[str, list[float]]] = {}
    same: dict[str, bool] = {}
    cache_note = ensure_run_cache(run_dir)

    def record(step: str, path: str, seconds: float) -> None:
        rows.setdefault(step, {}).setdefault(path, []).append(seconds)

    for _ in range(max(1, repeats)):
        # Fast first: the plain open then profits from warm in-process caches (dataset pieces),
        # which only flatters the plain path.
        sessions: dict[str, Session] = {}
        for path, cls, run_cache in (("fast", Session, True), ("plain", PlainSession, False)):
            seconds, session = _timed(partial(cls.from_checkpoint, run_dir, "cpu", run_cache=run_cache))
            record("open", path, seconds)
            sessions[path] = session
        fast = sessions["fast"]
        for path, session in sessions.items():
            record("gradient ranking, all groups (first)", path, _timed(partial(_rank_all, session, False))[0])
            record("gradient ranking, all groups (again)", path, _timed(partial(_rank_all, session, True))[0])
            record("magnitude ranking", path, _timed(partial(session.rank, "magnitude", k=3))[0])
        counts = fast.train_group_counts
        minority = min(counts, key=lambda name: counts[name])
        names = [name for name, _, _ in fast.layers()]
        last_stage = [n for n in names if n.split(".")[0] == names[-1].split(".")[0]]
        layer1 = next((n for n in names if n.startswith("layer1")), names[1])
        probes = {"conv1": names[0], "layer1 conv": layer1, "last-stage conv": last_stage[-1]}
        for label, layer in probes.items():
            refs = fast.ranking("gradient", minority, "per-layer", 3, layers=[layer]).refs()
            for path, session in sessions.items():
                session._controls.clear()  # each readout pays for its control
                first: list[float] = []
                t0 = time.perf_counter()

                def seen(_estimate: Any, t0: float = t0, first: list[float] = first) -> None:
                    first.append(time.perf_counter() - t0)

                seconds, result = _timed(partial(session.readout, refs, "zero", control_draws=3, on_estimate=seen))
                step = f"zero top-3 {label} ({layer}), train+test, 3-draw control"
                record(step + " [exact]", path, seconds)
                if path == "fast":
                    record(step + " [first numbers]", path, first[0] if first else seconds)
                    fast_result = result
                else:
                    same[step] = _same(fast_result, result)
                again, _ = _timed(partial(session.readout, refs, "zero", control=False))
                record(f"zero top-3 {label} again, cut cached, no control", path, again)
        layer_refs = fast.ranking("gradient", minority, "per-layer", 3, layers=[layer1]).refs()
        for path, session in sessions.items():
            session._controls.clear()
            seconds, result = _timed(
                partial(session.readout, layer_refs, "noise", std=0.01, seeds=seeds, control=False)
            )
            record(f"noise top-3 {layer1}, {seeds} seeds, train+test", path, seconds)
            if path == "fast":
                fast_noise = result
            else:
                same["noise"] = _same(fast_noise, result)
        for session in sessions.values():
            session.close()
    table = []
    for step, by_path in rows.items():
        fast_s = statistics.median(by_path["fast"]) if "fast" in by_path else None
        plain_s = statistics.median(by_path["plain"]) if "plain" in by_path else None
        if plain_s is None and step.endswith("[first numbers]"):
            plain_s = statistics.median(rows[step.replace("[first numbers]", "[exact]")]["plain"])
        ratio = plain_s / fast_s if fast_s and plain_s else None
        limit = target_seconds(step)
        met = None
        if has_target(step) and fast_s is not None:
            met = (limit is None or fast_s <= limit) and ratio is not None and ratio >= MIN_RATIO
        table.append(
            {
                "step": step,
                "plain_s": plain_s,
                "fast_s": fast_s,
                "ratio": ratio,
                "target_s": limit,
                "target_ratio": MIN_RATIO if has_target(step) else None,
                "met": met,
            }
        )
    return {
        "run": str(run_dir),
        "threads": torch.get_num_threads(),
        "repeats": max(1, repeats),
        "loadavg": _loadavg(),
        "steps": table,
        "same_numbers": same,
        "dataset_cache": cache_note,
    }


def _same(a: Any, b: Any) -> bool:
    """Exact readouts agree (to 1e-9 on every accuracy; control included). A readout is a dict
    or a record (compared through its JSON form)."""

    def flat(readout: Any) -> list[float]:
        r = readout.model_dump(mode="json") if hasattr(readout, "model_dump") else readout
        out = []
        for block in (r["splits"], r.get("control") or {}):
            for split in sorted(block):
                for name in sorted(block[split]["after"]):
                    value = block[split]["after"][name]
                    out.append(float("nan") if value is None else float(value))
        return out

    fa, fb = flat(a), flat(b)
    return len(fa) == len(fb) and all(abs(x - y) < 1e-9 or (x != x and y != y) for x, y in zip(fa, fb))


def _target_text(row: dict[str, Any]) -> str:
    if row.get("target_ratio") is None:
        return "no target"
    wanted = f"≥ {row['target_ratio']:.0f}×"
    if row.get("target_s") is not None:
        wanted = f"≤ {row['target_s']:g} s and {wanted}"
    return f"{wanted}: {'met' if row.get('met') else 'NOT met'}"


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text(encoding="utf-8").split(" ", 3)[:3].__str__()
    except OSError:
        return "unknown"


def format_session(result: dict[str, Any]) -> str:
    lines = [
        f"session bench on {result['run']} ({result['threads']} threads, median of {result['repeats']}, "
        f"load average {result['loadavg']})",
        f"{'step':<78} {'plain':>8} {'fast':>8} {'ratio':>7}  target",
    ]
    for row in result["steps"]:
        plain = f"{row['plain_s']:.3f}" if row["plain_s"] is not None else "-"
        fast = f"{row['fast_s']:.3f}" if row["fast_s"] is not None else "-"
        ratio = f"{row['ratio']:.1f}×" if row["ratio"] is not None else "-"
        lines.append(f"{row['step']:<78} {plain:>8} {fast:>8} {ratio:>7}  {_target_text(row)}")
    mismatched = [step for step, ok in result["same_numbers"].items() if not ok]
    lines.append(
        "exact numbers identical on both paths"
        if not mismatched
        else f"exact numbers DIFFER between paths: {', '.join(mismatched)}"
    )
    return "\n".join(lines)
