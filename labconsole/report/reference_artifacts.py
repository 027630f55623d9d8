"""Reference cells whose number lives in an artifact, not in ``summary.json``.

A cell path ``"<artifact>.json:<path>"`` (``rare_score.json:pattern_norm.S3.mean``) names a file
under the run's ``artifacts/`` and a path inside it, in the metric-path syntax (``.name`` or
``["key"]``; ``["0"]`` on a list is its first item). The file is read through its typed record
(``labconsole.engine.records``), so a file that no longer fits its schema says so instead of
yielding a number from a layout the report does not know. Extra keys a stage records (``recipe``,
``model_parameters``) are kept by the records and can be named too.

Every failure is a sentence for the report's "ours from" column: a missing file names the stage
that writes it, a wrong path names the part that is not there and the keys that are.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from labconsole.engine.records import (
    MeanSE,
    RareDeletionArtifact,
    RareMembershipArtifact,
    RareMitigationsArtifact,
    RareScoreArtifact,
    RareSensitivityArtifact,
    RareTheoryArtifact,
    RareWeightsArtifact,
    ReadoutsArtifact,
    RunFormatError,
    VersionedRecord,
    parse_metric_path,
    read_record,
)

# the statistics sweeps give every summary number, so an artifact cell's mean ± s.e. is the same
from labconsole.engine.sweep import _mean_se as mean_se

# artifact file → (the stage that writes it, its record)
ARTIFACT_RECORDS: dict[str, tuple[str, type[VersionedRecord]]] = {
    "rare_score.json": ("rare-score", RareScoreArtifact),
    "rare_weights.json": ("rare-weights", RareWeightsArtifact),
    "rare_sensitivity.json": ("rare-sensitivity", RareSensitivityArtifact),
    "rare_membership.json": ("rare-membership", RareMembershipArtifact),
    "rare_mitigations.json": ("rare-mitigations", RareMitigationsArtifact),
    "rare_deletion.json": ("rare-deletion", RareDeletionArtifact),
    "rare_theory.json": ("rare-theory", RareTheoryArtifact),
    "stage1_readouts.json": ("neurons", ReadoutsArtifact),
}

_ARTIFACT_PATH = re.compile(r"^\s*([\w.-]+\.json)\s*:(.*)$")
MAX_KEYS_SHOWN = 12


@dataclass(frozen=True)
class ArtifactPath:
    file: str  # "rare_score.json"
    inner: str  # "pattern_norm.S3.mean"

    def __str__(self) -> str:
        return f"{self.file}:{self.inner}"


def artifact_path(path: str) -> ArtifactPath | None:
    """The artifact and inner path of ``"<file>.json:<path>"``; None for a summary metric path."""
    match = _ARTIFACT_PATH.match(path)
    return ArtifactPath(match.group(1), match.group(2).strip()) if match else None


def check_artifact_path(path: str) -> ArtifactPath:
    """``ValueError`` naming what is wrong with an artifact cell path (unknown file, bad syntax)."""
    parsed = artifact_path(path)
    if parsed is None:
        raise ValueError(f"{path!r} is not an artifact path (expected <file>.json:<path>)")
    if parsed.file not in ARTIFACT_RECORDS:
        raise ValueError(f"{path!r}: no record reads {parsed.file} (known artifacts: {', '.join(ARTIFACT_RECORDS)})")
    parse_metric_path(parsed.inner)
    return parsed


def _keys_text(keys: list[str]) -> str:
    if not keys:
        return "nothing is there"
    shown = ", ".join(keys[:MAX_KEYS_SHOWN])
    more = f" … ({len(keys)} in all)" if len(keys) > MAX_KEYS_SHOWN else ""
    return f"keys there: {shown}{more}"


def _children(node: object) -> dict[str, object] | list[object] | None:
    """What a path step can go into: a record's set fields and extras, a mapping, a list."""
    if isinstance(node, BaseModel):
        out: dict[str, object] = {}
        for name, info in type(node).model_fields.items():
            value = getattr(node, name)
            if value is not None and name != "schema_version":
                out[info.alias or name] = value
        out.update({k: v for k, v in (node.__pydantic_extra__ or {}).items() if v is not None})
        return out
    if isinstance(node, dict):
        return {str(k): v for k, v in node.items()}
    if isinstance(node, list):
        return node
    return None


