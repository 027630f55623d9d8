"""What a fine-tuning run reports: its summary section, the method in words, the mask it
really applied, the warning when it never beat its start, and the table against continued ERM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labconsole.config.finetune import FinetuneConfig
from labconsole.engine.context import StageContext
from labconsole.engine.train.state import TrainState
from labconsole.formatting import pct, pp

SELECTION_TEXT = {
    "best-val-wga": "best val WGA",
    "best-val-wga-or-start": "best val WGA, start included",
    "last": "last epoch",
}


def curve_point(splits: dict[str, Any]) -> dict[str, Any]:
    return {f"{split}_wga": (splits.get(split) or {}).get("wga") for split in ("train", "val", "test")}


def format_control_table(summary: dict[str, Any]) -> str:
    """ERM (the start), the method, continued ERM and method − control: val and test WGA (%)."""
    control = summary.get("control") or {}
    rows = [
        ("ERM (start)", summary.get("wga_before") or {}),
        ("Stage II recipe", summary.get("wga_after") or {}),
        ("continued ERM (control)", control.get("wga_after") or {}),
    ]
    lines = [f"{'':<26} {'val WGA':>9} {'test WGA':>9}"]
    for name, values in rows:
        lines.append(f"{name:<26}" + "".join(f" {pct(values.get(s)):>9}" for s in ("val", "test")))
    diff = summary.get("method_minus_control") or {}
    lines.append(
        f"{'method − control (pp)':<26}"
        + "".join(f" {pp(None if diff.get(s) is None else 100 * diff[s], digits=1):>9}" for s in ("val", "test"))
    )
    return "\n".join(lines)


def finetune_summary(
    ctx: StageContext,
    cfg: FinetuneConfig,
    state: TrainState,
    before: dict[str, Any],
    start_path: Path,
    start_note: str,
    selection: str,
) -> dict[str, Any]:
    after = {split: (state.best_splits.get(split) or {}).get("wga") for split in ("val", "test")}
    before_wga = {split: (before["splits"].get(split) or {}).get("wga") for split in ("val", "test")}
    gain = {s: difference(after[s], before_wga[s]) for s in ("val", "test")}
    last_mask = state.history[-1]["mask"] if state.history else {}
    start_val = (state.start_splits.get("val") or {}).get("wga")
    epoch_vals = [float(h["val_wga"]) for h in state.history if h.get("val_wga") is not None]
    beat_start = None if start_val is None or not epoch_vals else max(epoch_vals) > start_val
    return {
        "variant": ctx.preset.variant,
        "variant_options": cfg.variant_options(),
        "method": method_text(cfg),
        "selection": {"rule": selection, "epoch": state.best_epoch, "val_wga": state.best_wga},
        "splits": state.best_splits,
        "wga_before": before_wga,
        "wga_after": after,
        "wga_gain": gain,
        "before": {"source": before["source"], "splits": before["splits"]},
        "start": {
            "checkpoint": str(start_path),
            "note": start_note,
            "kick_in_epoch": cfg.kick_in_epoch,
            "splits": state.start_splits,
        },
        "beat_start_on_val": beat_start,
        "warning": never_beat_start_text(start_val, epoch_vals)
        if beat_start is False and start_val is not None
        else None,
        "epochs": state.epoch,
        "contrastive_weight": cfg.contrastive_weight,
        "batchnorm": cfg.batchnorm,
        "mask_last_epoch": last_mask,
        "mask_realised": mask_realised_text(cfg, last_mask),
        "history": [
            {"epoch": 0, "train_loss": None, "masked": None, **curve_point(state.start_splits)},
            *(
                {
                    "epoch": h["epoch"],
                    "train_loss": h["train_loss"],
                    "masked": h["mask"].get("description"),
                    **{k: h.get(k) for k in ("train_wga", "val_wga", "test_wga")},
                }
                for h in state.history
            ),
        ],
    }


def difference(after: float | None, before: float | None) -> float | None:
    return after - before if after is not None and before is not None else None


def never_beat_start_text(start_val: float, epoch_vals: list[float]) -> str:
    return (
        f"fine-tuning never beat its start on val: best val WGA over epochs 1–{len(epoch_vals)} "
        f"{100 * max(epoch_vals):.1f} % ≤ start {100 * start_val:.1f} %"
    )


def mask_realised_text(cfg: FinetuneConfig, mask: dict[str, Any]) -> str | None:
    """ "p = 0.01 % of 336 neurons → 1 neuron (0.30 %)": what the requested p really masked."""
    if cfg.contrastive_weight == 0:
        return "no auxiliary branch (contrastive_weight = 0)"
    if "realised_count" not in mask:
        return None
    unit = mask["realised_unit"]
    count = mask["realised_count"]
    noun = unit if count != 1 else unit.rstrip("s")
    return (
        f"p = {cfg.prune_percent:g} % of {mask['eligible_count']} {unit} → {count} {noun} "
        f"({mask['realised_percent']:.2f} %)"
    )


def method_text(cfg: FinetuneConfig) -> str:
    if cfg.mask == "smallest-weights":
        mask = f"{cfg.prune_percent:g} % smallest weights (unstructured)"
    else:
        mask = f"top {cfg.prune_percent:g} % neurons by {cfg.criterion}"
        if cfg.criterion != "magnitude":
            mask += f" (gradient source: {cfg.gradient_source})"
    supervised = "MSE" if cfg.supervised == "mse" else "CE"
    return (
        f"NT-Xent(τ={cfg.temperature:g}, {cfg.contrastive}, on {cfg.contrast_on}) + "
        f"{cfg.supervised_weight:g}·{supervised}; auxiliary = target with {mask} masked"
    )
