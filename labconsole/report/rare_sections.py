"""Report sections of the rare-correlation lab (Paper B): what the run did, one section per
experiment (table + figure, mean ± s.e.), and Paper B's published numbers beside ours.

A run whose stages are all ``rare-*`` gets these sections instead of Paper A's (per-group
accuracies, WGA definitions, model selection, dataset group counts), which say nothing about it.
Everything is read from the run directory itself through typed records: ``config.toml`` as the
run's preset, ``manifest.json`` as its ``Manifest``, ``artifacts/rare_*.json`` as the artifacts'
records (engine/records/rare.py), so the sections do not depend on how the summary is typed.

Reference tables: a preset's ``[reference."<label>"]`` holds ``row = paper value`` (or
``row = {column = value}``) and ``_ours = "<artifact>:<dotted.path>"`` naming our number, with
``{row}`` / ``{col}`` filled in, e.g. ``_ours = "rare_score.json:pattern_norm.{row}.mean"``;
``_note`` says what differs (dataset, model); ``_unit`` the unit of each cell (``count``,
``value``, ``pp``, ``fraction``). The cells are read and laid out by ``reference.py`` and
``reference_tables.py``, as a sweep's are.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labconsole.report import reference_tables
from labconsole.report.doc import Section, Table, Text, guarded
from labconsole.report.rare_experiments import membership_section, score_section, sensitivity_section, weights_section
from labconsole.report.rare_format import fmt, is_rare_run, run_manifest, run_preset, run_stages
from labconsole.report.rare_studies import deletion_section, mitigations_section, theory_section

__all__ = ["definitions", "is_rare_run", "main_table", "sections"]

RARE_ARTIFACTS = (
    "rare_score.json",
    "rare_weights.json",
    "rare_sensitivity.json",
    "rare_membership.json",
    "rare_mitigations.json",
    "rare_deletion.json",
    "rare_theory.json",
)


UNREAD = "the recipe cannot be set beside Paper B's"

PAPER_RECIPE: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 0.01,
    "batch_size": 128,
    "epochs": 70,
    "lr_milestones": [40, 50, 60],
    "lr_gamma": 0.1,
}


def recipe_section(path: Path) -> Section:
    manifest = run_manifest(path)
    section = Section("What this run did (Paper B recipe beside ours)", anchor="rare-recipe")
    stages = run_stages(path)
    if stages == ["rare-theory"]:
        section.add(
            Text(
                "No network is trained: the exact population ridge optimum of Paper B's toy model (§5, App. A), "
                "checked by Monte Carlo and compared with the authors' closed forms. No dataset is loaded.",
                kind="p",
            )
        )
        return section
    preset = run_preset(path)
    if preset is None:
        section.add(Text(f"{path / 'config.toml'}: missing or no longer a valid preset; {UNREAD}", kind="warning"))
        return section
    rare, data = preset.rare, preset.data
    rows: list[list[str]] = []
    emphasis: dict[tuple[int, int], str] = {}
    for key, paper in PAPER_RECIPE.items():
        value = getattr(rare, key)
        ours = list(value) if isinstance(value, tuple) else value
        same = ours == paper
        if not same:
            emphasis[(len(rows), 3)] = "large"
        rows.append([key, fmt(paper), fmt(ours), "as Paper B" if same else "departure from Paper B"])
    dataset = data.dataset
    paper_aug = "pad-4 crop + flip" if dataset == "cifar10" else "none"
    ours_aug = "pad-4 crop + flip" if data.augment else "none"
    if paper_aug != ours_aug:
        emphasis[(len(rows), 3)] = "large"
    rows.append(
        [
            "augmentation",
            paper_aug + " (Paper B augments CIFAR-10 only)",
            ours_aug,
            "as Paper B" if paper_aug == ours_aug else "departure from Paper B",
        ]
    )
    for key in ("weight_decay", "input_noise_std", "clip_value", "clip_norm"):
        if getattr(rare, key):
            emphasis[(len(rows), 3)] = "large"
            rows.append([key, "0", fmt(getattr(rare, key)), "regulariser on (Paper B: only in the mitigation study)"])
    rows.append(
        [
            "dataset",
            "MNIST, Fashion-MNIST, CIFAR-10",
            dataset,
            "embedded stand-in" if dataset.startswith("digits") else "",
        ]
    )
    rows.append(["model", "MLP 784-256-256-256 (MNIST), ResNet-20 (CIFAR-10)", preset.model.backbone, ""])
    if manifest.smoke:
        rows.append(["profile", "full", "--smoke (tiny sizes)", "numbers are a functional check, not a result"])
        emphasis[(len(rows) - 1, 3)] = "large"
    section.add(Table(["setting", "Paper B", "this run", "note"], rows, title="training recipe", emphasis=emphasis))
    return section


def definitions(path: Path) -> Section:
    section = Section("Definitions and configuration", anchor="config")
    rows = [
        ["ε-spurious score", "fraction of test images outside target class t with p_t(x + pattern) − p_t(x) > ε"],
        ["clean test accuracy", "accuracy on the unchanged test set"],
        ["spurious test accuracy", "accuracy when the pattern is added to every test image whose label ≠ t"],
        ["p (Welch)", "one-sided Welch t-test of the scores at n against those at n = 0, over seeds"],
        ["empirical pattern norm", "mean over test images of ‖x − (x + pattern)‖₂ after clipping (App. B.2)"],
        ["mean ± s.e.", "over seeds (independent models); s.e. = sample std / √seeds"],
    ]
    stages = run_stages(path)
    if "rare-membership" in stages:
        rows += [
            ["attack accuracy", "fraction of target members and held-out non-members classified correctly"],
            ["balanced accuracy", "mean of the member and non-member rates (0.5 = a constant guess)"],
            ["patterned non-members", "held-out target-class images with the pattern: fraction flagged non-member"],
        ]
    if "rare-theory" in stages:
        rows = [
            [
                "γ",
                "fraction of all training examples that are spurious (SPEC §6); the authors' forms use γ within class +1",
            ],
            ["prediction difference", "w_sp · x_sp: the change of the output when the pattern is added"],
            ["clean / spurious accuracy", "Gaussian-CDF accuracy without / with the pattern on class −1"],
        ]
    section.add(Table(["measure", "definition"], rows, title="measures"))
    preset = run_preset(path) if stages != ["rare-theory"] else None
    if preset is not None:
        section.add(Text(f"Data: {preset.data.dataset} (train and test splits as loaded; no group labels).", kind="p"))
    config_text = ""
    with contextlib.suppress(OSError):
        config_text = (path / "config.toml").read_text(encoding="utf-8")
    if config_text:
        section.add(Text(config_text, kind="details-code", title="resolved config.toml"))
    return section


def reference_section(path: Path) -> Section:
    preset = run_preset(path)
    reference = preset.reference if preset is not None else {}
    # each cell read through its artifact's record, in its own unit; none at all is said so
    return reference_tables.run_section(reference, path, "Paper B's published numbers beside ours", "Paper B")


BUILDERS: tuple[tuple[str, Callable[[Path], Section | None]], ...] = (
    ("recipe", recipe_section),
    ("rare-score section", score_section),
    ("rare-weights section", weights_section),
    ("rare-sensitivity section", sensitivity_section),
    ("rare-membership section", membership_section),
    ("rare-mitigations section", mitigations_section),
    ("rare-deletion section", deletion_section),
    ("rare-theory section", theory_section),
    ("published numbers", reference_section),
)


def sections(path: Path, shown: set[str]) -> list[Section]:
    """Every rare section of the run at ``path``; the artifacts they show are added to ``shown``."""
    out: list[Section] = []
    for title, build in BUILDERS:
        out += guarded(title, functools.partial(build, path))
    from labconsole.report import figures_rare

    pngs = [p.name for p in (path / "artifacts").glob("*.png")] if (path / "artifacts").is_dir() else []
    for name in RARE_ARTIFACTS:
        if (path / "artifacts" / name).exists():
            shown.add(name)
            shown.update(figures_rare.legacy_pngs(name, pngs))
    return out


def main_table(path: Path) -> Table | None:
    """The run's headline table for ``report.svg``: the first experiment table."""
    for build in (score_section, membership_section, deletion_section, mitigations_section):
        try:
            section = build(path)
        except Exception:
            continue
        for block in section.blocks if section else []:
            if isinstance(block, Table):
                return block
    return None
