"""A scripted, deterministic ``EnginePort`` for tests, screenshots and the start-up benchmark.

It never imports torch. Numbers are made up but plausible (a majority/minority gap that
narrows over epochs) and identical on every run, so snapshots are stable. Knobs let a test
hold a job open (``gate``), slow calls down, or make them fail. The scripted data lives in
``fake_data``, the interactive session in ``fake_session``, the rare lab in ``fake_rare``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
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
from labconsole.ui import fake_rare
from labconsole.ui.engine_port import DatasetCheck, PresetEntry, RareScorePoint, RunDetails, RunEntry, SessionSpec
from labconsole.ui.fake_data import PRESETS, RUNS, check_fake_checkpoint, epoch_splits, fake_epoch_splits
from labconsole.ui.fake_rare import patched_digit
from labconsole.ui.fake_session import FakeSession

__all__ = ["FakeEngine", "FakeSession", "patched_digit"]


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
        self.exact_gate: threading.Event | None = None  # while unset, a readout holds after its estimate
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
        for stage in ("erm", "finetune"):
            if stage not in preset.stages:
                continue
            epochs = preset.erm.epochs if stage == "erm" else preset.finetune.epochs
            best_epoch = self._stage(run_id, stage, min(self.epochs, epochs), losses, emit, cancel, first_epoch)
            if best_epoch is None:
                return run_dir
            emit(LogRecord(run_id=run_id, level="info", message=f"{stage}: selected epoch {best_epoch} (best val WGA)"))
        emit(RunFinished(run_id=run_id, status="done"))  # the demo writes no run directory
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
                    emit(RunFinished(run_id=run_id, status="cancelled"))
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
            val_wga = splits["val"].wga or 0.0
            if val_wga > best_wga:
                best_wga, best_epoch = val_wga, epoch
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

    def run_summary(self, run_dir: str) -> RunDetails:
        from labconsole.engine.records import DatasetInfo, Manifest, RunSummary, Selection

        entry = self._run(run_dir)
        if entry is None:
            raise UserError(f"run directory not found: {run_dir}")
        epoch = 4 if entry.preset == "finetune" else 2
        return RunDetails(
            name=entry.name,
            path=entry.path,
            status=entry.status,
            manifest=Manifest(
                preset=entry.preset,
                variant=entry.variant,
                device="cpu",
                backbone="cifar_resnet8",
                dataset=DatasetInfo(name="synthetic-waterbirds"),
                selection_rule="best val WGA",
            ),
            summary=RunSummary(splits=epoch_splits(epoch, 4), selection=Selection(rule="best val WGA", epoch=epoch)),
        )

    def export_report(self, run_dir: str) -> list[str]:
        self.calls.append(("export_report", run_dir))
        return [f"{run_dir}/report.html", f"{run_dir}/report.md"]

    def rare_preview(self, pattern: str, image_size: int) -> list[list[float]]:
        return fake_rare.rare_preview(pattern, image_size)

    def rare_experiment(
        self, pattern: str, counts: Sequence[int], target_class: int, seeds: int, *, emit: Emit, cancel: CancelToken
    ) -> list[RareScorePoint]:
        return fake_rare.rare_experiment(pattern, counts, target_class, seeds, emit=emit, cancel=cancel)

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
        return fake_rare.theory_curve(
            gammas, sigma_inv=sigma_inv, sigma_sp=sigma_sp, ridge=ridge, x_inv=x_inv, x_sp=x_sp
        )
