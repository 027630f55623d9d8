"""``EnginePort`` over the real engine, typed against ``SessionPort``/``EnginePort``.

Every engine import happens inside a method, on a worker thread, so the console paints before
torch is loaded. A job leaves a core to the console; a call the user waits on takes every core
(``engine.threads``). Run directories are read through ``labconsole.engine.records``.
"""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from labconsole.engine.events import CancelToken, Emit, EpochResult
from labconsole.errors import UserError
from labconsole.ui.engine_port import (
    EMBEDDED_DATASETS,
    DatasetCheck,
    ImagePixels,
    LayerInfo,
    PresetEntry,
    RankedNeuron,
    RareScorePoint,
    RunDetails,
    RunEntry,
    SessionSpec,
)
from labconsole.ui.run_reading import dataset_check_from_report, epochs_from_records, final_stage_wga

if TYPE_CHECKING:  # imported where they are used, on a worker thread
    import torch

    from labconsole.engine.records import MeasuredEvidence, Readout
    from labconsole.engine.stage1.session import Session
    from labconsole.presets import Preset


def _waited_on() -> AbstractContextManager[None]:
    """A call the user waits for (open, rank, read out): every core unless a job is running."""
    from labconsole.engine.threads import interactive_call

    return interactive_call()


def _in_background() -> AbstractContextManager[None]:
    """A job (training, a rare-lab experiment): every core but one, so keys and redraws stay
    responsive while it runs."""
    from labconsole.engine.threads import background_job

    return background_job()


class CallCancelled:
    """A cancel token for interactive calls: set once the console stops waiting for the call
    (Esc), i.e. once the thread worker running it is cancelled. The session checks it between
    evaluation batches, so a stopped readout stops computing too (its caches stay whole: a cut
    is stored only when complete)."""

    def is_set(self) -> bool:
        from textual.worker import NoActiveWorker, get_current_worker

        try:
            return get_current_worker().is_cancelled
        except NoActiveWorker:  # called outside a worker (tests, scripts): never cancelled
            return False


