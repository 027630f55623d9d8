"""``bench session``: what the console's Neurons screen does, timed against the plain path.

Both paths run in one ``bench session`` run, one after the other, each in a process of its own
(``session_bench_path``), on the same checkpoint, data and neurons:

* **plain**: the session without the eval fast path's additions, i.e. the readout loop that
  runs one pass per seed and per control draw through the unfolded model (with its cut cache),
  a loss pass over each group to pick the gradient criterion's worst samples, a rebuilt
  dataset on open, and the allocator as the process starts with it;
* **fast**: what the console runs: BN folded into the convs, the interventions of one call
  walked together chunk by chunk, progressive estimate → exact, losses reused from the baseline
  pass, the dataset read from the run directory and freed memory kept for the next batch.

The fast path's exact numbers are checked against the plain path's (``same_numbers``). Every
step with a target prints it: the time limit (idle 2-core CPU), the least ratio plain / fast,
and whether the median met both.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from labconsole.errors import UserError

MIN_RATIO = 3.0  # each step at least 3× faster than the plain path measured in the same run


def target_seconds(step: str) -> float | None:
    """The time a step must stay within (None: the step has only the ratio target, or none).
    A repeated readout is an exact readout (≤ 4 s), except after a cut in the last stage,
    where only the network's tail is left to run (≤ 0.2 s)."""
    if step == "open":
        return 3.0
    if step.startswith("gradient ranking") and step.endswith("(first)"):
        return 2.0
    if step.startswith("gradient ranking"):
        return 1.0
    if step.endswith("[first numbers]"):
        return 1.0
    if "cut cached" in step:
        return 0.2 if "last-stage" in step else 4.0
    if step.endswith("[exact]"):
        return 4.0
    return None


def has_target(step: str) -> bool:
    return not step.startswith("magnitude")


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


def ensure_run_baselines(run_dir: Path) -> str:
    """Make sure the run holds the unmodified model's logits on train and test (as a run with
    Stage I leaves them), so the fast path starts from them as the console does on that run."""
    from labconsole.engine.stage1.session import Session

    session = Session.from_checkpoint(run_dir, "cpu")
    store = session._store
    fast = session.fast_evaluator("train")
    if store is None or fast is None:
        return "not kept: both paths compute the baseline"
    session.baseline_logits("train")  # binds the store's key
    kept = all(store.path(split).is_file() for split in ("train", "test"))
    for split in ("train", "test"):
        session.baseline(split)
    session.close()
    return "read from the run directory (left by its Stage I)" if kept else "written to the run directory before timing"


def _run_path(path: str, run_dir: Path, seeds: int, probes: dict[str, Any] | None) -> dict[str, Any]:
    """One path's steps in a fresh process (see ``session_bench_path``)."""
    args = {"path": path, "run": str(run_dir), "seeds": seeds, "probes": probes, "threads": torch.get_num_threads()}
    done = subprocess.run(
        [sys.executable, "-m", "labconsole.engine.stage1.session_bench_path", json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise UserError(f"bench session: the {path} path failed:\n{done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure_session(run_dir: Path, *, repeats: int = 1, seeds: int = 10) -> dict[str, Any]:
    """Medians over ``repeats`` of every step, for both paths; see the module docstring."""
    rows: dict[str, dict[str, list[float]]] = {}
    same: dict[str, bool] = {}
    cache_note = ensure_run_cache(run_dir)
    baseline_note = ensure_run_baselines(run_dir)
    for _ in range(max(1, repeats)):
        fast = _run_path("fast", run_dir, seeds, None)
        plain = _run_path("plain", run_dir, seeds, fast["probes"])  # the same neurons
        for result in (fast, plain):
            for step, seconds in result["steps"].items():
                rows.setdefault(step, {}).setdefault(result["path"], []).append(seconds)
        for step, numbers in fast["numbers"].items():
            same[step] = same.get(step, True) and _same(numbers, plain["numbers"].get(step, []))
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
        "baseline_logits": baseline_note,
    }


def _same(a: list[float], b: list[float]) -> bool:
    """Exact readouts agree (to 1e-9 on every accuracy; control included)."""
    return len(a) == len(b) and all(abs(x - y) < 1e-9 or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b))


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
    if result.get("dataset_cache") or result.get("baseline_logits"):
        lines.append(
            f"decoded dataset: {result.get('dataset_cache', '-')}; "
            f"fast path's baseline logits: {result.get('baseline_logits', '-')}"
        )
    return "\n".join(lines)
