"""Record base classes, the schema version, reading and validating files, metric paths."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from labconsole.errors import UserError

SCHEMA_VERSION = 1
"""Version written by this code. 0 = files from before the version field (same layout)."""

JsonScalar = str | int | float | bool | None
GroupValues = dict[str, float | None]  # group name → accuracy (fraction) or change (pp)
PerSplit = dict[str, GroupValues]  # split → group → value
# A neuron: (layer, index), with its ranking score where one was computed.
NeuronEntry = tuple[str, int] | tuple[str, int, float | None]


class RunFormatError(UserError):
    """A run-directory file is from an unknown schema version or does not fit its record."""


class Record(BaseModel):
    """A JSON file's (or a part's) typed view. Extra keys are kept as they are.

    ``to_json`` writes the fields that were given or assigned (not every default), so a file
    read and written back keeps exactly its keys."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_json(self) -> dict[str, JsonValue]:
        dumped: dict[str, JsonValue] = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return dumped


class VersionedRecord(Record):
    """A whole file; it always names its schema version."""

    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, JsonValue]:
        return {"schema_version": self.schema_version, **super().to_json()}


# -- accuracies -------------------------------------------------------------------------------


class SplitMetrics(Record):
    """Per-group accuracy and the named means of one split (``labconsole.engine.evaluate``)."""

    groups: GroupValues = Field(default_factory=dict)
    group_counts: dict[str, int] = Field(default_factory=dict)
    wga: float | None = None
    worst_group: str | None = None
    mean: float | None = None
    mean_train_weighted: float | None = None
    mean_groups: float | None = None
    wga_quantum: float | None = None
    n: int = 0


Splits = dict[str, SplitMetrics]


class Selection(Record):
    """How the reported epoch (or DFR's C) was chosen."""

    rule: str = ""
    epoch: int | None = None
    val_wga: float | None = None


class MeanSE(Record):
    """Mean, sample std (n−1) and standard error over seeds."""

    mean: float | None = None
    se: float | None = None
    std: float | None = None
    n: int = 0


# -- metric paths -------------------------------------------------------------------------------

_PATH_TOKEN = re.compile(r"""\.?([A-Za-z_][\w-]*)|\[\s*"([^"]*)"\s*\]|\[\s*'([^']*)'\s*\]""")


def parse_metric_path(path: str) -> list[str]:
    """``stage1.readouts["gradient/top3/zero"].train["landbird-water"].delta_pp`` → its keys.
    Raises ``ValueError`` naming the first part that is not ``.name`` or ``["key"]``."""
    keys, at = [], 0
    text = path.strip()
    while at < len(text):
        match = _PATH_TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise ValueError(f'metric path {path!r}: cannot read {text[at:]!r} (expected .name or ["key"])')
        keys.append(next(g for g in match.groups() if g is not None))
        at = match.end()
    if not keys:
        raise ValueError("empty metric path")
    return keys


# -- reading and writing --------------------------------------------------------------------------

R = TypeVar("R", bound=VersionedRecord)


def flatten_numbers(obj: object, prefix: str = "") -> dict[str, float]:
    """``{"splits": {"test": {"wga": 0.5}}}`` → ``{"splits.test.wga": 0.5}`` (finite numbers
    and None-free; booleans are not numbers)."""
    out: dict[str, float] = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(flatten_numbers(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, int | float) and not isinstance(obj, bool) and math.isfinite(obj):
        out[prefix] = float(obj)
    return out


def validate_record(model: type[R], data: object, source: str) -> R:
    """``data`` (parsed JSON) as ``model``, or ``RunFormatError`` naming ``source``, its
    schema version and the first fields that do not fit."""
    if not isinstance(data, dict):
        raise RunFormatError(f"{source}: holds a {type(data).__name__}, expected a JSON object")
    version = data.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise RunFormatError(f"{source}: schema_version {version!r} is not an integer")
    if version > SCHEMA_VERSION:
        raise RunFormatError(
            f"{source}: schema version {version} is newer than this labconsole reads "
            f"(versions 0–{SCHEMA_VERSION}); upgrade labconsole to read it"
        )
    try:
        return model.model_validate({**data, "schema_version": version})
    except ValidationError as exc:
        problems = "; ".join(f"`{'.'.join(str(p) for p in err['loc'])}`: {err['msg']}" for err in exc.errors()[:3])
        raise RunFormatError(
            f"{source}: does not fit the schema-version-{version} {model.__name__} record ({problems})"
        ) from None


def read_record(model: type[R], path: Path, *, missing_ok: bool = True) -> R:
    """The record in ``path``; an empty one when the file does not exist and ``missing_ok``."""
    if not path.exists():
        if missing_ok:
            return model()
        raise RunFormatError(f"{path}: missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunFormatError(f"{path}: not valid JSON ({exc})") from None
    return validate_record(model, data, str(path))


def validate_leniently(model: type[R], data: object, source: str) -> tuple[R, list[str]]:
    """Like ``validate_record``, but a part that does not fit is left out (and named in the
    returned problems) instead of losing the whole file: a report still shows the rest. A
    newer schema version still gives nothing but the problem."""
    try:
        return validate_record(model, data, source), []
    except RunFormatError as exc:
        if not isinstance(data, dict) or "does not fit" not in str(exc):
            return model(), [str(exc)]
    kept = json.loads(json.dumps(data))  # a copy to cut the misfits from
    version = kept.get("schema_version", 0)
    problems: list[str] = []
    while True:
        try:
            return model.model_validate({**kept, "schema_version": version}), problems
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(p) for p in err["loc"]][:2]
                if _drop(kept, loc):
                    problems.append(
                        f"could not read {source} `{'.'.join(loc)}` (schema version {version}): {err['msg']}"
                    )
                    break
            else:
                return model(), [*problems, f"could not read {source} (schema version {version})"]


def _drop(tree: dict[str, object], loc: list[str]) -> bool:
    node: object = tree
    for key in loc[:-1]:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    if isinstance(node, dict) and loc[-1] in node:
        del node[loc[-1]]
        return True
    if isinstance(node, list) and loc[-1].isdigit() and int(loc[-1]) < len(node):
        del node[int(loc[-1])]
        return True
    return False
