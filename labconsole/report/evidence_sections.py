"""Evidence sections: Stage I's control with significance, the memorization signature and the
flipped examples; Stage II's start (epoch 0), whether fine-tuning ever beat it, and the mask's
realised size. Everything is read from the run record (summary.json, artifacts), never recomputed.
"""

from __future__ import annotations

import json

from labconsole.engine.records import Evidence, ReadoutRow, ReadoutsArtifact, validate_record
from labconsole.report.doc import Figure, Section, Table, Text, pct
from labconsole.report.source import RunSource, SweepSource

READOUTS = "stage1_readouts.json"
FLIPS_LISTED = 12  # flipped examples listed per readout and group in the report


def evidence(src: RunSource, shown: set[str]) -> list[Section] | None:
    sections = [s for s in (stage1_evidence(src, shown), stage2_evidence(src)) if s is not None]
    return sections or None


# -- Stage I ---------------------------------------------------------------------------------------


def stage1_readouts(src: RunSource) -> ReadoutsArtifact | None:
    """The run's recorded Stage I readouts (``artifacts/stage1_readouts.json``), None without them."""
    path = src.path / "artifacts" / READOUTS
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return validate_record(ReadoutsArtifact, data, str(path)) if isinstance(data, dict) else None


def _cell(value: float | None, mean: float | None, sd: float | None, p: float | None) -> str:
    if value is None:
        return "—"
    text = f"{value:+.1f}"
    if mean is not None:
        text += f" [{mean:+.1f} ± {(sd or 0.0):.1f}]"
    if p is not None:
        text += f" p = {p:.3f}"
    return text


def stage1_evidence(src: RunSource, shown: set[str]) -> Section | None:
    data = stage1_readouts(src)
    rows = [(r, r.evidence) for r in (data.rows if data is not None else []) if r.evidence is not None]
    if data is None or not rows:
        return None
    from labconsole.engine.stage1.evidence_stats import verdict_line

    groups = list(data.group_names)
    minority = list(data.minority_groups)
    section = Section("Stage I evidence: controls, significance, signature, flipped examples", anchor="evidence")
    first_row, first = rows[0]
    section.add(
        Text(
            f"Each cell: the critical set's Δ (pp) [its {first_row.control_kind} control's "
            f"mean ± sd over {first.draws} draws] and the empirical one-sided p = (1 + number of draws "
            "at least as low) / (draws + 1). A layer-matched draw takes as many neurons from each layer as the "
            "critical set. The signature row is Δtrain − Δtest: negative when train accuracy drops more than test "
            "(Paper A's memorization claim); its control and p come from the same draws.",
            kind="p",
        )
    )
    table_rows: list[list[str]] = []
    breaks: list[int] = []
    verdicts: list[str] = []
    for row, found in rows:
        label = f"{row.label} {row.mode}".strip()
        if table_rows:
            breaks.append(len(table_rows))
        for i, (split, crit) in enumerate(found.critical.items()):
            per = row.control_split(split)
            cells = [
                _cell(
                    crit.get(g),
                    per.delta_pp.get(g) if per is not None else None,
                    per.spread_pp.get(g) if per is not None else None,
                    found.p[split].get(g),
                )
                for g in groups
            ]
            table_rows.append([label if i == 0 else "", split, *cells])
        sig = found.signature
        if sig is not None:
            table_rows.append(
                [
                    "",
                    "train − test",
                    *(
                        _cell(
                            sig.critical_pp.get(g),
                            sig.control_mean_pp.get(g),
                            sig.control_sd_pp.get(g),
                            sig.p.get(g),
                        )
                        for g in groups
                    ),
                ]
            )
            line = verdict_line(sig, groups, label)
            if line:
                verdicts.append(line)
    section.add(
        Table(
            columns=["readout", "split", *groups],
            rows=table_rows,
            title="critical Δ vs control, p per group",
            section_breaks=tuple(breaks),
        )
    )
    for line in verdicts:
        section.add(Text(line, kind="note"))
    section.blocks.extend(_flip_blocks(src, rows, groups, minority, shown))
    return section


def _flip_blocks(
    src: RunSource,
    rows: list[tuple[ReadoutRow, Evidence]],
    groups: list[str],
    minority: list[str],
    shown: set[str],
) -> list[Table | Figure | Text]:
    blocks: list[Table | Figure | Text] = []
    counts = []
    for row, found in rows:
        for split, per in found.flips.items():
            counts.append(
                [
                    row.label,
                    split,
                    *(f"{per[g].n_to_wrong} / {per[g].n_to_right}" if g in per else "—" for g in groups),
                ]
            )
    if counts:
        blocks.append(
            Table(
                columns=["readout", "split", *groups],
                rows=counts,
                title="flipped examples: right → wrong / wrong → right",
            )
        )
    for n, (row, found) in enumerate(rows):
        train = found.flips.get("train", {})
        listed = []
        for g in minority:
            flip = train.get(g)
            if flip is None:
                continue
            for position, loss, margin in list(zip(flip.to_wrong, flip.to_wrong_loss, flip.to_wrong_margin))[
                :FLIPS_LISTED
            ]:
                listed.append(
                    [g, position, "right → wrong", f"{loss:.3f}", f"{margin:+.3f}", _num(flip.group_mean_loss)]
                )
        if listed:
            blocks.append(
                Table(
                    columns=["group", "train position", "flip", "ERM loss", "ERM margin", "group mean loss"],
                    rows=listed,
                    title=f"flipped minority training examples — {row.label}",
                    caption="loss and margin of the unmodified model: low loss with a flip means an example "
                    "the model had fit, now lost (a memorized one if test accuracy holds)",
                )
            )
        thumbs = src.path / "artifacts" / "flips" / f"readout-{n:03d}.png"
        if thumbs.exists():
            shown.add(thumbs.name)
            blocks.append(
                Figure(
                    thumbs.read_bytes(),
                    f"flipped minority training images — {row.label}",
                    "right → wrong after the intervention; one row per minority group",
                    source=str(thumbs.relative_to(src.path)),
                )
            )
    return blocks


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


