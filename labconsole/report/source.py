"""Reading a run or sweep directory for a report, tolerating whatever is half written.

Nothing here raises on a malformed file inside a run: problems are collected and shown in the
report. Only a path that is not a run or sweep directory at all raises ``UserError``.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labconsole.engine.runs import RunDir, is_run_dir
from labconsole.errors import UserError


@dataclass
class RunSource:
    run: RunDir
    manifest: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    config_text: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
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
        return str(self.manifest.get("preset") or self.config.get("name") or self.path.name)

    @property
    def reference(self) -> dict[str, Any]:
        ref = self.config.get("reference")
        return ref if isinstance(ref, dict) else {}

    def artifacts(self, suffix: str) -> list[Path]:
        folder = self.path / "artifacts"
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.rglob(f"*{suffix}") if p.is_file() and not p.name.startswith("."))


@dataclass
class SweepSource:
    path: Path
    index: dict[str, Any]
    aggregate: dict[str, Any]
    runs: list[tuple[dict[str, Any], str, RunSource | None]]  # (point, folder name, run or None)
    problems: list[str] = field(default_factory=list)

    @property
    def preset_name(self) -> str:
        return str(self.index.get("preset") or self.path.name)

    @property
    def backbone(self) -> str:
        for _, _, run in self.runs:
            if run is not None and isinstance(run.config.get("model"), dict):
                return str(run.config["model"].get("backbone", ""))
        return ""

    @property
    def reference(self) -> dict[str, Any]:
        ref = self.index.get("reference")
        if isinstance(ref, dict) and ref:
            return ref
        for _, _, run in self.runs:
            if run is not None and run.reference:
                return run.reference
        return {}


def read_json_file(path: Path, problems: list[str], *, required: bool = False) -> dict[str, Any]:
    if not path.exists():
        if required:
            problems.append(f"{path.name} is missing")
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        problems.append(f"{path.name} could not be read ({type(exc).__name__}: {exc})")
        return {}
    if not isinstance(value, dict):
        problems.append(f"{path.name} holds a {type(value).__name__}, expected an object")
        return {}
    return value


def load_run(path: Path) -> RunSource:
    source = RunSource(run=RunDir(Path(path)))
    problems = source.problems
    source.manifest = read_json_file(source.path / "manifest.json", problems, required=True)
    source.summary = read_json_file(source.path / "summary.json", problems, required=source.run.is_done)
    config_path = source.path / "config.toml"
    if config_path.exists():
        source.config_text = config_path.read_text(encoding="utf-8", errors="replace")
        try:
            source.config = tomllib.loads(source.config_text)
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"config.toml is not valid TOML ({exc})")
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
            if isinstance(record, dict):
                source.events.append(record)
    if torn:
        problems.append(f"metrics.jsonl has {torn} unreadable line(s) (skipped)")
    return source


def is_sweep_dir(path: Path) -> bool:
    return (Path(path) / "sweep.json").exists()


def load_sweep(path: Path) -> SweepSource:
    from labconsole.engine.sweep import aggregate_sweep

    path = Path(path)
    problems: list[str] = []
    index = read_json_file(path / "sweep.json", problems, required=True)
    points = index.get("points") if isinstance(index.get("points"), list) else []
    if not points:
        problems.append("sweep.json lists no points")
    aggregate: dict[str, Any] = {}
    try:
        # Recomputed from the run folders: runs may have finished (e.g. on a cluster) after the
        # sweep command returned.
        aggregate = aggregate_sweep(path)
    except Exception as exc:  # a broken sweep.json must still give a report saying so
        problems.append(f"could not aggregate the sweep ({type(exc).__name__}: {exc})")
        aggregate = read_json_file(path / "aggregate.json", problems)
    runs: list[tuple[dict[str, Any], str, RunSource | None]] = []
    for item in points:
        if not isinstance(item, dict) or "dir" not in item:
            problems.append(f"sweep.json: malformed point entry {item!r}")
            continue
        folder = path / str(item["dir"])
        run = load_run(folder) if folder.is_dir() and is_run_dir(folder) else None
        runs.append((dict(item.get("point") or {}), str(item["dir"]), run))
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
