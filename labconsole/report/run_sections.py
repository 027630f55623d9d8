"""Sections of a single run's report: header, per-group tables, curves, published numbers,
configuration and definitions. Stage-specific sections live in ``stage_sections``."""

from __future__ import annotations

from typing import Any

from labconsole.engine.sweep import flatten_numbers
from labconsole.report import plots, reference
from labconsole.report.doc import Figure, Section, Table, Text, is_number, num, pct, pp
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
        error = f": {m['error']}" if m.get("error") else ""
        section.add(
            Text(
                f"This run is INCOMPLETE (status: {status}{error}). It has no `done` file; the numbers "
                "below are what it had written so far.",
                kind="warning",
            )
        )
    for problem in src.problems:
        section.add(Text(problem, kind="warning"))
    executed = m.get("executor") or {}
    rows = [
        ["preset", str(m.get("preset") or cfg.get("name") or "?")],
        ["description", str(cfg.get("description") or "")],
        ["reproduces", str(m.get("reproduces") or cfg.get("reproduces") or "—")],
        ["variant", str(m.get("variant") or cfg.get("variant") or "?")],
        ["stages", ", ".join(m.get("stages") or cfg.get("stages") or [])],
        ["stages done", ", ".join(m.get("stages_done") or []) or "—"],
        ["status", status],
        ["seed", str(m.get("seed", cfg.get("seed", "?")))],
        ["smoke profile", str(m.get("smoke", cfg.get("smoke_profile", False)))],
        ["device", str(m.get("device", "?"))],
        ["host", str(executed.get("host") or m.get("host", "?"))],
        ["executor", _executor_text(executed)],
        ["started / finished", f"{m.get('created', '?')} / {m.get('finished', '—')}"],
        ["versions", ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items())],
        ["git", str(m.get("git") or "—")],
        ["directory", str(src.path)],
    ]
    section.add(Table(columns=["", ""], rows=[r for r in rows if r[1]], title="run"))
    return section


def _executor_text(executed: dict[str, Any]) -> str:
    if not executed:
        return "local (in-process)"
    parts = [str(executed.get("kind", "?"))]
    for key in ("cuda_visible_devices", "slurm_job_id", "partition"):
        if executed.get(key):
            parts.append(f"{key}={executed[key]}")
    return ", ".join(parts)


def group_table(splits: dict[str, Any], title: str, selection: dict[str, Any] | None = None) -> Table | None:
    """Groups × splits accuracy (%) with the named means and the WGA quantum under them."""
    if not isinstance(splits, dict) or not splits:
        return None
    names = [s for s in SPLIT_ORDER if s in splits] + [s for s in splits if s not in SPLIT_ORDER]
    groups: list[str] = []
    for split in names:
        for group in (splits[split] or {}).get("groups") or {}:
            if group not in groups:
                groups.append(group)
    rows: list[list[str]] = []
    for group in groups:
        row = [group]
        for split in names:
            data = splits[split] or {}
            acc = (data.get("groups") or {}).get(group)
            count = (data.get("group_counts") or {}).get(group)
            row.append(pct(acc) + (f" (n={count})" if count is not None else ""))
        rows.append(row)
    breaks = (len(rows),)
    for metric in SPLIT_METRICS:
        rows.append([metric] + [pct((splits[s] or {}).get(metric)) for s in names])
    rows.append(["worst group"] + [str((splits[s] or {}).get("worst_group", "—")) for s in names])
    rows.append(["WGA quantum (pp)"] + [pct((splits[s] or {}).get("wga_quantum"), 2) for s in names])
    caption = ""
    if selection:
        caption = f"selection: {selection.get('rule', '?')} → epoch {selection.get('epoch', '?')}"
    return Table(columns=["group"] + names, rows=rows, title=title, caption=caption, section_breaks=breaks)


def results(src: RunSource) -> list[Section]:
    s = src.summary
    out: list[Section] = []
    main = Section("Per-group accuracy (%)", anchor="groups")
    main.add(group_table(s.get("splits") or {}, "ERM, selected epoch", s.get("selection")))
    model = s.get("model") if isinstance(s.get("model"), dict) else {}
    if not s.get("splits") and model.get("splits"):
        main.add(group_table(model["splits"], f"model under study ({model.get('source', '?')})"))
    finetune = s.get("finetune") if isinstance(s.get("finetune"), dict) else {}
    if finetune.get("before"):
        main.add(group_table((finetune["before"] or {}).get("splits") or {}, "before fine-tuning"))
    if finetune.get("splits"):
        main.add(group_table(finetune["splits"], "after fine-tuning, selected epoch", finetune.get("selection")))
    if not main.blocks:
        main.add(
            Text(
                "No per-group accuracies were recorded (the run stopped before its first evaluation, "
                "or its stages report other measures).",
                kind="note",
            )
        )
    out.append(main)
    return out


def main_table(src: RunSource) -> Table | None:
    s = src.summary
    finetune = s.get("finetune") if isinstance(s.get("finetune"), dict) else {}
    model = s.get("model") if isinstance(s.get("model"), dict) else {}
    for splits, title, selection in (
        (finetune.get("splits"), "after fine-tuning", finetune.get("selection")),
        (s.get("splits"), "selected epoch", s.get("selection")),
        (model.get("splits"), "model under study", None),
    ):
        if splits:
            return group_table(splits, f"{src.preset_name}: per-group accuracy (%), {title}", selection)
    return None


