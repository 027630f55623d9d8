"""Reading a rare-lab run directory and the number formats its report sections use."""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard, TypeVar

from pydantic import JsonValue

from labconsole.engine.records import Manifest, MeanSE, VersionedRecord, validate_leniently
from labconsole.errors import UserError
from labconsole.report.doc import MISSING, Figure, Text

if TYPE_CHECKING:
    from labconsole.presets import Preset

A = TypeVar("A", bound=VersionedRecord)


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_preset(path: Path) -> Preset | None:
    """The run's ``config.toml`` as its typed preset; ``None`` when the file is missing, is not
    TOML or no longer validates as a preset (the sections then say what they cannot show)."""
    from labconsole.presets import preset_from_dict

    try:
        raw = tomllib.loads((path / "config.toml").read_text(encoding="utf-8"))
        return preset_from_dict(raw, source=str(path / "config.toml"))
    except (OSError, ValueError, UserError):
        return None


def run_manifest(path: Path) -> Manifest:
    """The run's manifest (an empty one when it is missing or unreadable); a part that does not
    fit its record is left out."""
    raw = _read_json(path / "manifest.json")
    return validate_leniently(Manifest, raw, "manifest.json")[0] if isinstance(raw, dict) else Manifest()


def run_stages(path: Path) -> list[str]:
    stages = run_manifest(path).stages
    if not stages:
        preset = run_preset(path)
        stages = list(preset.stages) if preset is not None else []
    return [str(s) for s in stages]


def is_rare_run(path: Path) -> bool:
    stages = run_stages(path)
    return bool(stages) and all(s.startswith("rare-") for s in stages)


def artifact(path: Path, name: str) -> dict[str, JsonValue] | None:
    data = _read_json(path / "artifacts" / name)
    return data if isinstance(data, dict) else None


def read_artifact(path: Path, name: str, model: type[A]) -> A | None:
    """``artifacts/<name>`` as ``model``; ``None`` when it is missing or not a JSON object. A
    part that does not fit its record is left out, so the rest of the section still shows."""
    data = artifact(path, name)
    if data is None:
        return None
    record, _problems = validate_leniently(model, data, f"artifacts/{name}")
    return record


def _is_num(v: object) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt(v: object, digits: int = 3) -> str:
    if isinstance(v, bool) or v is None:
        return MISSING
    if isinstance(v, int):
        return f"{v:,}"
    if _is_num(v):
        return f"{v:.{digits}f}" if abs(v) >= 10 ** (-digits) or v == 0 else f"{v:.2g}"
    return str(v)


def mse(stats: MeanSE | None, digits: int = 3) -> str:
    """'0.412 ± 0.031' (mean ± s.e.); one value has no s.e. and says so."""
    if stats is None or not _is_num(mean := stats.mean):
        return MISSING
    if stats.n == 1:  # short, so a table of one-seed cells stays one line a row
        return f"{mean:.{digits}f} (n=1)"
    return f"{mean:.{digits}f} ± {stats.se or 0.0:.{digits}f}"


def p_text(p: float | None) -> str:
    if not _is_num(p):
        return MISSING
    return f"{p:.2g}" + (" *" if p < 0.05 else "")


def _seeds(seeds: list[int]) -> str:
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}" if seeds else "seeds not recorded"


def _drawn(build: Callable[[], Figure | None], name: str) -> Figure | Text | None:
    try:
        return build()
    except Exception as exc:  # a figure must never take its table down with it
        return Text(f"could not draw {name}: {type(exc).__name__}: {exc}", kind="warning")


MEASURES = (
    ("score", "spurious score"),
    ("clean_acc", "clean test accuracy"),
    ("spurious_acc", "spurious test accuracy"),
)
