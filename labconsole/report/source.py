"""Reading a run or sweep directory for a report, tolerating whatever is half written.

Nothing here raises on a malformed file inside a run: problems are collected and shown in the
report. Only a path that is not a run or sweep directory at all raises ``UserError``.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import JsonValue, ValidationError

from labconsole.engine.records import (
    EpochRecord,
    Manifest,
    Point,
    RunSummary,
    SweepAggregate,
    SweepIndex,
    VersionedRecord,
    validate_leniently,
)
from labconsole.engine.runs import RunDir, is_run_dir
from labconsole.errors import UserError

if TYPE_CHECKING:
    from labconsole.presets import Preset

R = TypeVar("R", bound=VersionedRecord)


@dataclass
class RunSource:
    """A run directory read through its records; what could not be read is in ``problems``."""

    run: RunDir
    manifest: Manifest = field(default_factory=Manifest)
    summary: RunSummary = field(default_factory=RunSummary)
    config: Preset | None = None  # config.toml as a preset; None when missing or not valid
    config_text: str = ""
    reference: dict[str, JsonValue] = field(default_factory=dict)  # the preset's [reference]
    epochs: list[EpochRecord] = field(default_factory=list)  # EpochResult lines of metrics.jsonl
    problems: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def status(self) -> str:
        return self.run.status()

    @property
    def is_done(self) -> bool:
        return self.run.is_done

    @property
    def preset_name(self) -> str:
        return self.manifest.preset or (self.config.name if self.config else "") or self.path.name

    @property
    def backbone(self) -> str:
        return self.config.model.backbone if self.config else ""

    def artifacts(self, suffix: str) -> list[Path]:
        folder = self.path / "artifacts"
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.rglob(f"*{suffix}") if p.is_file() and not p.name.startswith("."))


@dataclass
class SweepSource:
    path: Path
    index: SweepIndex
    aggregate: SweepAggregate
    runs: list[tuple[Point, str, RunSource | None]]  # (point, folder name, run or None)
    problems: list[str] = field(default_factory=list)

    @property
    def preset_name(self) -> str:
        return self.index.preset or self.path.name

    @property
    def backbone(self) -> str:
        return next((run.backbone for _, _, run in self.runs if run is not None and run.backbone), "")

    @property
    def reference(self) -> dict[str, JsonValue]:
        if self.index.reference:
            return self.index.reference
        return next((run.reference for _, _, run in self.runs if run is not None and run.reference), {})


def read_json_file(path: Path, problems: list[str], *, required: bool = False) -> object:
    """Parsed JSON, or None (with the reason in ``problems``)."""
    if not path.exists():
        if required:
            problems.append(f"{path.name} is missing")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        problems.append(f"{path.name} could not be read ({type(exc).__name__}: {exc})")
        return None


def read_file_record(model: type[R], path: Path, problems: list[str], *, required: bool = False) -> R:
    """``path`` as ``model``; parts that do not fit are left out and named in ``problems``."""
    data = read_json_file(path, problems, required=required)
    if data is None:
        return model()
    record, found = validate_leniently(model, data, path.name)
    problems.extend(found)
    return record


def load_run(path: Path) -> RunSource:
    source = RunSource(run=RunDir(Path(path)))
    problems = source.problems
    source.manifest = read_file_record(Manifest, source.path / "manifest.json", problems, required=True)
    source.summary = read_file_record(RunSummary, source.path / "summary.json", problems, required=source.is_done)
    config_path = source.path / "config.toml"
    if config_path.exists():
        source.config_text = config_path.read_text(encoding="utf-8", errors="replace")
        _read_config(source)
    else:
        problems.append("config.toml is missing")
    torn = 0
    metrics = source.path / "metrics.jsonl"
    if metrics.exists():
        for line in metrics.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                torn += 1
                continue
            if isinstance(record, dict) and record.get("type") == "EpochResult":
                try:
                    source.epochs.append(EpochRecord.model_validate(record))
                except ValidationError:
                    torn += 1
    if torn:
        problems.append(f"metrics.jsonl has {torn} unreadable line(s) (skipped)")
    return source


def _read_config(source: RunSource) -> None:
    from labconsole.presets import preset_from_dict

    try:
        raw = tomllib.loads(source.config_text)
    except tomllib.TOMLDecodeError as exc:
        source.problems.append(f"config.toml is not valid TOML ({exc})")
        return
    reference = raw.get("reference")
    if isinstance(reference, dict):
        source.reference = json.loads(json.dumps(reference, default=str))
        name = raw.get("name")
        if isinstance(name, str) and _add_metric_paths(source.reference, name):
            source.problems.append(
                f"this run's config.toml predates metric paths in [reference]; the published numbers are "
                f"matched with the paths of today's presets/{name}.toml"
            )
    try:
        source.config = preset_from_dict(raw, source="config.toml")
    except UserError as exc:  # a preset key renamed since: the manifest still names the run
        source.problems.append(f"config.toml no longer validates as a preset ({exc})")


METRIC_PATH_KEYS = ("_ours", "_points", "_backbone")


def _add_metric_paths(reference: dict[str, JsonValue], preset_name: str) -> bool:
    """A run written before reference tables named their metric paths gets the paths of the
    same-labelled table of the shipped preset (the published values stay the run's own)."""
    if any(isinstance(t, dict) and "_ours" in t for t in reference.values()):
        return False
    from labconsole.presets import PRESETS_DIR

    path = PRESETS_DIR / f"{preset_name}.toml"
    if not path.is_file():
        return False
    try:
        shipped = tomllib.loads(path.read_text(encoding="utf-8")).get("reference")
    except (OSError, tomllib.TOMLDecodeError):
        return False
    added = False
    for label, table in reference.items():
        today = shipped.get(label) if isinstance(shipped, dict) else None
        if isinstance(table, dict) and isinstance(today, dict):
            for key in METRIC_PATH_KEYS:
                if key in today:
                    table[key] = json.loads(json.dumps(today[key]))
                    added = True
    return added


def is_sweep_dir(path: Path) -> bool:
    return (Path(path) / "sweep.json").exists()


def load_sweep(path: Path) -> SweepSource:
    from labconsole.engine.sweep import aggregate_sweep

    path = Path(path)
    problems: list[str] = []
    index = read_file_record(SweepIndex, path / "sweep.json", problems, required=True)
    if not index.points:
        problems.append("sweep.json lists no points")
    if index.reference and _add_metric_paths(index.reference, index.preset):
        problems.append(
            "this sweep's sweep.json predates metric paths in [reference]; the published numbers are "
            f"matched with the paths of today's presets/{index.preset}.toml"
        )
    try:
        # Recomputed from the run folders: runs may have finished (e.g. on a cluster) after the
        # sweep command returned.
        aggregate = aggregate_sweep(path)
    except Exception as exc:  # a broken sweep.json must still give a report saying so
        problems.append(f"could not aggregate the sweep ({type(exc).__name__}: {exc})")
        aggregate = read_file_record(SweepAggregate, path / "aggregate.json", problems)
    runs: list[tuple[Point, str, RunSource | None]] = []
    for item in index.points:
        folder = path / item.dir
        run = load_run(folder) if folder.is_dir() and is_run_dir(folder) else None
        runs.append((dict(item.point), item.dir, run))
    return SweepSource(path=path, index=index, aggregate=aggregate, runs=runs, problems=problems)


def classify(path: Path) -> str:
    """'run' or 'sweep', or a UserError that says what the folder is instead."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"report: {path} does not exist (expected a run or sweep directory under runs/)")
    if not path.is_dir():
        raise UserError(f"report: {path} is a file, not a run or sweep directory")
    if is_sweep_dir(path):
        return "sweep"
    if is_run_dir(path):
        return "run"
    children = [c for c in path.iterdir() if not c.name.startswith(".")]
    if not children:
        raise UserError(
            f"report: {path} is empty: not a run directory (no manifest.json) and not a sweep directory (no sweep.json)"
        )
    nested = [c for c in children if c.is_dir() and (is_run_dir(c) or is_sweep_dir(c))]
    if nested:
        raise UserError(
            f"report: {path} holds {len(nested)} run/sweep directories; give one of them, "
            f"e.g. labconsole report {nested[0]}"
        )
    raise UserError(
        f"report: {path} is not a run directory (no manifest.json or config.toml) "
        "and not a sweep directory (no sweep.json)"
    )