class RealSession:
    """Adapts ``labconsole.engine.stage1.session.Session`` to ``SessionPort``."""

    def __init__(self, session: Session):
        self._session = session
        session.cancel = CallCancelled()  # Esc on a screen stops the engine's work as well
        # One engine call at a time: a superseded call (its result no longer wanted) runs on
        # until its next cancel check, and two calls must never edit the same weights at once.
        self._one_at_a_time = threading.RLock()
        self.group_names: tuple[str, ...] = tuple(session.group_names)
        self.train_group_counts: dict[str, int] = dict(session.train_group_counts)

    def layers(self) -> list[LayerInfo]:
        return [LayerInfo(name, kind, neurons) for name, kind, neurons in self._session.layers()]

    def rank(
        self,
        criterion: str,
        group: str | None,
        scope: str,
        k: float,
        score: str = "paper",
        progress: Callable[[int, int], None] | None = None,
    ) -> list[RankedNeuron]:
        with self._one_at_a_time, _waited_on():
            ranking = self._session.ranking(
                criterion=criterion, group=group, scope=scope, k=k, score=score, progress=progress
            )
        return list(ranking.neurons)

    def readout(
        self,
        neurons: Sequence[tuple[str, int]],
        mode: str,
        std: float,
        seeds: int,
        splits: Sequence[str] = ("train", "test"),
        control: bool = False,
        on_estimate: Callable[[Readout], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Readout:
        """``on_estimate`` receives the first numbers (≈, with ``ci_pp``) before the exact ones;
        ``progress(done, total)`` the chunks of the split walk done so far."""
        with self._one_at_a_time, _waited_on():
            return self._session.readout(
                list(neurons),
                mode=mode,
                std=std,
                seeds=seeds,
                splits=tuple(splits),
                control=control,
                on_estimate=on_estimate,
                progress=progress,
            )

    def matched_control(
        self,
        readout: Readout,
        draws: int = 20,
        first_draws: int = 3,
        *,
        on_partial: Callable[[Readout], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Readout:
        """``evidence_readout`` of the readout's edit, its draws walked once (the first ones
        first, each batch's result to ``on_partial``), merged into the readout as the headless
        Stage I rows keep it (``with_evidence``). The critical set's seeds are the readout's
        (the session seed), so its Δ is the same; Esc stops the walk (the session's cancel)."""
        from labconsole.engine.stage1.evidence import evidence_readout, with_evidence

        def merged(found: MeasuredEvidence) -> Readout:
            return with_evidence(readout, found, "layer-matched")

        with self._one_at_a_time, _waited_on():
            found = evidence_readout(
                self._session,
                [(str(neuron[0]), int(neuron[1])) for neuron in readout.neurons],
                mode=readout.mode,
                std=0.01 if readout.std is None else readout.std,  # zero mode has none
                seeds=readout.seeds,
                where=readout.where,
                splits=tuple(readout.splits),
                draws=int(draws),
                kind="layer-matched",
                seed=self._session.seed,
                first_draws=int(first_draws),
                on_partial=None if on_partial is None else lambda part: on_partial(merged(part)),
                progress=progress,
            )
        return merged(found)

    def example_images(self, split: str, ids: Sequence[int], size: int) -> list[ImagePixels]:
        """From the session's tensor cache (uint8), area-resized; grey images as grey RGB."""
        import torch
        import torch.nn.functional as F

        with self._one_at_a_time:
            images = self._session.cache(split).images
        positions = [int(i) for i in ids]
        outside = [i for i in positions if not 0 <= i < len(images)]
        if outside:
            raise UserError(f"example {outside[0]} is not in {split}: it has {len(images)} examples")
        if not positions:
            return []
        picked = images[torch.as_tensor(positions, device=images.device)].float()
        if picked.shape[1] == 1:
            picked = picked.expand(-1, 3, -1, -1)
        small = F.interpolate(picked[:, :3], size=(int(size), int(size)), mode="area")
        rows = small.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().tolist()
        return [[[(r, g, b) for r, g, b in row] for row in image] for image in rows]

    def random_neurons(self, count: int, seed: int) -> list[tuple[str, int]]:
        """The engine's own draw: the same one its random controls use."""
        return self._session.random_neurons(int(count), seed=int(seed))

    def close(self) -> None:
        with self._one_at_a_time:
            self._session.close()


class RealEngine:
    """The production ``EnginePort``."""

    def __init__(self, runs_root: str = "runs") -> None:
        self.runs_root = runs_root  # where run_job creates run directories
        self._digits_image: torch.Tensor | None = None  # first training digit, for the pattern preview

    def list_presets(self) -> list[PresetEntry]:
        from labconsole.presets import PRESETS_DIR

        entries = []
        for path in sorted(PRESETS_DIR.rglob("*.toml")) if PRESETS_DIR.is_dir() else []:
            try:  # only the header keys; full validation happens when the preset is used
                raw = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError):
                continue
            name = str(path.relative_to(PRESETS_DIR).with_suffix(""))
            entries.append(
                PresetEntry(
                    name=name,
                    path=str(path),
                    description=str(raw.get("description", "")),
                    stages=tuple(raw.get("stages", ("erm",))),
                )
            )
        return entries

    def load_preset(self, path: str, overrides: Sequence[str] = (), *, smoke: bool = False) -> Preset:
        from labconsole.presets import load_preset

        return load_preset(path, overrides, smoke=smoke)

    def run_job(self, preset: Preset, *, emit: Emit, cancel: CancelToken) -> str:
        from labconsole.engine.api import run_job

        with _in_background():
            return str(run_job(preset, emit=emit, cancel=cancel, runs_root=self.runs_root).path)

    def resume_job(self, run_dir: str, *, emit: Emit, cancel: CancelToken) -> str:
        """Continues with the run's own config.toml, read as ``labconsole run --resume`` reads it
        (a missing or unreadable file is named)."""
        from labconsole.engine.resume import preset_from_run

        preset = preset_from_run(run_dir)
        from labconsole.engine.api import run_job

        with _in_background():
            return str(run_job(preset, emit=emit, cancel=cancel, resume=run_dir).path)

    def open_session(self, spec: SessionSpec) -> RealSession:
        from labconsole.engine.stage1.session import Session

        with _waited_on():
            session = Session.open(
                dataset=spec.dataset,
                data_root=spec.data_root,
                backbone=spec.backbone,
                checkpoint=spec.checkpoint,
                device=spec.device,
                cancel=CallCancelled(),  # Esc on Setup stops the open between chunks of its work
            )
        return RealSession(session)

    def check_dataset(self, root: str, dataset: str) -> DatasetCheck:
        if dataset in EMBEDDED_DATASETS:
            return DatasetCheck(True, f"{dataset} is embedded: no files needed")
        if not root:
            return DatasetCheck(False, f"{dataset} needs a data folder: fill in the data root")
        from labconsole.engine.data.check import check_dataset

        return dataset_check_from_report(check_dataset(root, dataset))

    def list_runs(self, root: str) -> list[RunEntry]:
        from labconsole.engine.records import RunFormatError
        from labconsole.engine.runs import STATUS_NEVER_STARTED, list_runs

        entries = []
        for run in list_runs(Path(root)):
            if run.status() == STATUS_NEVER_STARTED:  # refused before any work: hidden, as in `labconsole runs`
                continue
            try:
                summary, manifest = run.read_summary(), run.read_manifest()
            except RunFormatError:  # listed by name and status; opening it says what is wrong
                entries.append(RunEntry(name=run.name, path=str(run.path), status=run.status()))
                continue
            stage, wga = final_stage_wga(summary, manifest.stages_done)
            checkpoints = (
                tuple(sorted(p.stem for p in run.checkpoints.glob("*.safetensors"))) if run.checkpoints.is_dir() else ()
            )
            entries.append(
                RunEntry(
                    name=run.name,
                    path=str(run.path),
                    status=run.status(),
                    preset=manifest.preset,
                    variant=manifest.variant or "paper",
                    test_wga=wga,
                    has_checkpoint=bool(checkpoints),
                    smoke=manifest.smoke,
                    checkpoints=checkpoints,
                    final_stage=stage,
                )
            )
        return entries

    def run_epochs(self, run_dir: str) -> list[EpochResult]:
        from labconsole.engine.runs import RunDir

        return epochs_from_records(RunDir(Path(run_dir)).events("EpochResult"))

    def run_summary(self, run_dir: str) -> RunDetails:
        from labconsole.engine.runs import RunDir

        run = RunDir(Path(run_dir))
        if not run.path.is_dir():
            raise UserError(f"run directory not found: {run_dir}")
        manifest, summary = run.read_manifest(), run.read_summary()  # RunFormatError names the file
        return RunDetails(
            name=run.name,
            path=str(run.path),
            status=run.status(),
            manifest=manifest,
            summary=summary,
            config=run.config_text(),
        )

    def export_report(self, run_dir: str) -> list[str]:
        from labconsole.report import write_report

        return [str(path) for path in write_report(Path(run_dir))]

    def rare_preview(self, pattern: str, image_size: int) -> list[list[float]]:
        """The first training digit with the pattern applied (the digits set is 28×28)."""
        from labconsole.engine.data.patterns import make_pattern

        if self._digits_image is None:
            from labconsole.config.data import DataConfig
            from labconsole.engine.data.registry import load_dataset

            images = load_dataset(DataConfig(dataset="digits")).splits["train"].images
            assert images is not None  # the digits set is held in memory
            self._digits_image = images[0].float() / 255.0  # [C, H, W]
        image = self._digits_image
        channels, height, width = image.shape
        patched = make_pattern(pattern, (channels, height, width), 0).apply(image)
        return patched.mean(0).tolist()  # greyscale rows × cols

    def rare_experiment(
        self, pattern: str, counts: Sequence[int], target_class: int, seeds: int, *, emit: Emit, cancel: CancelToken
    ) -> list[RareScorePoint]:
        """Runs ``presets/rare/score-vs-n.toml`` for one pattern, then reads its summary."""
        overrides = [
            f'rare.patterns=["{pattern}"]',
            f"rare.n_spurious=[{', '.join(str(n) for n in counts)}]",
            f"rare.target_class={target_class}",
            f"rare.num_seeds={seeds}",
        ]
        run_dir = self.run_job(self.load_preset("rare/score-vs-n", overrides), emit=emit, cancel=cancel)
        from labconsole.engine.runs import RunDir

        section = RunDir(Path(run_dir)).read_summary().rare_score
        table = section.per_pattern.get(pattern, {}) if section is not None else {}
        return [
            RareScorePoint(
                n=int(n),
                spurious_score=cell.score.mean,
                spurious_score_se=cell.score.se,
                clean_acc=cell.clean_acc.mean,
                spurious_acc=cell.spurious_acc.mean,
                p_value=cell.p_value,
            )
            for n, cell in sorted(table.items(), key=lambda item: int(item[0]))
        ]

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
        import numpy as np

        from labconsole.engine.rare.theory import ToyModel, gamma_curve

        model = ToyModel(gamma=0.0, x_inv=x_inv, x_sp=x_sp, sigma_inv=sigma_inv, sigma_sp=sigma_sp, lam=ridge)
        return gamma_curve(model, np.asarray(list(gammas), dtype=float))
