"""The narrow interface both front ends use.

``run_job(preset, emit=..., cancel=...)`` runs a preset's stages into a run directory and
streams events; the console calls it from a worker thread, the headless runner from the main
thread. Interactive calls (rank a layer, read out an intervention) go through ``Session``
(see ``labconsole.engine.stage1.session``).
"""

from __future__ import annotations

import contextlib
import platform
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from labconsole import __version__
from labconsole.engine import threads
from labconsole.engine.context import Cancelled, StageContext
from labconsole.engine.device import resolve_device as resolve_device  # callers import it from here too
from labconsole.engine.events import CancelToken, Emit, NeverCancelled, RunFinished, RunStarted
from labconsole.engine.preflight import check_neuron_settings
from labconsole.engine.records import DatasetCheck, DatasetInfo, Manifest, RunSummary
from labconsole.engine.resume import check_resume_config, restore_skipped_stage, thread_count_warning
from labconsole.engine.runs import (
    STATUS_CANCELLED,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_NEVER_STARTED,
    STATUS_RUNNING,
    RunDir,
)
from labconsole.engine.stage1.session import Session  # noqa: F401  (the console's interactive entry point)
from labconsole.engine.stages import get_stage
from labconsole.engine.storage import storage_error
from labconsole.errors import UserError

if TYPE_CHECKING:
    from labconsole.presets import Preset

METRIC_DEFINITIONS = {
    "groups": "per-group accuracy; group = (class y, spurious attribute a), g = y * n_attrs + a",
    "wga": "worst-group accuracy: min over groups present in the split (may be a majority group)",
    "mean": "plain accuracy over all examples of the split",
    "mean_train_weighted": "group accuracies weighted by the training split's group proportions",
    "mean_groups": "unweighted mean of the group accuracies",
    "wga_quantum": "1 / size of the split's smallest group: the smallest possible change of WGA",
}


def configure_threads(keep_a_core: bool) -> None:
    """Every core for a headless run; all but one where a console shares the machine."""
    torch.set_num_threads(threads.all_but_one() if keep_a_core else threads.cores())


def git_hash() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def base_manifest(preset: Preset, device: torch.device) -> Manifest:
    import torchvision

    return Manifest(
        preset=preset.name,
        reproduces=preset.reproduces,
        variant=preset.variant,
        stages=list(preset.stages),
        seed=preset.seed,
        smoke=preset.smoke_profile,
        status=STATUS_RUNNING,
        stages_done=[],
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        versions={
            "labconsole": __version__,
            "torch": str(torch.__version__),
            "torchvision": str(torchvision.__version__),
            "python": platform.python_version(),
        },
        git=git_hash(),
        device=str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        host=platform.node(),
        torch_threads=torch.get_num_threads(),
        metric_definitions=METRIC_DEFINITIONS,
        selection_rule="best val WGA" if preset.erm.selection == "best-val-wga" else "last epoch",
    )


def preflight(preset: Preset) -> None:
    """Fail in a second, before any data is loaded, on inputs that can be checked up front."""
    from labconsole.engine.models.checkpoint import resolve_checkpoint
    from labconsole.engine.models.factory import backbone_info

    backbone_info(preset.model.backbone)
    if preset.model.checkpoint:
        resolve_checkpoint(preset.model.checkpoint)
    if not preset.data.is_embedded:
        from labconsole.engine.data.registry import data_root

        data_root(preset.data)
    for stage in preset.stages:
        get_stage(stage)
    check_neuron_settings(preset)


