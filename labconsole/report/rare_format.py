"""Reading a rare-lab run directory and the number formats its report sections use."""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

from labconsole.engine.records import MeanSE, VersionedRecord, validate_leniently
from labconsole.report.doc import MISSING, Figure, Text

A = TypeVar("A", bound=VersionedRecord)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_config(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads((path / "config.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def run_stages(path: Path) -> list[str]:
    manifest = _read_json(path / "manifest.json")
    stages = manifest.get("stages") if isinstance(manifest, dict) else None
    if not stages:
        stages = run_config(path).get("stages")
    return [str(s) for s in stages or []]


def is_rare_run(path: Path) -> bool:
    stages = run_stages(path)
    return bool(stages) and all(s.startswith("rare-") for s in stages)


def artifact(path: Path, name: str) -> dict[str, Any] | None:
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


def _is_num(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt(v: Any, digits: int = 3) -> str:
    if isinstance(v, bool) or v is None:
        return MISSING
    if isinstance(v, int):
        return f"{v:,}"
    if _is_num(v):
        return f"{v:.{digits}f}" if abs(v) >= 10 ** (-digits) or v == 0 else f"{v:.2g}"
    return str(v)


def mse(stats: Any, digits: int = 3) -> str:
    """'0.412 ± 0.031' (mean ± s.e.); one value has no s.e. and says so."""
    if isinstance(stats, MeanSE):
        stats = stats.model_dump()
    if not isinstance(stats, dict) or not _is_num(stats.get("mean")):
        return MISSING
    n = stats.get("n")
    if n == 1:
        return f"{stats['mean']:.{digits}f} (1 run, no s.e.)"
    return f"{stats['mean']:.{digits}f} ± {float(stats.get('se') or 0.0):.{digits}f}"


def p_text(p: Any) -> str:
    if not _is_num(p):
        return MISSING
    return f"{p:.2g}" + (" *" if p < 0.05 else "")


def _seeds(data: dict[str, Any] | list[int]) -> str:
    seeds = data if isinstance(data, list) else data.get("seeds") or []
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}" if seeds else "seeds not recorded"


def _drawn(build: Callable[[], Figure], name: str) -> Figure | Text:
    try:
        return build()
    except Exception as exc:  # a figure must never take its table down with it
        return Text(f"could not draw {name}: {type(exc).__name__}: {exc}", kind="warning")


MEASURES = (
    ("score", "spurious score"),
    ("clean_acc", "clean test accuracy"),
    ("spurious_acc", "spurious test accuracy"),
)
