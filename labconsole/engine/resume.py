"""Continuing an interrupted run: open its records strictly, refuse a preset that is not the
run's own, and put back what a skipped stage would have left for the stages after it.

A stage already recorded as done is not run again, but later stages read what it left in
``ctx.state`` (ERM leaves the selected model, fine-tuning and DFR leave theirs). Each such stage
wrote that model as a checkpoint, so a resumed run reloads it from there and ends exactly where
an uninterrupted run would.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from labconsole.engine.context import StageContext
from labconsole.engine.runs import RunDir
from labconsole.errors import UserError

if TYPE_CHECKING:
    from labconsole.presets import Preset

# -- the run's own configuration -----------------------------------------------------------------


# A value of a parsed TOML file (tomllib types it Any): a table, an array or a scalar.
TomlValue = object


def flatten(table: Mapping[str, TomlValue], prefix: str = "") -> dict[str, TomlValue]:
    """``{"erm": {"lr": 0.1}}`` → ``{"erm.lr": 0.1}``; lists and scalars are leaves."""
    out: dict[str, TomlValue] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and not any("." in str(k) for k in value):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def config_differences(run_config: str, preset_config: str) -> list[tuple[str, TomlValue, TomlValue]]:
    """(key, the run's value, the given value) for every key of the run's resolved config that
    the given one sets otherwise. Keys the run's file lacks are not compared: they were unset
    (TOML has no null) or added by a later version, and read back as their defaults."""
    ours, given = flatten(tomllib.loads(run_config)), flatten(tomllib.loads(preset_config))
    differing = [(key, ours[key], given.get(key)) for key in ours if ours[key] != given.get(key)]
    # Top-level keys (name, stages, seed) first: they say at once that it is another preset.
    return sorted(differing, key=lambda item: ("." in item[0], item[0]))


def preset_from_run(
    run_dir: Path | str, overrides: Iterable[str] = (), *, smoke: bool = False, data_root: str | None = None
) -> Preset:
    """The preset ``run_dir`` was started with, read from its own resolved ``config.toml``
    (``labconsole run --resume RUN`` without a preset). Values typed on the command line are put
    on top rather than dropped, so ``check_resume_config`` names any that differ from the run's."""
    from labconsole.presets import parse_override, preset_from_dict, set_dotted

    run = RunDir(Path(run_dir))
    path = run.path / "config.toml"
    if not (run.path / "manifest.json").exists():
        raise UserError(f"--resume {run.path}: not a run directory (no manifest.json)")
    if not path.is_file():
        raise UserError(f"--resume {run.path}: no config.toml in this run directory, so it cannot be continued")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: unreadable ({exc}); this run cannot be continued") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc}); this run cannot be continued") from None
    if smoke and not raw.get("smoke_profile"):
        raise UserError(
            f"--resume {run.path}: --smoke given, but the run was started without it; "
            "resume it without --smoke, or start a new smoke run"
        )
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(raw, key, value, source=f"--set {item}")
    if data_root:
        set_dotted(raw, "data.root", data_root, source="--data-root")
    return preset_from_dict(raw, source=str(path))


def check_resume_config(run: RunDir, preset_toml: str) -> None:
    """Refuse to continue ``run`` with a configuration other than the one it was started with.

    The run's ``config.toml`` is what its checkpoints and numbers were made with; training on
    with other values would leave a run whose record describes something it is not."""
    path = run.path / "config.toml"
    if not path.exists():
        raise UserError(f"--resume {run.path}: no config.toml in this run directory, so it cannot be continued")
    try:
        text = path.read_text(encoding="utf-8")
        differences = config_differences(text, preset_toml)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: unreadable ({exc}); this run cannot be continued") from None
    if differences:
        shown = "; ".join(f"{key}: run has {_show(a)}, given {_show(b)}" for key, a, b in differences[:8])
        more = f" (and {len(differences) - 8} more)" if len(differences) > 8 else ""
        smoke = next((ours for key, ours, _ in differences if key == "smoke_profile"), None)
        if smoke is not None:
            more += "; the run was started " + ("with" if smoke else "without") + " --smoke"
        raise UserError(
            f"--resume {run.path}: the preset and options given differ from the run's own config.toml "
            f"in {len(differences)} key(s): {shown}{more}. Resume with the same preset and options the run "
            f"was started with, or with none (`labconsole run --resume {run.path}` reads its config.toml), "
            "or start a new run"
        )


def _show(value: TomlValue) -> str:
    return "(unset)" if value is None else repr(value)


def thread_count_warning(started_with: int | None, now: int) -> str | None:
    """What to tell a user who resumes a run with another torch thread count than it started
    with: reductions split across threads add floats in another order, so the numbers differ
    in the last bits. None when the counts agree or the run did not record its count."""
    if started_with is None or started_with == now:
        return None
    return (
        f"this run was started with {started_with} torch thread(s) and is resumed with {now}: float sums "
        "are added in another order, so the resumed numbers (losses, accuracies, checkpoints) will differ "
        "in the last bits from those of an uninterrupted run"
    )


# -- what skipped stages leave behind ------------------------------------------------------------


def _load_into_state(ctx: StageContext, path: Path) -> None:
    from labconsole.engine.train.start import load_model_from

    ctx.state["model"] = load_model_from(ctx, path)


def _restore_erm(ctx: StageContext) -> None:
    best = ctx.run.checkpoints / "best.safetensors"
    if not best.exists():
        raise UserError(f"--resume {ctx.run.path}: ERM is recorded as done but {best} is missing")
    _load_into_state(ctx, best)
    ctx.state["checkpoint"] = best


def _restore_model(ctx: StageContext) -> None:
    if not ctx.preset.model.checkpoint:
        _restore_erm(ctx)  # the model stage trained it by ERM in this run
        return
    from labconsole.engine.models.checkpoint import resolve_checkpoint
    from labconsole.engine.pipeline import ensure_model

    ensure_model(ctx)
    ctx.state["checkpoint"] = resolve_checkpoint(ctx.preset.model.checkpoint)


def _restore_from(name: str, key: str | None = None) -> Callable[[StageContext], None]:
    def restore(ctx: StageContext) -> None:
        path = ctx.run.checkpoints / f"{name}.safetensors"
        if path.exists():
            _load_into_state(ctx, path)
            if key:
                ctx.state[key] = path

    return restore


# Stages whose result later stages read from ``ctx.state``; the others (Stage I readouts,
# GradCAM, the rare lab) leave nothing there that is not rebuilt on demand.
RESTORERS: dict[str, Callable[[StageContext], None]] = {
    "erm": _restore_erm,
    "model": _restore_model,
    "finetune": _restore_from("finetune-best", "finetuned_checkpoint"),
    "dfr": _restore_from("dfr"),
}


def restore_skipped_stage(ctx: StageContext, stage: str) -> None:
    """Put back into ``ctx.state`` what ``stage`` (done before the interruption) left there."""
    restore = RESTORERS.get(stage)
    if restore is not None:
        restore(ctx)
