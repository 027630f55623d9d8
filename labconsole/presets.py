"""Presets: TOML files → frozen, validated pydantic models.

Every error names the file and the dotted key, and says what was expected. ``--set key=value``
overrides any key (the value is read as TOML, so ``--set erm.epochs=3`` is an int and
``--set 'rare.patterns=["S3","R3"]'`` a list; a bare word is a string).
"""

from __future__ import annotations

import itertools
import os
import tomllib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from labconsole.config.base import Section
from labconsole.config.data import DataConfig
from labconsole.config.erm import ErmConfig
from labconsole.config.finetune import FinetuneConfig
from labconsole.config.model import ModelConfig
from labconsole.config.neurons import NeuronsConfig
from labconsole.config.rare import RareConfig
from labconsole.config.sweep import SweepConfig
from labconsole.config.vocab import Device, Variant
from labconsole.errors import PresetError


def presets_dir() -> Path:
    """Where the named presets are: the copy an installed wheel carries as package data
    (``labconsole/preset_files``, made by setup.py from ``presets/``), else ``presets/`` of the
    source checkout (an editable install), the one source of both."""
    packaged = Path(str(resources.files("labconsole") / "preset_files"))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "presets"


PRESETS_DIR = presets_dir()


class Preset(Section):
    name: str
    description: str = ""
    # Which figure/table of which paper this reproduces, e.g. "Paper A, Table 3".
    reproduces: str = ""
    stages: tuple[str, ...] = ("erm",)
    seed: int = 0
    variant: Variant = "paper"
    device: Device = "auto"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    erm: ErmConfig = ErmConfig()
    neurons: NeuronsConfig = NeuronsConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    rare: RareConfig = RareConfig()
    sweep: SweepConfig = SweepConfig()
    # Published numbers shown beside ours in reports: {"label": {"row": {"col": value}}}.
    reference: dict[str, Any] = Field(default_factory=dict)
    smoke_profile: bool = False

    def smoke(self) -> Preset:
        return self.model_copy(
            update={
                "data": self.data.smoke(),
                "model": self.model.smoke(),
                "erm": self.erm.smoke(),
                "neurons": self.neurons.smoke(),
                "finetune": self.finetune.smoke(),
                "rare": self.rare.smoke(),
                "sweep": self.sweep.smoke(),
                "smoke_profile": True,
                "device": "cpu",
            }
        )

    def to_toml(self) -> str:
        return dump_toml(self.model_dump(mode="json"))


# -- loading -----------------------------------------------------------------------------------


def resolve_preset_path(name_or_path: str | Path) -> Path:
    """``presets/fig2.toml``, ``fig2.toml`` or ``fig2`` → an existing file, or a clear error."""
    raw = Path(name_or_path)
    candidates = [raw, PRESETS_DIR / raw, PRESETS_DIR / f"{raw}.toml", Path.cwd() / "presets" / raw]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = sorted(str(p.relative_to(PRESETS_DIR)) for p in PRESETS_DIR.rglob("*.toml")) if PRESETS_DIR.is_dir() else []
    hint = f" Known presets: {', '.join(known)}." if known else ""
    raise PresetError(f"preset file not found: {name_or_path}.{hint}")


def load_preset(
    name_or_path: str | Path,
    overrides: Iterable[str] = (),
    *,
    smoke: bool = False,
    data_root: str | None = None,
) -> Preset:
    path = resolve_preset_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise PresetError(
            f"{path}: not a text file (byte {exc.start} is not UTF-8); a preset is a UTF-8 TOML file"
        ) from None
    except OSError as exc:
        raise PresetError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    raw.setdefault("name", path.stem)
    typed: list[tuple[str, Any, str]] = [(*parse_override(item), f"--set {item}") for item in overrides]
    if data_root:
        typed.append(("data.root", data_root, "--data-root"))
    for key, value, source in typed:
        set_dotted(raw, key, value, source=source)
    preset = preset_from_dict(raw, source=str(path))
    return smoke_keeping(preset, typed, source=str(path)) if smoke else preset


# Smoke data sizes for a real dataset the user pointed at: a few images per split, small images.
SMOKE_MAX_PER_SPLIT = 256
SMOKE_MAX_IMAGE_SIZE = 64