# -- Stage II --------------------------------------------------------------------------------------


def stage2_evidence(src: RunSource) -> Section | None:
    record = src.summary.finetune
    if record is None:
        return None
    history = record.history
    if not history and not record.warning:
        return None
    section = Section("Fine-tuning against its start (epoch 0)", anchor="finetune-start")
    if record.warning:
        section.add(Text(record.warning, kind="warning"))
    elif record.beat_start_on_val is True:
        section.add(Text("fine-tuning beat its start on val at some epoch", kind="note"))
    if record.mask_realised:
        section.add(Text(f"auxiliary mask: {record.mask_realised}", kind="p"))
    control = record.control
    if control is not None:
        diff = record.method_minus_control
        rows = [
            ["ERM (start)", *(pct(record.wga_before.get(s)) for s in ("val", "test"))],
            ["Stage II recipe", *(pct(record.wga_after.get(s)) for s in ("val", "test"))],
            ["continued ERM (control)", *(pct(control.wga_after.get(s)) for s in ("val", "test"))],
            [
                "method − control (pp)",
                *("—" if (d := diff.get(s)) is None else f"{100 * d:+.1f}" for s in ("val", "test")),
            ],
        ]
        section.add(
            Table(
                columns=["", "val WGA (%)", "test WGA (%)"],
                rows=rows,
                title="the recipe against continued ERM from the same start",
                caption=control.method,
            )
        )
    if any("val_wga" in h.model_fields_set for h in history):
        selected = record.selection.epoch if record.selection is not None else None
        section.add(
            Table(
                columns=["epoch", "train loss", "val WGA (%)", "test WGA (%)", ""],
                rows=[
                    [
                        h.epoch,
                        "—" if h.train_loss is None else f"{h.train_loss:.4f}",
                        pct(h.val_wga),
                        pct(h.test_wga),
                        ("start" if h.epoch == 0 else "") + (" ★ selected" if h.epoch == selected else ""),
                    ]
                    for h in history
                ],
                title="fine-tuning curve, the starting model as epoch 0",
            )
        )
    return section


# -- sweeps: each recipe against its continued-ERM control, paired by seed -------------------------

CONTROL_RECIPE = "continued-erm"


def control_for(recipe: str, recipes: set[str]) -> str | None:
    """``bn-frozen`` → ``continued-erm-bn-frozen`` when that recipe exists, else ``continued-erm``."""
    if recipe.startswith(CONTROL_RECIPE):
        return None
    own = f"{CONTROL_RECIPE}-{recipe}"
    if own in recipes:
        return own
    return CONTROL_RECIPE if CONTROL_RECIPE in recipes else None


def recipes_vs_control(src: SweepSource) -> Section | None:
    """Test WGA of every recipe minus its control's, paired by seed: mean ± s.e. and a one-sided
    paired t-test over seeds (H1: the recipe is worse), read from each run's summary."""
    from labconsole.engine.stage1.evidence_stats import paired_over_seeds

    wga: dict[str, dict[int, float]] = {}
    for point, _, run in src.runs:
        recipe = point.get("recipe")
        finetune = run.summary.finetune if run is not None and run.is_done else None
        value = finetune.wga_after.get("test") if finetune is not None else None
        if isinstance(recipe, str) and isinstance(value, (int, float)):
            wga.setdefault(recipe, {})[int(point.get("seed") or 0)] = float(value)
    recipes = set(wga)
    rows = []
    for recipe in [r for r in src.index.axes.get("recipe", []) if isinstance(r, str) and r in recipes]:
        control = control_for(recipe, recipes)
        if control is None:
            continue
        seeds = sorted(set(wga[recipe]) & set(wga[control]))
        if not seeds:
            continue
        test = paired_over_seeds([100 * wga[recipe][s] for s in seeds], [100 * wga[control][s] for s in seeds])
        mean, se, p = test["mean_pp"], test["se_pp"], test["p_one_sided"]
        rows.append(
            [
                recipe,
                control,
                pct(sum(wga[recipe][s] for s in seeds) / len(seeds)),
                pct(sum(wga[control][s] for s in seeds) / len(seeds)),
                "—" if mean is None else f"{mean:+.1f}" + ("" if se is None else f" ± {se:.1f}"),
                "—" if p is None else f"{p:.3f}",
                len(seeds),
            ]
        )
    if not rows:
        return None
    section = Section("Each recipe against continued ERM (paired by seed)", anchor="recipes-vs-control")
    section.add(
        Table(
            columns=["recipe", "control", "test WGA (%)", "control (%)", "recipe − control (pp)", "p (worse)", "n"],
            rows=rows,
            title="test WGA: recipe − control, mean ± s.e. over seeds",
            caption="one-sided paired t-test over seeds; p (worse) small = the recipe lowers test WGA "
            "against continued ERM from the same start",
        )
    )
    return section