def curves(src: RunSource) -> Section:
    """WGA over epochs, one figure (and a compact table) per stage that emitted EpochResult."""
    section = Section("Curves over epochs", anchor="curves")
    by_stage: dict[str, dict[int, dict[str, Any]]] = {}
    for event in src.events:
        if event.get("type") == "EpochResult" and isinstance(event.get("splits"), dict):
            by_stage.setdefault(str(event.get("stage", "?")), {})[int(event.get("epoch", 0))] = event
    for stage, per_epoch in by_stage.items():
        epochs = sorted(per_epoch)
        events = [per_epoch[e] for e in epochs]
        splits = [sp for sp in SPLIT_ORDER if any(sp in ev["splits"] for ev in events)]
        wga = {sp: [(ev["splits"].get(sp) or {}).get("wga") for ev in events] for sp in splits}
        mean = {sp: [(ev["splits"].get(sp) or {}).get("mean") for ev in events] for sp in splits}
        loss = [ev.get("train_loss") for ev in events]
        best = next((ev.get("best_epoch") for ev in reversed(events) if ev.get("best_epoch") is not None), None)
        section.add(
            Figure(
                plots.epoch_curves(stage, epochs, wga, mean, loss, best),
                title=f"{stage}: WGA over epochs",
                caption=f"solid: worst-group accuracy; dashed: mean accuracy; selection: "
                f"{events[-1].get('selection', '?')}",
            )
        )
        rows = [
            [str(e), num(ev.get("train_loss")), num(ev.get("lr"))]
            + [pct((ev["splits"].get(sp) or {}).get("wga")) for sp in splits]
            + ["★" if ev.get("is_best") else ""]
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


def published(src: RunSource) -> Section:
    section = Section("Published numbers beside ours", anchor="reference")
    ref = src.reference
    if not ref:
        return section
    flat = flatten_numbers(src.summary)
    quanta = {sp: (data or {}).get("wga_quantum") for sp, data in reference._splits(src.summary).items()}
    for label, rows, options in reference.tables(ref):
        scale = table_scale = reference.table_scale(label, rows, options)
        take_abs = reference.absolute(label)
        body, breaks, emphasis = [], [], {}
        for row, cols in rows.items():
            breaks.append(len(body))
            for col, paper in cols.items():
                ours, where = reference.resolve_run(src.summary, flat, label, row, col, options)
                if ours is not None and take_abs:
                    ours = abs(ours)
                paper_pc = paper * scale
                diff = ours - paper_pc if ours is not None else None
                if diff is not None and abs(diff) >= 5:
                    emphasis[(len(body), 4)] = "large"
                body.append([row, col, pp(paper_pc, 2, signed=False), pp(ours, 2, signed=False), pp(diff, 2), where])
        quantum = ", ".join(f"{sp} {pct(q, 2)} pp" for sp, q in quanta.items() if is_number(q))
        caption = (
            "values in % / pp"
            + (" (paper fractions × 100)" if table_scale == 100.0 else "")
            + ("; magnitudes compared (|change|)" if take_abs else "")
            + (f"; WGA quantum of our splits: {quantum}" if quantum else "")
        )
        section.add(
            Table(
                columns=["row", "column", "paper", "ours", "ours − paper", "ours from"],
                rows=body,
                title=label,
                caption=caption,
                section_breaks=tuple(breaks[1:]),
                emphasis=emphasis,
            )
        )
    return section


def definitions(src: RunSource) -> Section:
    m = src.manifest
    section = Section("Configuration, dataset check and definitions", anchor="config")
    defs = m.get("metric_definitions") or {}
    if defs:
        section.add(
            Table(
                columns=["metric", "definition"],
                rows=[[k, str(v)] for k, v in defs.items()],
                title="metric definitions",
            )
        )
    section.add(Text(f"Model selection rule: {m.get('selection_rule', 'not recorded')}.", kind="p"))
    section.add(_dataset_check(m))
    if src.config_text:
        section.add(Text(src.config_text, kind="details-code", title="resolved config.toml"))
    return section


def _dataset_check(m: dict[str, Any]) -> Table | Text | None:
    check = m.get("dataset_check")
    dataset = m.get("dataset") or {}
    if not isinstance(check, dict):
        return Text("No dataset check recorded (the run stopped before its data were loaded).", kind="note")
    title = f"dataset check: {dataset.get('name', check.get('dataset', '?'))} ({check.get('layout', dataset.get('layout', '?'))})"
    rows: list[list[str]] = []
    splits = check.get("splits")
    if isinstance(splits, dict) and splits:  # real datasets: found vs published per group
        for split, data in splits.items():
            for g in (data or {}).get("groups") or []:
                diff = g.get("difference")
                rows.append(
                    [
                        split,
                        str(g.get("group")),
                        str(g.get("found")),
                        str(g.get("expected")),
                        "ok" if diff == 0 else f"{diff:+d}" if isinstance(diff, int) else "?",
                    ]
                )
        caption = str(check.get("verdict") or "")
        if check.get("max_per_split"):
            caption += f"; capped at {check['max_per_split']} per split, used: {check.get('used_counts')}"
        return Table(
            columns=["split", "group", "found", "published", "difference"], rows=rows, title=title, caption=caption
        )
    counts = check.get("counts") or {}
    known = KNOWN_COUNTS.get(str(dataset.get("name", "")).lower(), {})
    for split, found in counts.items():
        expected = known.get(split)
        verdict = (
            "—" if expected is None else ("matches SPEC §1" if list(found) == expected else f"expected {expected}")
        )
        rows.append([split, ", ".join(str(c) for c in found) if isinstance(found, list) else str(found), verdict])
    return Table(
        columns=["split", "group counts (g = 0…)", "check"],
        rows=rows,
        title=title,
        caption="embedded data: no published counts to compare with" if not known else "",
    )
