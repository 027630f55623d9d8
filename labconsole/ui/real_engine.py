"""``EnginePort`` over the real engine. Every engine import happens inside a method, on a
worker thread, so the console paints before torch is loaded.

Where this installation's engine does not (yet) offer a function, the call raises
``EngineUnavailable`` naming it; the console shows that as a notification.
"""

from __future__ import annotations

import importlib
import json
import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from labconsole.engine.events import CancelToken, Emit, EpochResult, ReadoutReady
from labconsole.errors import UserError
from labconsole.ui.engine_port import (
    EMBEDDED_DATASETS,
    DatasetCheck,
    EngineUnavailable,
    LayerInfo,
    PresetEntry,
    RankedNeuron,
    RunEntry,
    SessionSpec,
)


def engine_function(module: str, name: str, purpose: str) -> Callable[..., Any]:
    """``module.name`` or a clear ``EngineUnavailable`` saying what needs it."""
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise EngineUnavailable(
            f"{purpose} needs {module}.{name}, which this installation does not provide yet"
        ) from None
    _leave_a_core_to_the_console()
    return found


_threads_configured = False


def _leave_a_core_to_the_console() -> None:
    """Torch gets every core but one, so keys and redraws stay responsive while a job runs."""
    global _threads_configured
    if not _threads_configured:
        from labconsole.engine.api import configure_threads

        configure_threads(keep_a_core=True)
        _threads_configured = True


class RealSession:
    """Adapts ``labconsole.engine.api.Session`` to ``SessionPort``."""

    def __init__(self, session: Any):
        self._session = session
        self.group_names: tuple[str, ...] = tuple(session.group_names)
        counts = getattr(session, "train_group_counts", None) or {}
        self.train_group_counts: dict[str, int] = {str(k): int(v) for k, v in dict(counts).items()}

    def layers(self) -> list[LayerInfo]:
        out = []
        for item in self._session.layers():
            if isinstance(item, LayerInfo):
                out.append(item)
            elif isinstance(item, dict):
                out.append(LayerInfo(str(item["name"]), str(item.get("kind", "")), int(item["neurons"])))
            else:
                name, kind, neurons = (
                    (getattr(item, a) for a in ("name", "kind", "neurons")) if hasattr(item, "name") else item
                )
                out.append(LayerInfo(str(name), str(kind), int(neurons)))
        return out

    def rank(self, criterion: str, group: str | None, scope: str, k: float) -> list[RankedNeuron]:
        result = self._session.rank(criterion=criterion, group=group, scope=scope, k=k)
        neurons = getattr(result, "neurons", result)  # a RankingReady event or a plain list
        return [(str(layer), int(index), float(score)) for layer, index, score in neurons]

    def readout(
        self,
        neurons: Sequence[tuple[str, int]],
        mode: str,
        std: float,
        seeds: int,
        splits: Sequence[str] = ("train", "test"),
        control: bool = False,
    ) -> dict[str, Any]:
        result = self._session.readout(
            list(neurons), mode=mode, std=std, seeds=seeds, splits=tuple(splits), control=control
        )
        if isinstance(result, ReadoutReady):
            return {"splits": result.splits, "control": result.control, "wga_quantum_pp": {}}
        return dict(result)

    def random_neurons(self, count: int, seed: int) -> list[tuple[str, int]]:
        draw = getattr(self._session, "random_neurons", None)
        if draw is not None:  # the engine's own draw: the same one its random controls use
            return [(str(layer), int(index)) for layer, index in draw(int(count), seed=int(seed))]
        import random

        everything = [(layer.name, i) for layer in self.layers() for i in range(layer.neurons)]
        if count > len(everything):
            raise UserError(f"{count} random neurons requested, the model has {len(everything)} eligible neurons")
        return random.Random(seed).sample(everything, int(count))

    def close(self) -> None:
        close = getattr(self._session, "close", None)
        if close is not None:
            close()


