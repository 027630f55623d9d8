"""Rare-lab report sections of the network experiments: spurious score (Fig. 2, 6, Table 1),
pixel importance (Fig. 3), sensitivity (Fig. 15) and membership inference (Fig. 5)."""

from __future__ import annotations

import math
from pathlib import Path

from labconsole.engine.records import (
    NormCorrelation,
    RareMembershipArtifact,
    RareScoreArtifact,
    RareScoreArtifactCell,
    RareSensitivityArtifact,
    RareWeightsArtifact,
)
from labconsole.report import figures_rare
from labconsole.report.doc import MISSING, Section, Table, Text
from labconsole.report.rare_format import MEASURES, _drawn, _is_num, _seeds, fmt, mse, p_text, read_artifact


def _measure_mean(cell: RareScoreArtifactCell | None, key: str) -> float | None:
    stats = cell.measure(key) if cell is not None else None
    return stats.mean if stats is not None else None


def _measure_se(cell: RareScoreArtifactCell | None, key: str) -> float | None:
    stats = cell.measure(key) if cell is not None else None
    return stats.se if stats is not None else None


def score_section(path: Path) -> Section | None:
    data = read_artifact(path, "rare_score.json", RareScoreArtifact)
    if data is None:
        return None
    table = data.per_pattern
    ns = list(data.n_values)
    section = Section("Spurious score vs number of spurious examples (Paper B Fig. 2, 6)", anchor="rare-score")

    eps = data.epsilon
    section.add(_drawn(lambda: figures_rare.score_figure(data), "the score figure"))
    rows: list[list[str]] = []
    breaks: list[int] = []
    for name, per_n in table.items():
        breaks.append(len(rows))
        for n in ns:
            cell = per_n.get(str(n)) or RareScoreArtifactCell()
            rows.append([name, str(n)] + [mse(cell.measure(k)) for k, _ in MEASURES] + [p_text(cell.p_value)])
    section.add(
        Table(
            ["pattern", "n", "spurious score", "clean acc", "spurious acc", "p (Welch, > n = 0)"],
            rows,
            title=f"ε = {eps}, target class {data.target_class}, {_seeds(data.seeds)}",
            caption="mean ± s.e. over seeds; * p < 0.05",
            section_breaks=tuple(breaks[1:]),
        )
    )
    accs = [r.clean_acc for r in data.runs if _is_num(r.clean_acc)]
    if accs:
        mean = sum(accs) / len(accs)
        sd = math.sqrt(sum((a - mean) ** 2 for a in accs) / len(accs))
        section.add(
            Text(
                f"Clean test accuracy over all {len(accs)} models: min {min(accs):.3f}, max {max(accs):.3f}, "
                f"mean {mean:.3f}, std {sd:.3f} (Paper B §4 reports the same four numbers per dataset).",
                kind="p",
            )
        )
    norms = data.pattern_norm
    if norms:
        corr = data.norm_score_correlation or NormCorrelation()
        avg: dict[str, list[float]] = {
            name: [m for m in (_measure_mean(per_n.get(str(n)), "score") for n in ns if n > 0) if _is_num(m)]
            for name, per_n in table.items()
        }
        rows = [
            [name, mse(stats), fmt(sum(avg[name]) / len(avg[name])) if avg.get(name) else MISSING]
            for name, stats in norms.items()
        ]
        caption = (
            f"Pearson r = {fmt(corr.r)}, p = {p_text(corr.p_value)} between norm and mean score"
            if _is_num(corr.r)
            else "correlation needs at least three patterns with different norms and scores"
        )
        section.add(
            Table(
                ["pattern", "empirical norm (mean ± s.e. over seeds)", "spurious score, mean over n > 0"],
                rows,
                title="pattern norm and spurious score (Paper B App. B.2, Table 1)",
                caption=caption,
            )
        )
    return section


def weights_section(path: Path) -> Section | None:
    data = read_artifact(path, "rare_weights.json", RareWeightsArtifact)
    if data is None:
        return None
    rows_in = data.rows
    section = Section("What the MLP looks at: pixel importance (Paper B Fig. 3)", anchor="rare-weights")
    definition = data.definition or "max over hidden units of |first-layer weight| (older runs)"
    section.add(_drawn(lambda: figures_rare.weights_figure(data), "the heat maps"))
    rows = []
    for r in rows_in:
        inside, outside = r.pattern_region_mean, r.elsewhere_mean
        ratio = inside / outside if _is_num(inside) and _is_num(outside) and outside else None
        rows.append([str(r.n), fmt(inside), fmt(outside), fmt(ratio, 2)])
    section.add(
        Table(
            ["n", "mean importance in the pattern's pixels", "elsewhere", "ratio"],
            rows,
            title=f"pattern {data.pattern}: importance inside vs outside the pattern",
            caption=f"one model per n (seed {data.seed}), so no s.e.; {definition}",
        )
    )
    return section


def sensitivity_section(path: Path) -> Section | None:
    data = read_artifact(path, "rare_sensitivity.json", RareSensitivityArtifact)
    if data is None:
        return None
    fractions = data.fractions
    curves = data.true_class_probability
    params = data.model_parameters
    section = Section("Sensitivity to zeroed pixels, per architecture (Paper B Fig. 15)", anchor="rare-sensitivity")
    section.add(_drawn(lambda: figures_rare.sensitivity_figure(data), "the sensitivity curves"))
    rows = [[b, fmt(params.get(b))] + [fmt(v) for v in probs] for b, probs in curves.items()]
    section.add(
        Table(
            ["backbone", "parameters"] + [f"{f:g}" for f in fractions],
            rows,
            title="mean true-class probability per fraction of non-zero pixels zeroed",
        )
    )
    return section


MEMBERSHIP_COLUMNS = (
    ("accuracy", "attack accuracy"),
    ("balanced_accuracy", "balanced acc."),
    ("auc", "AUC"),
    ("member_accuracy", "members flagged"),
    ("non_member_accuracy", "non-members passed"),
    ("spurious_member_accuracy", "spurious members flagged"),
    ("patterned_non_member_accuracy", "patterned non-members passed"),
)


def membership_section(path: Path) -> Section | None:
    data = read_artifact(path, "rare_membership.json", RareMembershipArtifact)
    if data is None:
        return None
    table = data.per_n
    ns = sorted(int(n) for n in table)
    section = Section("Membership inference (Paper B Fig. 5)", anchor="rare-membership")

    section.add(_drawn(lambda: figures_rare.membership_figure(data), "the membership figure"))
    rows = [[str(n)] + [mse(table[str(n)].get(k)) for k, _ in MEMBERSHIP_COLUMNS] for n in ns]
    sizes = data.split_sizes
    caption = (
        "mean ± s.e. over seeds. Split sizes: "
        + ", ".join(f"{k} {v}" for k, v in sizes.items())
        + (f"; counterpart: {data.patterned_non_members}" if data.patterned_non_members else "")
        + ". A high 'spurious members flagged' rate means little unless non-members are passed too."
    )
    section.add(
        Table(["n"] + [label for _, label in MEMBERSHIP_COLUMNS], rows, title="attack results", caption=caption)
    )
    return section
