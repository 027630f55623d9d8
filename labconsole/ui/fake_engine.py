"""A scripted, deterministic ``EnginePort`` for tests, screenshots and the start-up benchmark.

It never imports torch. Numbers are made up but plausible (a majority/minority gap that
narrows over epochs) and identical on every run, so snapshots are stable. Knobs let a test
hold a job open (``gate``), slow calls down, or make them fail.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from labconsole.engine.events import (
    CancelToken,
    Emit,
    EpochResult,
    LogRecord,
    Progress,
    RunFinished,
    RunStarted,
    StageStarted,
)
from labconsole.errors import UserError
from labconsole.ui.engine_port import (
    DatasetCheck,
    LayerInfo,
    NeuronRef,
    PresetEntry,
    RankedNeuron,
    RunEntry,
    SessionSpec,
)

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


def split_metrics(accs: Sequence[float], quantum: float) -> dict[str, Any]:
    groups = dict(zip(GROUPS, (round(a, 4) for a in accs)))
    worst = min(groups, key=groups.__getitem__)
    return {
        "groups": groups,
        "wga": groups[worst],
        "worst_group": worst,
        "mean": round(sum(accs) / len(accs), 4),
        "mean_groups": round(sum(accs) / len(accs), 4),
        "wga_quantum": quantum,
    }


def epoch_splits(epoch: int, total: int) -> dict[str, dict[str, Any]]:
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


def fake_epoch_splits(stage: str, epoch: int, total: int) -> dict[str, dict[str, Any]]:
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


@dataclass
class FakeSession:
    engine: FakeEngine
    group_names: tuple[str, ...] = GROUPS
    train_group_counts: dict[str, int] = field(default_factory=lambda: dict(TRAIN_COUNTS))

    def layers(self) -> list[LayerInfo]:
        return list(LAYERS)

    def rank(self, criterion: str, group: str | None, scope: str, k: float) -> list[RankedNeuron]:
        self.engine.calls.append(("rank", criterion, group, scope, k))
        self.engine.wait_call()
        rng = random.Random(f"{criterion}|{group if criterion != 'magnitude' else ''}")
        scored = [
            (layer.name, i, round(rng.random() * (1 + depth), 4))
            for depth, layer in enumerate(LAYERS)
            for i in range(layer.neurons)
        ]
        scored.sort(key=lambda item: -item[2])
        if scope == "per-layer":
            kept = []
            for layer in LAYERS:
                kept.extend([s for s in scored if s[0] == layer.name][: int(k)])
            return sorted(kept, key=lambda item: -item[2])
        if scope == "top-percent":
            return scored[: max(1, math.ceil(len(scored) * float(k) / 100))]
        return scored[: int(k)]

    def readout(
        self,
        neurons: Sequence[NeuronRef],
        mode: str,
        std: float,
        seeds: int,
        splits: Sequence[str] = ("train", "test"),
        control: bool = False,
        on_estimate: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        # No estimate: the fake answers with exact numbers at once (``on_estimate`` is optional).
        self.engine.calls.append(("readout", tuple(neurons), mode, std, seeds))
        self.engine.wait_call()
        strength = {"zero": 1.0, "reinit": 0.8, "noise": 0.3}[mode] * (1 + std * 20)
        return {
            "splits": {s: self._split(s, neurons, strength, seeds, mode) for s in splits},
            # the control's spread is over its draws of random neurons, whatever the mode
            "control": {s: self._split(s, neurons, strength * 0.1, 3, "noise") for s in splits} if control else None,
            "wga_quantum_pp": {"train": 100 / 56, "test": 100 / 642},
        }

    def _split(
        self, split: str, neurons: Sequence[NeuronRef], strength: float, seeds: int, mode: str
    ) -> dict[str, Any]:
        base = BASELINE[split]
        hurt = sum(1 + index % 3 for _, index in neurons) * strength
        minority_weight = (0.2, 1.6, 1.2, 0.1)  # minority groups are the fragile ones
        after = [max(0.0, b - hurt * w / 100) for b, w in zip(base, minority_weight)]
        spread = 0.0 if mode == "zero" or seeds <= 1 else 0.4 * strength
        return {
            "baseline": dict(zip(GROUPS, base)),
            "after": dict(zip(GROUPS, after)),
            "delta_pp": {g: round((a - b) * 100, 2) for g, a, b in zip(GROUPS, after, base)},
            "spread_pp": {g: round(spread * w, 2) for g, w in zip(GROUPS, minority_weight)},
        }

    def random_neurons(self, count: int, seed: int) -> list[NeuronRef]:
        self.engine.calls.append(("random_neurons", count, seed))
        everything = [(layer.name, i) for layer in LAYERS for i in range(layer.neurons)]
        return random.Random(seed).sample(everything, min(count, len(everything)))

    def close(self) -> None:
        self.engine.calls.append(("close",))


class FakeEngine:
    """Deterministic stand-in for the engine. ``calls`` records what the console asked for."""

    def __init__(
        self,
        *,
        epochs: int = 4,
        steps: int = 5,
        step_delay: float = 0.0,
        gate: threading.Event | None = None,
        fail_with: BaseException | None = None,
        fail_run: str | None = None,
        call_delay: float = 0.0,
    ) -> None:
        self.epochs, self.steps, self.step_delay = epochs, steps, step_delay
        self.gate = gate  # while unset, a job keeps streaming Progress in its first epoch
        self.fail_with = fail_with  # raised by run_job after RunStarted
        self.fail_run = fail_run  # emit an error LogRecord + RunFinished("failed") with this text
        self.call_delay = call_delay
        self.call_gate: threading.Event | None = None  # while unset, rank/readout block
        self.calls: list[tuple[Any, ...]] = []
        self.progress_emitted = 0

    def wait_call(self) -> None:
        if self.call_delay:
            time.sleep(self.call_delay)
        if self.call_gate is not None:
            self.call_gate.wait(timeout=10)

    # -- presets and jobs ------------------------------------------------------------------------
    def list_presets(self) -> list[PresetEntry]:
        return list(PRESETS)

    def load_preset(self, path: str, overrides: Sequence[str] = (), *, smoke: bool = False) -> Any:
        from labconsole.presets import parse_override, preset_from_dict, set_dotted

        entry = next((p for p in PRESETS if path in (p.path, p.name)), None)
        if entry is None:
            raise UserError(f"preset file not found: {path}")
        raw: dict[str, Any] = {"name": entry.name, "stages": list(entry.stages)}
        for item in overrides:
            key, value = parse_override(item)
            set_dotted(raw, key, value, source=f"--set {item}")
        self.calls.append(("load_preset", entry.name, tuple(overrides)) + (("smoke",) if smoke else ()))
        preset = preset_from_dict(raw, source=entry.path)
        return preset.smoke() if smoke else preset

    def run_job(self, preset: Any, *, emit: Emit, cancel: CancelToken, run_dir: str = "", first_epoch: int = 1) -> str:
        run_id = f"fake-{preset.name}"
        run_dir = run_dir or f"runs/20250103-120000-{preset.name}-s{preset.seed}"  # a new run
        emit(RunStarted(run_id=run_id, preset=preset.name, run_dir=run_dir, stages=tuple(preset.stages)))
        if self.fail_with is not None:
            raise self.fail_with
        if self.fail_run is not None:
            emit(LogRecord(run_id=run_id, level="error", message=self.fail_run))
            emit(RunFinished(run_id=run_id, status="failed", error=self.fail_run))
            return run_dir
        losses: list[float] = []
        summary: dict[str, Any] = {}
        for stage in ("erm", "finetune"):
            if stage not in preset.stages:
                continue
            epochs = preset.erm.epochs if stage == "erm" else preset.finetune.epochs
            best_epoch = self._stage(run_id, stage, min(self.epochs, epochs), losses, emit, cancel, first_epoch)
            if best_epoch is None:
                return run_dir
            summary[stage] = {"best_epoch": best_epoch}
            emit(LogRecord(run_id=run_id, level="info", message=f"{stage}: selected epoch {best_epoch} (best val WGA)"))
        emit(RunFinished(run_id=run_id, status="done", summary=summary))
        return run_dir

    def resume_job(self, run_dir: str, *, emit: Emit, cancel: CancelToken) -> str:
        """Goes on after the recorded epochs, in the same run directory, as the engine does."""
        self.calls.append(("resume_job", run_dir))
        entry = self._run(run_dir)
        if entry is None or not entry.resumable:
            raise UserError(f"{run_dir}: only an interrupted run can be resumed")
        done = len(self.run_epochs(run_dir))
        return self.run_job(
            self.load_preset(entry.preset), emit=emit, cancel=cancel, run_dir=run_dir, first_epoch=done + 1
        )

    def _stage(
        self,
        run_id: str,
        stage: str,
        total: int,
        losses: list[float],
        emit: Emit,
        cancel: CancelToken,
        first_epoch: int = 1,
    ) -> int | None:
        """One training stage; the selected epoch, or None when cancelled."""
        emit(StageStarted(run_id=run_id, stage=stage, total_epochs=total))
        best_wga, best_epoch = -1.0, 0
        for epoch in range(first_epoch, total + 1):
            step = 0
            while step < self.steps or (epoch == first_epoch and self.gate is not None and not self.gate.is_set()):
                if cancel.is_set():
                    emit(
                        LogRecord(run_id=run_id, level="info", message=f"cancelled at epoch {epoch}; checkpoint saved")
                    )
                    emit(RunFinished(run_id=run_id, status="cancelled", summary={"best_epoch": best_epoch}))
                    return None
                step += 1
                losses.append(round(1.0 / (1 + 0.3 * len(losses)) + 0.05 * (len(losses) % 3), 4))
                self.progress_emitted += 1
                emit(
                    Progress(
                        run_id=run_id,
                        stage=stage,
                        epoch=epoch,
                        total_epochs=total,
                        step=min(step, self.steps),
                        total_steps=self.steps,
                        loss=losses[-1],
                        recent_losses=tuple(losses[-200:]),
                        elapsed_s=0.0,
                        eta_s=None,
                    )
                )
                if self.step_delay:
                    time.sleep(self.step_delay)
            splits = fake_epoch_splits(stage, epoch, total)
            if splits["val"]["wga"] > best_wga:
                best_wga, best_epoch = splits["val"]["wga"], epoch
            emit(
                EpochResult(
                    run_id=run_id,
                    stage=stage,
                    epoch=epoch,
                    total_epochs=total,
                    splits=splits,
                    train_loss=losses[-1],
                    lr=1e-3,
                    is_best=best_epoch == epoch,
                    best_epoch=best_epoch,
                )
            )
        return best_epoch

    # -- interactive -----------------------------------------------------------------------------
    def open_session(self, spec: SessionSpec) -> FakeSession:
        self.calls.append(("open_session", spec))
        self.wait_call()
        if spec.dataset not in ("synthetic-waterbirds", "waterbirds"):
            raise UserError(f"the demo engine has no {spec.dataset} model; choose synthetic-waterbirds")
        if spec.checkpoint:
            check_fake_checkpoint(spec.checkpoint)
        return FakeSession(self)

    def check_dataset(self, root: str, dataset: str) -> DatasetCheck:
        if dataset in ("synthetic-waterbirds", "digits"):
            return DatasetCheck(True, f"{dataset} is embedded: no files needed")
        if not root:
            return DatasetCheck(False, f"{dataset} needs a data folder (data root is empty)")
        return DatasetCheck(False, f"{root}/metadata.csv not found (expected columns img_filename,y,split,place)")

    def list_runs(self, root: str) -> list[RunEntry]:
        return list(RUNS)

    def _run(self, run_dir: str) -> RunEntry | None:
        return next((r for r in RUNS if run_dir in (r.path, r.name)), None)

    def run_epochs(self, run_dir: str) -> list[EpochResult]:
        """The epochs a run recorded: all of them, or the first half for an interrupted one."""
        self.calls.append(("run_epochs", run_dir))
        entry = self._run(run_dir)
        if entry is None:
            return []
        stages = ("erm", "finetune") if entry.preset == "finetune" else ("erm",)
        recorded = self.epochs // 2 if entry.resumable else self.epochs
        return [
            EpochResult(
                run_id=f"fake-{entry.preset}",
                stage=stage,
                epoch=epoch,
                total_epochs=self.epochs,
                splits=fake_epoch_splits(stage, epoch, self.epochs),
                train_loss=round(1.0 / (1 + epoch), 4),
                is_best=True,
                best_epoch=epoch,
            )
            for stage in stages
            for epoch in range(1, recorded + 1)
        ]

    def run_summary(self, run_dir: str) -> dict[str, Any]:
        entry = self._run(run_dir)
        if entry is None:
            raise UserError(f"run directory not found: {run_dir}")
        epoch = 4 if entry.preset == "finetune" else 2
        return {
            "name": entry.name,
            "path": entry.path,
            "status": entry.status,
            "manifest": {
                "preset": entry.preset,
                "variant": entry.variant,
                "device": "cpu",
                "backbone": "cifar_resnet8",
                "dataset": "synthetic-waterbirds",
                "selection": "best val WGA",
            },
            "summary": {"best_epoch": epoch, "splits": epoch_splits(epoch, 4)},
            "config": "",
        }

    def export_report(self, run_dir: str) -> list[str]:
        self.calls.append(("export_report", run_dir))
        return [f"{run_dir}/report.html", f"{run_dir}/report.md"]

    def rare_preview(self, pattern: str, image_size: int) -> list[list[float]]:
        return patched_digit(pattern, image_size)

    def rare_experiment(
        self, pattern: str, counts: Sequence[int], target_class: int, seeds: int, *, emit: Emit, cancel: CancelToken
    ) -> list[dict[str, Any]]:
        run_id = f"fake-rare-{pattern}"
        emit(RunStarted(run_id=run_id, preset=f"rare-{pattern}", run_dir="", stages=("rare",)))
        rows: list[dict[str, Any]] = []
        strength = {"S1": 0.3, "S2": 0.6, "S3": 0.9, "R1": 0.2, "R2": 0.5, "R3": 0.8, "Inv": 0.7}.get(pattern, 0.5)
        for i, n in enumerate(counts):
            if cancel.is_set():
                emit(RunFinished(run_id=run_id, status="cancelled"))
                return rows
            emit(Progress(run_id=run_id, stage="rare", epoch=i + 1, total_epochs=len(counts), step=1, total_steps=1))
            score = strength * (1 - math.exp(-n / 4)) if n else 0.002
            rows.append(
                {
                    "n": n,
                    "spurious_score": round(score, 4),
                    "spurious_score_se": round(0.01 + 0.02 * score, 4),
                    "clean_acc": round(0.981 - 0.001 * i, 4),
                    "spurious_acc": round(0.981 - 0.6 * score, 4),
                    "p_value": None if n == 0 else round(math.exp(-3 * n * strength), 4),
                }
            )
        emit(RunFinished(run_id=run_id, status="done"))
        return rows

    def theory_curve(
        self,
        gammas: Sequence[float],
        *,
        sigma_inv: float,
        sigma_sp: float,
        ridge: float,
        x_inv: float = 1.0,
        x_sp: float = 1.0,
    ) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"gamma": [], "clean_acc": [], "spurious_acc": [], "prediction_difference": []}
        for gamma in gammas:  # the closed forms of SPEC §6 (authors' notebook)
            a = ((gamma * (1 - gamma) / 2 * x_sp**2 + sigma_sp + ridge) / (sigma_inv + ridge)) * x_inv**2
            d = math.sqrt(a**2 * sigma_inv + (gamma / 2) ** 2 * x_sp**4 * sigma_sp) or 1e-12
            half = (gamma / 2) * x_sp**2
            out["gamma"].append(gamma)
            out["clean_acc"].append(0.5 * phi((a + gamma / 2 * half) / d) + 0.5 * phi((a - gamma / 2 * half) / d))
            out["spurious_acc"].append(phi((a + (gamma / 2) * (gamma / 2 - 1) * x_sp**2) / d))
            out["prediction_difference"].append(half)
        return out


def phi(z: float) -> float:
    """The standard normal CDF."""
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def patched_digit(pattern: str, size: int) -> list[list[float]]:
    """A hand-drawn "7" with a Paper B pattern applied (SPEC §6 coordinates, top-left origin)."""
    image = [[0.0] * size for _ in range(size)]
    top, left, right = size // 5, size // 4, 3 * size // 4
    for col in range(left, right):
        image[top][col] = image[top + 1][col] = 0.9
    for row in range(top, 4 * size // 5):
        col = right - 1 - (row - top) * (right - left) // (3 * size // 5)
        image[row][max(col, 0)] = image[row][max(col - 1, 0)] = 0.9
    if pattern in ("S1", "S2", "S3"):
        side = {"S1": 1, "S2": 3, "S3": 5}[pattern]
        for r in range(side):
            for c in range(side):
                image[r][c] = 1.0
    elif pattern.startswith("R"):
        amplitude = {"R1": 0.25, "R2": 0.5, "R3": 1.0}[pattern]
        rng = random.Random(0)
        image = [[min(1.0, v + amplitude * rng.random()) for v in row] for row in image]
    elif pattern == "Inv":
        for r in range(3, min(25, size)):
            for c in range(13, min(16, size)):
                image[r][c] = 1.0
    return image