class RealEngine:
    """The production ``EnginePort``."""

    def __init__(self, runs_root: str = "runs") -> None:
        self.runs_root = runs_root  # where run_job creates run directories
        self._digits_image: Any = None  # first training digit, for the pattern preview

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

    def load_preset(self, path: str, overrides: Sequence[str] = (), *, smoke: bool = False) -> Any:
        from labconsole.presets import load_preset

        return load_preset(path, overrides, smoke=smoke)

    def run_job(self, preset: Any, *, emit: Emit, cancel: CancelToken) -> str:
        run_job = engine_function("labconsole.engine.api", "run_job", "Training")
        run_dir = run_job(preset, emit=emit, cancel=cancel, runs_root=self.runs_root)
        return str(getattr(run_dir, "path", run_dir))

    def resume_job(self, run_dir: str, *, emit: Emit, cancel: CancelToken) -> str:
        from labconsole.presets import preset_from_dict

        config = Path(run_dir) / "config.toml"
        if not config.is_file():
            raise UserError(f"{config} not found: only a run directory with its config.toml can be resumed")
        try:
            raw = tomllib.loads(config.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{config}: not valid TOML ({exc})") from None
        preset = preset_from_dict(raw, source=str(config))
        run_job = engine_function("labconsole.engine.api", "run_job", "Resuming a run")
        resumed = run_job(preset, emit=emit, cancel=cancel, resume=run_dir)
        return str(getattr(resumed, "path", resumed))

    def open_session(self, spec: SessionSpec) -> RealSession:
        try:
            session_class = engine_function("labconsole.engine.stage1.session", "Session", "The Neurons screen")
        except EngineUnavailable:
            session_class = engine_function("labconsole.engine.api", "Session", "The Neurons screen")
        opener = getattr(session_class, "open", session_class)
        session = opener(
            dataset=spec.dataset,
            data_root=spec.data_root,
            backbone=spec.backbone,
            checkpoint=spec.checkpoint,
            device=spec.device,
        )
        return RealSession(session)

    def check_dataset(self, root: str, dataset: str) -> DatasetCheck:
        if dataset in EMBEDDED_DATASETS:
            return DatasetCheck(True, f"{dataset} is embedded: no files needed")
        if not root:
            return DatasetCheck(False, f"{dataset} needs a data folder: fill in the data root")
        check = engine_function("labconsole.engine.data.check", "check_dataset", "The dataset check")
        return dataset_check_from_report(check(root, dataset))

    def list_runs(self, root: str) -> list[RunEntry]:
        from labconsole.engine.runs import list_runs

        entries = []
        for run in list_runs(Path(root)):
            summary, manifest = run.summary(), run.manifest()
            stage, wga = final_stage_wga(summary, list(manifest.get("stages_done") or []))
            checkpoints = (
                tuple(sorted(p.stem for p in run.checkpoints.glob("*.safetensors"))) if run.checkpoints.is_dir() else ()
            )
            entries.append(
                RunEntry(
                    name=run.name,
                    path=str(run.path),
                    status=run.status(),
                    preset=str(manifest.get("preset", "")),
                    variant=str(manifest.get("variant", "paper")),
                    test_wga=wga,
                    has_checkpoint=bool(checkpoints),
                    smoke=bool(manifest.get("smoke")),
                    checkpoints=checkpoints,
                    final_stage=stage,
                )
            )
        return entries

    def run_epochs(self, run_dir: str) -> list[EpochResult]:
        from labconsole.engine.runs import RunDir

        return epochs_from_records(RunDir(Path(run_dir)).events("EpochResult"))

    def run_summary(self, run_dir: str) -> dict[str, Any]:
        from labconsole.engine.runs import RunDir

        run = RunDir(Path(run_dir))
        if not run.path.is_dir():
            raise UserError(f"run directory not found: {run_dir}")
        return {
            "name": run.name,
            "path": str(run.path),
            "status": run.status(),
            "manifest": run.manifest(),
            "summary": run.summary(),
            "config": run.config_text(),
        }

    def export_report(self, run_dir: str) -> list[str]:
        from labconsole.report import write_report

        return [str(path) for path in write_report(Path(run_dir))]

    def rare_preview(self, pattern: str, image_size: int) -> list[list[float]]:
        """The first training digit with the pattern applied (the digits set is 28×28)."""
        make_pattern = engine_function("labconsole.engine.data.patterns", "make_pattern", "The pattern preview")
        if self._digits_image is None:
            from labconsole.config.data import DataConfig
            from labconsole.engine.data.registry import load_dataset

            bundle = load_dataset(DataConfig(dataset="digits"))
            self._digits_image = bundle.splits["train"].images[0].float() / 255.0  # [C, H, W]
        image = self._digits_image
        patched = make_pattern(pattern, tuple(image.shape), 0).apply(image)
        return patched.mean(0).tolist()  # greyscale rows × cols

    def rare_experiment(
        self, pattern: str, counts: Sequence[int], target_class: int, seeds: int, *, emit: Emit, cancel: CancelToken
    ) -> list[dict[str, Any]]:
        """Runs ``presets/rare/score-vs-n.toml`` for one pattern, then reads its summary."""
        overrides = [
            f'rare.patterns=["{pattern}"]',
            f"rare.n_spurious=[{', '.join(str(n) for n in counts)}]",
            f"rare.target_class={target_class}",
            f"rare.num_seeds={seeds}",
        ]
        run_dir = self.run_job(self.load_preset("rare/score-vs-n", overrides), emit=emit, cancel=cancel)
        from labconsole.engine.runs import RunDir

        table = RunDir(Path(run_dir)).summary().get("rare-score", {}).get("per_pattern", {}).get(pattern, {})
        rows = []
        for n, cell in sorted(table.items(), key=lambda item: int(item[0])):
            rows.append(
                {
                    "n": int(n),
                    "spurious_score": cell["score"]["mean"],
                    "spurious_score_se": cell["score"]["se"],
                    "clean_acc": cell["clean_acc"]["mean"],
                    "spurious_acc": cell["spurious_acc"]["mean"],
                    "p_value": cell.get("p_value"),
                }
            )
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
        toy_model = engine_function("labconsole.engine.rare.theory", "ToyModel", "The theory plot")
        gamma_curve = engine_function("labconsole.engine.rare.theory", "gamma_curve", "The theory plot")
        import numpy as np

        model = toy_model(gamma=0.0, x_inv=x_inv, x_sp=x_sp, sigma_inv=sigma_inv, sigma_sp=sigma_sp, lam=ridge)
        return dict(gamma_curve(model, np.asarray(list(gammas), dtype=float)))


def final_stage_wga(summary: dict[str, Any], stages_done: Sequence[str]) -> tuple[str, float | None]:
    """(stage, test WGA) of the run's final model: the last finished stage that measured one
    (fine-tuning's ``wga_after``, a stage's own ``splits``), else the top-level (ERM) numbers."""
    for stage in reversed([s for s in stages_done if s != "erm"]):
        result = summary.get(stage)
        if not isinstance(result, dict):
            continue
        after = result.get("wga_after")
        wga = after.get("test") if isinstance(after, dict) else None
        if wga is None:
            wga = (result.get("splits") or {}).get("test", {}).get("wga")
        if isinstance(wga, (int, float)):
            return stage, float(wga)
    wga = summary.get("splits", {}).get("test", {}).get("wga")
    if isinstance(wga, (int, float)):
        return ("erm" if "erm" in stages_done else (stages_done[-1] if stages_done else "")), float(wga)
    return "", None


def epochs_from_records(records: Iterable[dict[str, Any]]) -> list[EpochResult]:
    """``EpochResult`` records of a ``metrics.jsonl`` → events, in order; an epoch recorded
    twice (run again after a resume) keeps its latest record, in the place of the first."""
    fields = set(EpochResult.__dataclass_fields__)
    latest: dict[tuple[str, int], EpochResult] = {}
    for record in records:
        try:
            event = EpochResult(**{k: v for k, v in record.items() if k in fields})
        except TypeError:  # a record from another version of the engine: skipped, not fatal
            continue
        latest[(event.stage, event.epoch)] = event
    return list(latest.values())


def dataset_check_from_report(report: dict[str, Any]) -> DatasetCheck:
    """``labconsole.engine.data.check.check_dataset``'s report → a verdict line and group counts."""
    problems = [str(p) for p in report.get("problems", [])]
    verdict = str(report.get("verdict") or ("loads" if report.get("ok") else "does not load"))
    layout = f" ({report['layout']} layout)" if report.get("layout") else ""
    message = "; ".join(problems) if problems else verdict + layout
    counts: dict[str, dict[str, tuple[int, int | None]]] = {}
    for split, info in dict(report.get("splits", {})).items():
        counts[split] = {str(row["group"]): (int(row["found"]), row.get("expected")) for row in info.get("groups", [])}
    return DatasetCheck(bool(report.get("ok")), message, counts)


def pretty_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)