def _describe(node: object) -> str:
    if isinstance(node, BaseModel | dict):
        return "an object"
    if isinstance(node, list):
        return f"a list of {len(node)}"
    return "text" if isinstance(node, str) else type(node).__name__


def value_at(record: VersionedRecord, cell: ArtifactPath) -> float:
    """The number at ``cell.inner`` inside ``record``; ``ValueError`` naming the part that is
    missing and the keys that exist there."""
    keys = parse_metric_path(cell.inner)
    node: object = record
    for depth, key in enumerate(keys):
        at = ".".join(keys[:depth]) or "the top level"
        children = _children(node)
        if isinstance(children, list):
            if not key.isdigit() or int(key) >= len(children):
                raise ValueError(f"{cell}: {at} is a list of {len(children)} item(s), no item {key!r}")
            node = children[int(key)]
        elif isinstance(children, dict):
            if key not in children:
                raise ValueError(f"{cell}: no {key!r} at {at} ({_keys_text(list(children))})")
            node = children[key]
        else:
            raise ValueError(f"{cell}: {at} is {_describe(node)} ({node!r}), it has no {key!r}")
    if isinstance(node, MeanSE):
        node = node.mean
    if isinstance(node, bool) or not isinstance(node, int | float) or not math.isfinite(node):
        detail = _keys_text(list(c)) if isinstance(c := _children(node), dict) else repr(node)
        raise ValueError(f"{cell}: {'.'.join(keys)} is {_describe(node)}, not a number ({detail})")
    return float(node)


def read_artifact_record(run_dir: Path, file: str) -> VersionedRecord:
    """``artifacts/<file>`` of the run as its record; ``ValueError`` when it is missing or does
    not fit the record."""
    stage, model = ARTIFACT_RECORDS[file]
    path = Path(run_dir) / "artifacts" / file
    if not path.is_file():
        raise ValueError(f"missing artifacts/{file} (stage {stage} not run?)")
    try:
        return read_record(model, path, missing_ok=False)
    except RunFormatError as exc:
        raise ValueError(f"artifacts/{file} cannot be read as {model.__name__}: {exc}") from None


def resolve_artifact(run_dir: Path, path: str) -> tuple[float | None, str]:
    """(the number, where from) for an artifact cell of one run; (None, why) when it cannot be read."""
    try:
        cell = check_artifact_path(path)
        return value_at(read_artifact_record(run_dir, cell.file), cell), f"artifacts/{cell}"
    except ValueError as exc:
        return None, str(exc)


def resolve_artifact_runs(run_dirs: list[Path], path: str) -> tuple[MeanSE | None, str]:
    """(mean ± s.e. over the runs, where from) for an artifact cell of a sweep combination. Runs
    whose artifact lacks the number are left out and said so; none at all gives (None, why)."""
    values: list[float] = []
    problems: list[str] = []
    for run_dir in run_dirs:
        value, where = resolve_artifact(run_dir, path)
        if value is None:
            problems.append(f"{Path(run_dir).name}: {where}")
        else:
            values.append(value)
    if not run_dirs:
        return None, f"{path}: the combination has no finished run"
    if not values:
        return None, problems[0] + (f" (and {len(problems) - 1} more run(s))" if len(problems) > 1 else "")
    where = f"artifacts/{path.strip()} over {len(values)} run(s)"
    if problems:
        where += f"; left out {len(problems)}: {problems[0]}"
    return mean_se(values), where
