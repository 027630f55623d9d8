"""Sections of a single run's report: header, per-group tables, curves, published numbers,
configuration and definitions. Stage-specific sections live in ``stage_sections``."""

from __future__ import annotations

from labconsole.engine.records import DatasetInfo, EpochRecord, ExecutorInfo, Manifest, Selection, Splits
from labconsole.report import plots, reference
from labconsole.report.doc import MISSING, Figure, Section, Table, Text, is_number, num, pct, pp
from labconsole.report.source import RunSource

SPLIT_ORDER = ("train", "val", "test")
SPLIT_METRICS = ("wga", "mean", "mean_train_weighted", "mean_groups")
KNOWN_COUNTS = {  # SPEC §1; the dataset check compares the found group counts with these
    "waterbirds": {"train": [3498, 184, 56, 1057], "val": [467, 466, 133, 133], "test": [2255, 2255, 642, 642]},
    "celeba": {"train": [71629, 66874, 22880, 1387], "val": [8535, 8276, 2874, 182], "test": [9767, 7535, 2480, 180]},
}


def header(src: RunSource) -> Section:
    m, cfg = src.manifest, src.config
    section = Section("Run", anchor="run")
    status = src.status
    if status != "done":
        error = f": {m.error}" if m.error else ""
        section.add(
            Text(
                f"This run is INCOMPLETE (status: {status}{error}). It has no `done` file; the numbers "
                "below are what it had written so far.",
                kind="warning",
            )
        )
    for problem in src.problems:
        section.add(Text(problem, kind="warning"))
    executed = m.executor
    rows = [
        ["preset", src.preset_name],
        ["description", cfg.description if cfg else ""],
        ["reproduces", m.reproduces or (cfg.reproduces if cfg else "") or MISSING],
        ["variant", m.variant or (cfg.variant if cfg else "?")],
        ["stages", ", ".join(m.stages or (list(cfg.stages) if cfg else []))],
        ["stages done", ", ".join(m.stages_done) or MISSING],
        ["status", status],
        ["seed", str(m.seed)],
        ["smoke profile", str(m.smoke)],
        ["device", m.device or "?"],
        ["host", (executed.host if executed else None) or m.host or "?"],
        ["executor", _executor_text(executed)],
        ["started / finished", f"{m.created or '?'} / {m.finished or '—'}"],
        ["versions", ", ".join(f"{k} {v}" for k, v in m.versions.items())],
        ["git", m.git or MISSING],
        ["directory", str(src.path)],
    ]
    section.add(Table(columns=["", ""], rows=[r for r in rows if r[1]], title="run"))
    return section


def _executor_text(executed: ExecutorInfo | None) -> str:
    if executed is None:
        return "local (in-process)"
    parts = [executed.kind]
    for key, value in (
        ("cuda_visible_devices", executed.cuda_visible_devices),
        ("slurm_job_id", executed.slurm_job_id),
        ("partition", executed.partition),
    ):
        if value:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def group_table(splits: Splits, title: str, selection: Selection | None = None) -> Table | None:
    """Groups × splits accuracy (%) with the named means and the WGA quantum under them."""
    if not splits:
        return None
    names = [s for s in SPLIT_ORDER if s in splits] + [s for s in splits if s not in SPLIT_ORDER]
    groups: list[str] = []
    for split in names:
        for group in splits[split].groups:
            if group not in groups:
                groups.append(group)
    rows: list[list[str]] = []
    for group in groups:
        row = [group]
        for split in names:
            count = splits[split].group_counts.get(group)
            row.append(pct(splits[split].groups.get(group)) + (f" (n={count})" if count is not None else ""))
        rows.append(row)
    breaks = (len(rows),)
    for metric in SPLIT_METRICS:
        rows.append([metric] + [pct(getattr(splits[s], metric)) for s in names])
    rows.append(["worst group"] + [splits[s].worst_group or MISSING for s in names])
    rows.append(["WGA quantum (pp)"] + [pct(splits[s].wga_quantum, 2) for s in names])
    caption = ""
    if selection is not None:
        epoch = "?" if selection.epoch is None and not selection.rule else selection.epoch
        caption = f"selection: {selection.rule or '?'} → epoch {epoch}"
    return Table(columns=["group"] + names, rows=rows, title=title, caption=caption, section_breaks=breaks)


def results(src: RunSource) -> list[Section]:
    s = src.summary
    main = Section("Per-group accuracy (%)", anchor="groups")
    main.add(group_table(s.splits, "ERM, selected epoch", s.selection))
    if not s.splits and s.model is not None and s.model.splits:
        main.add(group_table(s.model.splits, f"model under study ({s.model.source or '?'})"))
    finetune = s.finetune
    if finetune is not None and finetune.before is not None:
        main.add(group_table(finetune.before.splits, "before fine-tuning"))
    if finetune is not None and finetune.splits:
        main.add(group_table(finetune.splits, "after fine-tuning, selected epoch", finetune.selection))
    if not main.blocks:
        main.add(
            Text(
                "No per-group accuracies were recorded (the run stopped before its first evaluation, "
                "or its stages report other measures).",
                kind="note",
            )
        )
    return [main]


def main_table(src: RunSource) -> Table | None:
    splits, title, selection = src.summary.final_splits()
    if not splits:
        return None
    return group_table(splits, f"{src.preset_name}: per-group accuracy (%), {title}", selection)


