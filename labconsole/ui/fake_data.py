"""The scripted world of the demo engine: groups, layers, presets, runs and per-epoch numbers.

Made up but plausible (a majority/minority gap that narrows over epochs) and identical on every
run, so snapshots are stable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from labconsole.errors import UserError
from labconsole.ui.engine_port import LayerInfo, PresetEntry, RunEntry

if TYPE_CHECKING:  # pydantic models, imported where the numbers are made
    from labconsole.engine.records import SplitMetrics, Splits

GROUPS = ("landbird-land", "landbird-water", "waterbird-land", "waterbird-water")
TRAIN_COUNTS = {"landbird-land": 3498, "landbird-water": 184, "waterbird-land": 56, "waterbird-water": 1057}
LAYERS = (
    LayerInfo("conv1", "conv", 16),
    LayerInfo("layer1.0.conv1", "conv", 16),
    LayerInfo("layer1.0.conv2", "conv", 16),
    LayerInfo("layer2.0.conv1", "conv", 32),
    LayerInfo("layer2.0.conv2", "conv", 32),
    LayerInfo("layer2.0.downsample.0", "conv", 32),
    LayerInfo("layer3.0.conv1", "conv", 64),
    LayerInfo("layer3.0.conv2", "conv", 64),
    LayerInfo("layer3.0.downsample.0", "conv", 64),
)
BASELINE = {"train": (0.994, 0.761, 0.839, 0.991), "test": (0.973, 0.552, 0.604, 0.958)}
PRESETS = (
    PresetEntry("quickstart", "presets/quickstart.toml", "ERM on synthetic Waterbirds", ("erm",)),
    PresetEntry("table3", "presets/table3.toml", "Critical neurons (Paper A, Table 3)", ("erm", "neurons")),
    PresetEntry("finetune", "presets/finetune.toml", "Pruned-contrastive fine-tuning", ("erm", "finetune")),
)


def split_metrics(accs: Sequence[float], quantum: float) -> SplitMetrics:
    """A split's record with the numbers the console shows (no counts: the demo has no data)."""
    from labconsole.engine.records import SplitMetrics

    groups = dict(zip(GROUPS, (round(a, 4) for a in accs)))
    worst = min(groups, key=groups.__getitem__)
    return SplitMetrics(
        groups=dict(groups),
        wga=groups[worst],
        worst_group=worst,
        mean=round(sum(accs) / len(accs), 4),
        mean_groups=round(sum(accs) / len(accs), 4),
        wga_quantum=quantum,
    )


def epoch_splits(epoch: int, total: int) -> Splits:
    """Majority groups near 1, minority groups climbing with the epochs."""
    t = epoch / max(total, 1)
    train = (0.98 + 0.01 * t, 0.55 + 0.40 * t, 0.50 + 0.45 * t, 0.97 + 0.02 * t)
    val = (0.97 + 0.02 * t, 0.40 + 0.35 * t, 0.35 + 0.40 * t, 0.96 + 0.02 * t)
    test = (0.96 + 0.02 * t, 0.38 + 0.33 * t, 0.33 + 0.36 * t, 0.95 + 0.02 * t)
    return {
        "train": split_metrics(train, 1 / 56),
        "val": split_metrics(val, 1 / 133),
        "test": split_metrics(test, 1 / 642),
    }


def fake_epoch_splits(stage: str, epoch: int, total: int) -> Splits:
    """Fine-tuning starts where ERM left off and narrows the gap further."""
    return epoch_splits(epoch + (total if stage == "finetune" else 0), total * (2 if stage == "finetune" else 1))


RUNS = (
    RunEntry(
        "20250102-110000-finetune-only-s0",
        "runs/20250102-110000-finetune-only-s0",
        "done",
        "finetune-only",
        "paper",
        0.7105,
        True,
        checkpoints=("finetune-best", "finetune-last"),
        final_stage="finetune",
    ),
    RunEntry(
        "20250102-093000-finetune-s0",
        "runs/20250102-093000-finetune-s0",
        "done",
        "finetune",
        "paper",
        0.7412,
        True,
        checkpoints=("best", "epoch_002", "finetune-best", "last"),
        final_stage="finetune",
    ),
    RunEntry(
        "20250101-180000-quickstart-s1",
        "runs/20250101-180000-quickstart-s1",
        "cancelled",
        "quickstart",
        "paper",
        None,
        True,
        checkpoints=("last",),
        final_stage="",
    ),
    RunEntry(
        "20250101-120000-quickstart-s0",
        "runs/20250101-120000-quickstart-s0",
        "done",
        "quickstart",
        "paper",
        0.6215,
        True,
        checkpoints=("best", "last"),
        final_stage="erm",
    ),
)


def check_fake_checkpoint(checkpoint: str) -> None:
    """A checkpoint of one of the scripted runs must exist, as the engine's loader requires."""
    run_dir, _, file = checkpoint.partition("/checkpoints/")
    entry = next((r for r in RUNS if r.path == run_dir), None)
    if entry is None:
        return  # a path outside the scripted runs: the demo opens fresh weights for it
    name = file.removesuffix(".safetensors") if file else "best"
    if name not in entry.checkpoints:
        where = f"checkpoints/{name}.safetensors"
        raise UserError(f"{checkpoint}: no {where} in this run directory")
