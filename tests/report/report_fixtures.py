"""Hand-built run and sweep directories with the shapes the engine writes (fast: no training)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from labconsole.engine.runs import RunDir
from labconsole.presets import dump_toml

GROUPS = ["landbird-land", "landbird-water", "waterbird-land", "waterbird-water"]


def split_metrics(accs: list[float], counts: list[int]) -> dict[str, Any]:
    total = sum(counts)
    return {
        "groups": dict(zip(GROUPS, accs)),
        "group_counts": dict(zip(GROUPS, counts)),
        "wga": min(accs),
        "worst_group": GROUPS[accs.index(min(accs))],
        "mean": sum(a * c for a, c in zip(accs, counts)) / total,
        "mean_train_weighted": 0.5,
        "mean_groups": sum(accs) / len(accs),
        "wga_quantum": 1 / min(counts),
        "n": total,
    }


def tiny_png(colour: tuple[float, float, float] = (0.9, 0.1, 0.1)) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2), dpi=60)
    FigureCanvasAgg(fig)
    fig.subplots().bar([0, 1, 2], [1, 3, 2], color=colour)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def make_run(
    root: Path,
    name: str = "run-a",
    *,
    done: bool = True,
    seed: int = 0,
    reference: dict[str, Any] | None = None,
    stage1: bool = True,
    extras: bool = True,
    test_wga: float = 0.4,
) -> RunDir:
    run = RunDir.create(root, name, seed)
    splits = {
        "train": split_metrics([0.98, 0.9, 0.8, 0.99], [120, 16, 8, 40]),
        "val": split_metrics([0.9, 0.5, 0.55, 0.9], [16, 16, 16, 16]),
        "test": split_metrics([0.95, test_wga, 0.45, 0.93], [16, 16, 16, 16]),
    }
    config = {
        "name": name,
        "description": "a hand-built run",
        "reproduces": "Paper A, Table 3",
        "seed": seed,
        "stages": ["erm", "neurons"],
        "variant": "paper",
        "reference": reference or {},
    }
    run.write_config(dump_toml(config))
    run.write_manifest(
        {
            "preset": name,
            "variant": "paper",
            "stages": ["erm", "neurons"],
            "seed": seed,
            "status": "done" if done else "running",
            "stages_done": ["erm"],
            "device": "cpu",
            "metric_definitions": {"wga": "worst-group accuracy"},
            "selection_rule": "best val WGA",
            "dataset_check": {"layout": "embedded", "counts": {"train": [120, 16, 8, 40]}},
            "dataset": {"name": "synthetic-waterbirds"},
        }
    )
    for epoch in (1, 2, 3):
        run.append_event(
            {
                "type": "EpochResult",
                "run_id": run.name,
                "stage": "erm",
                "epoch": epoch,
                "total_epochs": 3,
                "splits": splits,
                "train_loss": 1.0 / epoch,
                "lr": 1e-3,
                "is_best": epoch == 2,
                "best_epoch": 2,
                "selection": "best val WGA",
            }
        )
    summary: dict[str, Any] = {"preset": name, "selection": {"rule": "best val WGA", "epoch": 2}, "splits": splits}
    if stage1:
        rows = [_stage1_row(group, k) for group in GROUPS for k in (1, 3)]
        summary["neurons"] = {
            "baseline": {"train": splits["train"]["groups"]},
            "minority_groups": GROUPS[1:3],
            "wga_quantum_pp": {"train": 12.5},
            "rows": rows,
        }
        run.write_json(
            "artifacts/stage1_readouts.json",
            {"baseline": {"train": splits["train"]["groups"]}, "group_names": GROUPS, "rows": [_full(r) for r in rows]},
        )
    if extras:
        art = run.artifacts
        run.write_json(
            "artifacts/stage1_tracing.json",
            {
                "layers": ["layer1.conv1", "layer2.conv1"],
                "groups": GROUPS,
                "k": 1,
                "splits": ["train"],
                "matrices": {"gradient": {"train": [[-1.0, -20.0, 3.0, 0.0], [0.5, 0.0, -40.0, 1.0]]}},
            },
        )
        (art / "gradcam_pairs.png").write_bytes(tiny_png((0.1, 0.8, 0.2)))
        run.write_json(
            "artifacts/custom_rows.json",
            [{"name": "a", "value": 1.5, "nested": {"x": 1}}, {"name": "b", "value": 2.5, "nested": {"x": 2}}],
        )
        (art / "broken.json").write_text("{not json", encoding="utf-8")
        (art / "fake.png").write_bytes(b"this is not a png")
    run.write_summary(summary)
    if done:
        run.mark_done()
    return run


def stage1_delta(group: str, k: int, on: str) -> float:
    """Deterministic made-up change (pp) of group ``on`` when zeroing ``k`` neurons ranked on ``group``."""
    return -(GROUPS.index(group) + 1) * k * (2.0 if group == on else 0.5)


def _stage1_row(group: str, k: int) -> dict[str, Any]:
    delta = {"train": {g: stage1_delta(group, k, g) for g in GROUPS}}
    return {
        "label": f"gradient on {group} top-{k}",
        "criterion": "gradient",
        "ranked_group": group,
        "k": k,
        "percent": None,
        "mode": "zero",
        "std": None,
        "where": "weight",
        "neurons": [["layer1.conv1", 0]],
        "delta_pp": delta,
        "spread_pp": {"train": {g: 0.0 for g in GROUPS}},
        "control_delta_pp": {"train": {g: 0.1 for g in GROUPS}},
        "control_spread_pp": {"train": {g: 0.0 for g in GROUPS}},
    }


def _full(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if not k.endswith("_pp")}
    out["splits"] = {s: {"delta_pp": row["delta_pp"][s], "spread_pp": row["spread_pp"][s]} for s in row["delta_pp"]}
    out["control"] = {
        s: {"delta_pp": row["control_delta_pp"][s], "spread_pp": row["control_spread_pp"][s]}
        for s in row["control_delta_pp"]
    }
    return out


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
