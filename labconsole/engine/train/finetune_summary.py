"""What a fine-tuning run reports: its summary section, the method in words, the mask it
really applied, the warning when it never beat its start, and the table against continued ERM."""

from __future__ import annotations

from pathlib import Path

from pydantic import JsonValue

from labconsole.config.finetune import FinetuneConfig
from labconsole.engine.context import StageContext
from labconsole.engine.records import (
    FinetuneBefore,
    FinetuneEpoch,
    FinetuneSection,
    FinetuneStart,
    Selection,
    Splits,
)
from labconsole.engine.train.state import TrainState
from labconsole.formatting import pct, pp

SELECTION_TEXT = {
    "best-val-wga": "best val WGA",
    "best-val-wga-or-start": "best val WGA, start included",
    "last": "last epoch",
}
CURVE_SPLITS = ("train", "val", "test")


def split_wga(splits: Splits, split: str) -> float | None:
    """WGA of ``split`` (None: not evaluated there)."""
    metrics = splits.get(split)
    return metrics.wga if metrics is not None else None


def curve_point(splits: Splits) -> dict[str, float | None]:
    """``{"train_wga", "val_wga", "test_wga"}`` of one epoch (None where not evaluated)."""
    return {f"{split}_wga": split_wga(splits, split) for split in CURVE_SPLITS}


def format_control_table(section: FinetuneSection) -> str:
    """ERM (the start), the method, continued ERM and method − control: val and test WGA (%)."""
    control = section.control.wga_after if section.control is not None else {}
    rows = [
        ("ERM (start)", section.wga_before),
        ("Stage II recipe", section.wga_after),
        ("continued ERM (control)", control),
    ]
    lines = [f"{'':<26} {'val WGA':>9} {'test WGA':>9}"]
    for name, values in rows:
        lines.append(f"{name:<26}" + "".join(f" {pct(values.get(s)):>9}" for s in ("val", "test")))
    diff = section.method_minus_control
    lines.append(
        f"{'method − control (pp)':<26}"
        + "".join(f" {pp(None if (d := diff.get(s)) is None else 100 * d, digits=1):>9}" for s in ("val", "test"))
    )
    return "\n".join(lines)


def finetune_summary(
    ctx: StageContext,
    cfg: FinetuneConfig,
    state: TrainState,
    before: FinetuneBefore,
    start_path: Path,
    start_note: str,
    selection: str,
) -> FinetuneSection:
    after = {split: split_wga(state.best_splits, split) for split in ("val", "test")}
    before_wga = {split: split_wga(before.splits, split) for split in ("val", "test")}
    gain = {s: difference(after[s], before_wga[s]) for s in ("val", "test")}
    last_mask = state.history[-1].mask if state.history else {}
    start_val = split_wga(state.start_splits, "val")
    epoch_vals = [h.val_wga for h in state.history if h.val_wga is not None]
    beat_start = None if start_val is None or not epoch_vals else max(epoch_vals) > start_val
    start_point = curve_point(state.start_splits)
    return FinetuneSection(
        variant=ctx.preset.variant,
        variant_options=cfg.variant_options(),
        method=method_text(cfg),
        selection=Selection(rule=selection, epoch=state.best_epoch, val_wga=state.best_wga),
        splits=state.best_splits,
        wga_before=before_wga,
        wga_after=after,
        wga_gain=gain,
        before=FinetuneBefore(source=before.source, splits=before.splits),
        start=FinetuneStart(
            checkpoint=str(start_path), note=start_note, kick_in_epoch=cfg.kick_in_epoch, splits=state.start_splits
        ),
        beat_start_on_val=beat_start,
        warning=never_beat_start_text(start_val, epoch_vals) if beat_start is False and start_val is not None else None,
        epochs=state.epoch,
        contrastive_weight=cfg.contrastive_weight,
        batchnorm=cfg.batchnorm,
        mask_last_epoch=last_mask,
        mask_realised=mask_realised_text(cfg, last_mask),
        history=[
            FinetuneEpoch(
                epoch=0,
                train_loss=None,
                masked=None,
                val_wga=start_point["val_wga"],
                test_wga=start_point["test_wga"],
                train_wga=start_point["train_wga"],
            ),
            *(
                FinetuneEpoch(
                    epoch=h.epoch,
                    train_loss=h.train_loss,
                    masked=_text(h.mask.get("description")),
                    val_wga=h.val_wga,
                    test_wga=h.test_wga,
                    train_wga=h.train_wga,
                )
                for h in state.history
            ),
        ],
    )


def _text(value: JsonValue) -> str | None:
    return value if isinstance(value, str) else None


def difference(after: float | None, before: float | None) -> float | None:
    return after - before if after is not None and before is not None else None


def never_beat_start_text(start_val: float, epoch_vals: list[float]) -> str:
    return (
        f"fine-tuning never beat its start on val: best val WGA over epochs 1–{len(epoch_vals)} "
        f"{100 * max(epoch_vals):.1f} % ≤ start {100 * start_val:.1f} %"
    )


def mask_realised_text(cfg: FinetuneConfig, mask: dict[str, JsonValue]) -> str | None:
    """ "p = 0.01 % of 336 neurons → 1 neuron (0.30 %)": what the requested p really masked
    (``mask``: the epoch's mask summary, ``critical_mask.realised_size`` among it)."""
    if cfg.contrastive_weight == 0:
        return "no auxiliary branch (contrastive_weight = 0)"
    if "realised_count" not in mask:
        return None
    unit = str(mask["realised_unit"])
    count = mask["realised_count"]
    percent = mask["realised_percent"]
    shown = f"{percent:.2f}" if isinstance(percent, int | float) else str(percent)
    noun = unit if count != 1 else unit.rstrip("s")
    return f"p = {cfg.prune_percent:g} % of {mask['eligible_count']} {unit} → {count} {noun} ({shown} %)"


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