def run_job(
    preset: Preset,
    *,
    emit: Emit,
    cancel: CancelToken | None = None,
    run_dir: Path | None = None,
    runs_root: Path | str = "runs",
    resume: Path | str | None = None,
) -> RunDir:
    """Run every stage of ``preset`` and return its run directory.

    ``resume`` continues an interrupted run in that directory (stages already done are skipped,
    training continues after its last finished epoch). Cancellation (``cancel.is_set()``, or
    Ctrl-C) saves what exists and finishes with ``RunFinished(status="cancelled")``.
    """
    cancel = cancel or NeverCancelled()
    device = resolve_device(preset.device)
    preflight(preset)
    hint = "resume with `labconsole run --resume RUN_DIR`"
    try:
        if resume is not None:
            run = RunDir(Path(resume))
            if not (run.path / "manifest.json").exists():
                raise UserError(f"--resume {resume}: not a run directory (no manifest.json)")
            if run.is_done:
                raise UserError(f"--resume {resume}: this run already finished (it has a `done` file)")
            # Every record is read (and the configuration compared) before anything is written,
            # so a corrupt file or a differing preset leaves the run exactly as it was.
            manifest = run.read_manifest()
            summary = run.read_summary()
            check_resume_config(run, preset.to_toml())
            manifest.status = STATUS_RUNNING
        else:
            run = RunDir(Path(run_dir)) if run_dir else RunDir.create(Path(runs_root), preset.name, preset.seed)
            run.path.mkdir(parents=True, exist_ok=True)
            run.checkpoints.mkdir(exist_ok=True)
            run.write_config(preset.to_toml())
            manifest = base_manifest(preset, device)
            summary = RunSummary()
        run.write_manifest(manifest)
    except OSError as exc:
        raise (storage_error(exc, resume_hint=hint) or exc) from None
    run_id = run.name
    ctx = StageContext(preset=preset, run=run, emit_raw=emit, cancel=cancel, device=device, run_id=run_id)
    ctx.emit(
        RunStarted(
            run_id=run_id,
            preset=preset.name,
            run_dir=str(run.path),
            stages=tuple(preset.stages),
            variant=preset.variant,
            device=str(device),
        )
    )
    threads_before = torch.get_num_threads()
    if resume is not None:
        adopt_recorded_threads(ctx, manifest.torch_threads)
    summary.preset, summary.variant = preset.name, preset.variant
    try:
        torch.manual_seed(preset.seed)
        for name in preset.stages:
            if name in manifest.stages_done and summary.has_stage(name):
                ctx.log(f"stage {name} already done; skipped")
                restore_skipped_stage(ctx, name)
                continue
            stage = get_stage(name)
            ctx.stage = name
            ctx.log(f"stage {name} started")
            stage.result(ctx).enter(summary, name)
            if "dataset" in ctx.state and manifest.dataset_check is None:
                bundle = ctx.state["dataset"]
                manifest.dataset_check = DatasetCheck.model_validate(bundle.check)
                manifest.dataset = DatasetInfo(name=bundle.name, layout=bundle.layout, root=bundle.root)
            manifest.stages_done.append(name)
            run.write_summary(summary)
            run.write_manifest(manifest)
    except (Cancelled, KeyboardInterrupt):
        _finish(run, manifest, summary, STATUS_CANCELLED, ctx, None)
        return run
    except OSError as exc:
        problem = storage_error(exc, resume_hint=hint.replace("RUN_DIR", str(run.path)))
        _finish_if_possible(run, manifest, summary, STATUS_FAILED, ctx, f"{type(exc).__name__}: {exc}")
        if problem is None:
            raise
        raise problem from None
    except Exception as exc:
        never_started = isinstance(exc, UserError) and resume is None and not did_work(run, manifest)
        _finish(
            run,
            manifest,
            summary,
            STATUS_NEVER_STARTED if never_started else STATUS_FAILED,
            ctx,
            f"{type(exc).__name__}: {exc}",
        )
        raise
    finally:
        torch.set_num_threads(threads_before)
    _finish(run, manifest, summary, STATUS_DONE, ctx, None)
    return run


def adopt_recorded_threads(ctx: StageContext, started_with: int | None) -> None:
    """Resume with the torch thread count the run started with, so its float sums add in the same
    order as an uninterrupted run's; when this machine has fewer cores, say the numbers will
    differ in the last bits (shown by both front ends, kept in metrics.jsonl)."""
    now = torch.get_num_threads()
    if started_with is None or started_with == now:
        return
    if started_with <= threads.cores():
        torch.set_num_threads(started_with)
        ctx.log(
            f"resumed with the {started_with} torch thread(s) this run started with (not {now}), so its numbers match"
        )
        return
    warning = thread_count_warning(started_with, now)
    if warning:
        ctx.log(warning, level="warning")


def did_work(run: RunDir, manifest: Manifest) -> bool:
    """Whether a stage finished or left a checkpoint: something a resume would continue."""
    return bool(manifest.stages_done) or (run.checkpoints.is_dir() and any(run.checkpoints.iterdir()))


def _finish_if_possible(
    run: RunDir, manifest: Manifest, summary: RunSummary, status: str, ctx: StageContext, error: str | None
) -> None:
    """``_finish`` on a disk that may refuse the write: what is on disk stays resumable."""
    with contextlib.suppress(OSError):
        _finish(run, manifest, summary, status, ctx, error)


def _finish(
    run: RunDir, manifest: Manifest, summary: RunSummary, status: str, ctx: StageContext, error: str | None
) -> None:
    manifest.status = status
    manifest.finished = time.strftime("%Y-%m-%dT%H:%M:%S")
    if error:
        manifest.error = error
    run.write_manifest(manifest)
    run.write_summary(summary)
    if status == STATUS_DONE:
        run.mark_done()
    snapshot = summary.model_copy(deep=True)  # the event must not change when the summary does
    ctx.emit(RunFinished(run_id=ctx.run_id, status=status, summary=snapshot, error=error), force=True)