def smoke_keeping(preset: Preset, typed: list[tuple[str, Any, str]], *, source: str) -> Preset:
    """``preset.smoke()`` that never overrides what the user typed: every ``--set`` (and
    ``--device``, ``--data-root``) is applied again on top of the smoke sizes. A user who named
    their data (``--data-root`` or a ``data.`` key) keeps that dataset, only capped in size,
    instead of being swapped to the embedded one."""
    raw = preset.smoke().model_dump(mode="json")
    if preset.device != "auto":
        raw["device"] = preset.device  # a device the preset names is kept; only "auto" becomes the CPU
    if any(key.startswith("data.") for key, _, _ in typed) and not preset.data.is_embedded:
        data = preset.data.model_dump(mode="json")
        data["max_per_split"] = min(preset.data.max_per_split or SMOKE_MAX_PER_SPLIT, SMOKE_MAX_PER_SPLIT)
        data["image_size"] = min(preset.data.image_size, SMOKE_MAX_IMAGE_SIZE)
        raw["data"] = data
    for key, value, origin in typed:
        set_dotted(raw, key, value, source=origin)
    return preset_from_dict(raw, source=f"{source} (--smoke)")


def preset_from_dict(raw: dict[str, Any], *, source: str = "<preset>") -> Preset:
    try:
        return Preset.model_validate(raw)
    except ValidationError as exc:
        raise PresetError(format_validation_error(exc, source)) from None


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parent = ".".join(str(p) for p in err["loc"][:-1])
            where = f"[{parent}]" if parent else "the top level"
            lines.append(f"{source}: unknown key `{key}` ({where} has no such field; check the spelling)")
        elif err["type"] == "missing":
            lines.append(f"{source}: missing key `{key}`")
        else:
            got = err.get("input")
            got_text = f" (got {got!r})" if got is not None and not isinstance(got, dict) else ""
            lines.append(f"{source}: key `{key}`: {err['msg']}{got_text}")
    return "\n".join(lines)


def parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise PresetError(f"--set {item!r}: expected key=value, e.g. --set erm.epochs=3")
    key, text = item.split("=", 1)
    key, text = key.strip(), text.strip()
    if not key:
        raise PresetError(f"--set {item!r}: empty key")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare word is a string: --set data.dataset=waterbirds
    return key, value


def set_dotted(raw: dict[str, Any], key: str, value: Any, *, source: str) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise PresetError(f"{source}: `{part}` is a value, not a section, so `{key}` cannot be set")
        node = child
    node[parts[-1]] = value


def data_root_for(preset: Preset) -> str:
    return preset.data.root or os.environ.get("LABCONSOLE_DATA", "")


# -- sweeps ------------------------------------------------------------------------------------


def expand_sweep(preset: Preset) -> list[tuple[dict[str, Any], Preset]]:
    """One (axis values, preset) per combination of axis values × seeds."""
    axes = preset.sweep.axes
    seeds = preset.sweep.seeds or (preset.seed,)
    keys = list(axes)
    combos = list(itertools.product(*(axes[k] for k in keys))) if keys else [()]
    base = preset.model_dump(mode="json")
    base["sweep"] = {}
    out: list[tuple[dict[str, Any], Preset]] = []
    for combo in combos:
        for seed in seeds:
            raw = _deep_copy(base)
            point = dict(zip(keys, combo))
            for key, value in point.items():
                if key == RECIPE_AXIS:
                    for dotted, setting in _recipe(preset, value).items():
                        set_dotted(raw, dotted, setting, source=f"[sweep.recipes] {value}.{dotted}")
                    continue
                set_dotted(raw, key, value, source=f"[sweep] axes.{key}")
            raw["seed"] = seed
            out.append(({**point, "seed": seed}, preset_from_dict(raw, source=f"sweep point {point}")))
    return out


RECIPE_AXIS = "recipe"


def _recipe(preset: Preset, name: Any) -> dict[str, Any]:
    recipes = preset.sweep.recipes
    if name not in recipes:
        raise PresetError(
            f"[sweep] axes.recipe: {name!r} is not in [sweep.recipes] (defined: {', '.join(recipes) or 'none'})"
        )
    return recipes[name]


def _deep_copy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deep_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deep_copy(v) for v in obj]
    return obj


# -- TOML writing (resolved config.toml) -------------------------------------------------------


def dump_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    _dump_table(data, [], lines)
    return "\n".join(lines).strip() + "\n"


def _dump_table(table: dict[str, Any], prefix: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not _is_table(v)}
    tables = {k: v for k, v in table.items() if _is_table(v)}
    if prefix and (scalars or not tables):
        lines.append("")
        lines.append("[" + ".".join(_key(p) for p in prefix) + "]")
    for key, value in scalars.items():
        if value is None:
            continue  # TOML has no null; a missing key reads back as the default
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in tables.items():
        _dump_table(value, prefix + [key], lines)


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) for k in value) and bool(value) and not _inline(value)


def _inline(value: dict[str, Any]) -> bool:
    return any("." in k for k in value)  # sweep axes use dotted keys: keep them inline


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _string(key)


def _string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None) + "}"
    return _string(str(value))