def curves(src: RunSource) -> Section:
    """WGA over epochs, one figure (and a compact table) per stage that emitted EpochResult."""
    section = Section("Curves over epochs", anchor="curves")
    by_stage: dict[str, dict[int, EpochRecord]] = {}
    for event in src.epochs:
        by_stage.setdefault(event.stage, {})[event.epoch] = event
    for stage, per_epoch in by_stage.items():
        epochs = sorted(per_epoch)
        events = [per_epoch[e] for e in epochs]
        splits = [sp for sp in SPLIT_ORDER if any(sp in ev.splits for ev in events)]
        wga = {sp: [_metric(ev, sp, "wga") for ev in events] for sp in splits}
        mean = {sp: [_metric(ev, sp, "mean") for ev in events] for sp in splits}
        loss = [ev.train_loss for ev in events]
        best = next((ev.best_epoch for ev in reversed(events) if ev.best_epoch is not None), None)
        section.add(
            Figure(
                plots.epoch_curves(stage, epochs, wga, mean, loss, best),
                title=f"{stage}: WGA over epochs",
                caption=f"solid: worst-group accuracy; dashed: mean accuracy; selection: {events[-1].selection or '?'}",
            )
        )
        rows = [
            [str(e), num(ev.train_loss), num(ev.lr)]
            + [pct(_metric(ev, sp, "wga")) for sp in splits]
            + ["★" if ev.is_best else ""]
            for e, ev in zip(epochs, events)
        ]
        section.add(
            Table(
                columns=["epoch", "train loss", "lr"] + [f"{sp} WGA" for sp in splits] + ["best"],
                rows=rows,
                title=f"{stage}: per-epoch results",
            )
        )
    return section


def _metric(event: EpochRecord, split: str, metric: str) -> float | None:
    metrics = event.splits.get(split)
    value = getattr(metrics, metric) if metrics is not None else None
    return value if isinstance(value, float) else None


def published(src: RunSource) -> Section:
    section = Section("Published numbers beside ours", anchor="reference")
    splits, _, _ = src.summary.final_splits()
    quanta = {sp: m.wga_quantum for sp, m in (src.summary.splits or splits).items()}
    for table in reference.tables(src.reference):
        body: list[list[str]] = []
        breaks: list[int] = []
        emphasis: dict[tuple[int, int], str] = {}
        for row, cols in table.rows.items():
            breaks.append(len(body))
            for col, paper in cols.items():
                ours, where = reference.resolve_run(src.summary, table, row, col)
                if ours is not None and table.absolute:
                    ours = abs(ours)
                paper_pc = paper * table.scale
                diff = ours - paper_pc if ours is not None else None
                if diff is not None and abs(diff) >= 5:
                    emphasis[(len(body), 4)] = "large"
                body.append([row, col, pp(paper_pc, 2, signed=False), pp(ours, 2, signed=False), pp(diff, 2), where])
        quantum = ", ".join(f"{sp} {pct(q, 2)} pp" for sp, q in quanta.items() if is_number(q))
        caption = (
            "values in % / pp"
            + (" (paper fractions × 100)" if table.scale == 100.0 else "")
            + ("; magnitudes compared (|change|)" if table.absolute else "")
            + (f"; WGA quantum of our splits: {quantum}" if quantum else "")
        )
        section.add(
            Table(
                columns=["row", "column", "paper", "ours", "ours − paper", "ours from"],
                rows=body,
                title=table.label,
                caption=caption,
                section_breaks=tuple(breaks[1:]),
                emphasis=emphasis,
            )
        )
    return section


def definitions(src: RunSource) -> Section:
    m = src.manifest
    section = Section("Configuration, dataset check and definitions", anchor="config")
    if m.metric_definitions:
        section.add(
            Table(
                columns=["metric", "definition"],
                rows=[[k, v] for k, v in m.metric_definitions.items()],
                title="metric definitions",
            )
        )
    section.add(Text(f"Model selection rule: {m.selection_rule or 'not recorded'}.", kind="p"))
    section.add(_dataset_check(m))
    if src.config_text:
        section.add(Text(src.config_text, kind="details-code", title="resolved config.toml"))
    return section


def _dataset_check(m: Manifest) -> Table | Text | None:
    check = m.dataset_check
    dataset = m.dataset or DatasetInfo()
    if check is None:
        return Text("No dataset check recorded (the run stopped before its data were loaded).", kind="note")
    title = f"dataset check: {dataset.name or check.dataset or '?'} ({check.layout or dataset.layout or '?'})"
    rows: list[list[str]] = []
    if check.splits:  # real datasets: found vs published per group
        for split, data in check.splits.items():
            for g in data.groups:
                diff = g.difference
                rows.append(
                    [
                        split,
                        g.group,
                        str(g.found),
                        str(g.expected),
                        "ok" if diff == 0 else f"{diff:+d}" if diff is not None else "?",
                    ]
                )
        caption = check.verdict
        if check.max_per_split:
            caption += f"; capped at {check.max_per_split} per split, used: {check.used_counts}"
        return Table(
            columns=["split", "group", "found", "published", "difference"], rows=rows, title=title, caption=caption
        )
    known = KNOWN_COUNTS.get(dataset.name.lower(), {})
    for split, found in check.counts.items():
        expected = known.get(split)
        verdict = (
            MISSING
            if expected is None
            else ("matches SPEC §1" if isinstance(found, list) and found == expected else f"expected {expected}")
        )
        rows.append([split, ", ".join(str(c) for c in found) if isinstance(found, list) else str(found), verdict])
    return Table(
        columns=["split", "group counts (g = 0…)", "check"],
        rows=rows,
        title=title,
        caption="embedded data: no published counts to compare with" if not known else "",
    )
