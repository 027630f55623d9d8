"""Sections of a sweep's report: the aggregated table (mean ± s.e., n) with the paper's column,
a bar plot, the published numbers, every run's status, and all aggregated numbers."""

from __future__ import annotations

import math
from typing import Any

from labconsole.report import plots, reference
from labconsole.report.doc import Figure, Section, Table, Text, is_number, mean_se_text, num, pct, pp
from labconsole.report.source import SweepSource

# (label, metric) in order of preference; the first one present is the sweep's main measure.
KEY_METRICS = (
    ("test WGA after fine-tuning (%)", "finetune.wga_after.test"),
    ("test WGA before fine-tuning (%)", "finetune.wga_before.test"),
    ("test WGA (%)", "splits.test.wga"),
    ("test WGA (%)", "model.splits.test.wga"),
    ("test mean (%)", "splits.test.mean"),
    ("val WGA (%)", "splits.val.wga"),
)
MAX_ALL_ROWS = 150


def combo_label(point: dict[str, Any]) -> str:
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in point.items()) or "(all runs)"


def key_metrics(combos: list[dict[str, Any]]) -> list[tuple[str, str]]:
    present = {name for c in combos for name, s in (c.get("metrics") or {}).items() if (s or {}).get("n")}
    chosen, seen = [], set()
    for label, metric in KEY_METRICS:
        if metric in present and label not in seen:
            chosen.append((label, metric))
            seen.add(label)
    if not chosen:  # a sweep of some other stage: its first few numbers
        names = sorted(present)[:4]
        chosen = [(n, n) for n in names]
    return chosen


def _scale(metric: str) -> float:
    return (
        1.0
        if "_pp" in metric
        or not (metric.endswith("wga") or ".wga" in metric or "mean" in metric or ".groups." in metric)
        else 100.0
    )


def paper_value(
    ref: dict[str, Any], point: dict[str, Any], metric: str, backbone: str = ""
) -> tuple[float | None, str]:
    """The published number for this combination and measure, in %, and where it is from."""
    wanted = {base for base, names in reference.METRIC_ALIASES.items() if metric in names}
    cells = reference.cells_for_point(ref, point, reference.backbone_key(backbone), wanted)
    return (cells[0][1], f"{cells[0][2]}: {cells[0][3]}") if cells else (None, "")


def main_table(src: SweepSource) -> Table | None:
    combos = src.aggregate.get("combinations") or []
    if not combos:
        return None
    metrics = key_metrics(combos)
    if not metrics:
        return None
    main_label, main_metric = metrics[0]
    factor = _scale(main_metric)
    axes = list((src.index.get("axes") or {}).keys()) or sorted({k for c in combos for k in (c.get("point") or {})})
    ref = src.reference
    columns = [a.split(".")[-1] for a in axes] + [f"ours: {main_label} mean ± s.e. (n)", "paper", "ours − paper"]
    columns += [f"{label} mean ± s.e. (n)" for label, _ in metrics[1:]] + ["runs done / planned"]
    rows, emphasis = [], {}
    for combo in combos:
        point = combo.get("point") or {}
        stats = (combo.get("metrics") or {}).get(main_metric)
        paper, _ = paper_value(ref, point, main_metric, src.backbone)
        mean = stats.get("mean") * factor if stats and is_number(stats.get("mean")) else None
        diff = mean - paper if mean is not None and paper is not None else None
        planned = len(combo.get("runs") or []) + len(combo.get("incomplete") or [])
        row = [str(point.get(a, "")) for a in axes] + [
            mean_se_text(stats, factor),
            pp(paper, 1, signed=False),
            pp(diff, 1),
        ]
        row += [mean_se_text((combo.get("metrics") or {}).get(m), _scale(m)) for _, m in metrics[1:]]
        row.append(f"{len(combo.get('runs') or [])} / {planned}")
        if combo.get("incomplete"):
            emphasis[(len(rows), len(row) - 1)] = "large"
        rows.append(row)
    erm = _erm_row(src, axes, metrics)
    if erm is not None:
        rows.append(erm)
    caption = (
        "mean ± standard error over seeds, n = finished runs; paper = the preset's [reference] numbers "
        "(SPEC §4–5), shown in %; standard deviations are in the published-numbers section"
    )
    return Table(
        columns=columns,
        rows=rows,
        title=f"{src.preset_name}: aggregated over seeds",
        caption=caption,
        section_breaks=(len(combos),) if erm else (),
        emphasis=emphasis,
    )


def _erm_row(src: SweepSource, axes: list[str], metrics: list[tuple[str, str]]) -> list[str] | None:
    """ERM before fine-tuning, one value per seed (all combinations of a seed share it)."""
    if not any(m == "finetune.wga_before.test" for _, m in metrics):
        return None
    per_seed: dict[Any, list[float]] = {}
    for point, _, run in src.runs:
        if run is None or not run.is_done:
            continue
        value = ((run.summary.get("finetune") or {}).get("wga_before") or {}).get("test")
        if is_number(value):
            per_seed.setdefault(point.get("seed"), []).append(value)
    values = [sum(v) / len(v) for v in per_seed.values()]
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    se = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n) if n > 1 else None
    paper, _ = _erm_paper(src.reference, src.backbone)
    row = ["ERM (before fine-tuning)"] + [""] * (len(axes) - 1) if axes else ["ERM (before fine-tuning)"]
    ours = mean_se_text({"mean": mean, "se": se, "n": n}, 100.0)
    row += [ours, pp(paper, 1, signed=False), pp(100 * mean - paper if paper is not None else None, 1)]
    row += ["—"] * (len(metrics) - 1) + [f"{n} seed(s)"]
    return row


def _erm_paper(ref: dict[str, Any], backbone: str) -> tuple[float | None, str]:
    """ERM's published WGA: a row called ERM, or (Table 12) an ERM column in our backbone's row."""
    ours = reference.backbone_key(backbone)
    fallback: tuple[float | None, str] = (None, "")
    for label, rows, options in reference.tables(ref):
        scale = reference.table_scale(label, rows, options)
        for row, cols in rows.items():
            if reference.norm(row) == "erm":
                value = cols.get("wga", cols.get("value"))
                if value is not None:
                    return value * scale, label
            erm = next((v for c, v in cols.items() if reference.norm(c) == "erm"), None)
            if erm is not None:
                if not reference.looks_like_backbone(row) or reference.backbone_key(row) == ours:
                    return erm * scale, f"{label}: {row}"
                if fallback[0] is None:
                    fallback = (erm * scale, f"{label}: {row} (paper backbone)")
    return fallback


def overview(src: SweepSource) -> Section:
    section = Section("Sweep", anchor="sweep")
    index = src.index
    runs = src.runs
    done = sum(1 for _, _, r in runs if r is not None and r.is_done)
    status_counts: dict[str, int] = {}
    for _, _, run in runs:
        key = "missing" if run is None else run.status
        status_counts[key] = status_counts.get(key, 0) + 1
    for problem in src.problems:
        section.add(Text(problem, kind="warning"))
    if done < len(runs):
        section.add(
            Text(
                f"{len(runs) - done} of {len(runs)} runs are not finished "
                f"({', '.join(f'{k}: {v}' for k, v in status_counts.items() if k != 'done')}); "
                "aggregates use the finished runs only. Resume with "
                f"`labconsole run PRESET --resume {src.path}`.",
                kind="warning",
            )
        )
    rows = [
        ["preset", src.preset_name],
        ["reproduces", str(index.get("reproduces") or "—")],
        ["variant", str(index.get("variant") or "?")],
        ["axes", "; ".join(f"{k} ∈ {v}" for k, v in (index.get("axes") or {}).items()) or "—"],
        ["seeds", ", ".join(str(s) for s in index.get("seeds") or []) or "—"],
        ["runs", f"{done} done of {len(runs)}"],
        ["executor", str((index.get("executor") or {}).get("kind", "local"))],
        ["directory", str(src.path)],
    ]
    section.add(Table(columns=["", ""], rows=rows, title="sweep"))
    return section


def aggregated(src: SweepSource) -> Section:
    section = Section("Aggregated results (mean ± s.e. over seeds)", anchor="aggregate")
    table = main_table(src)
    if table is None:
        section.add(Text("No finished run has numbers to aggregate yet.", kind="note"))
        return section
    section.add(table)
    combos = src.aggregate.get("combinations") or []
    label, metric = key_metrics(combos)[0]
    factor = _scale(metric)
    means = [((c.get("metrics") or {}).get(metric) or {}).get("mean") for c in combos]
    ses = [((c.get("metrics") or {}).get(metric) or {}).get("se") for c in combos]
    paper = [paper_value(src.reference, c.get("point") or {}, metric, src.backbone)[0] for c in combos]
    section.add(
        Figure(
            plots.error_bars(
                [combo_label(c.get("point") or {}) for c in combos],
                [m * factor if is_number(m) else None for m in means],
                [s * factor if is_number(s) else None for s in ses],
                ylabel=label,
                title=f"{src.preset_name}: {label}",
                paper=paper,
            ),
            title=f"{label} per combination",
            caption="bars: mean ± s.e. over seeds; diamonds: paper",
        )
    )
    return section


def published(src: SweepSource) -> Section:
    section = Section("Published numbers beside ours", anchor="reference")
    combos = src.aggregate.get("combinations") or []
    for label, rows, options in reference.tables(src.reference):
        scale = reference.table_scale(label, rows, options)
        body = []
        for row, cols in rows.items():
            for col, paper in cols.items():
                stats, where = reference.resolve_sweep(combos, label, row, col, options, src.backbone)
                mean = (stats or {}).get("mean")
                diff = mean - paper * scale if is_number(mean) else None
                body.append(
                    [
                        row,
                        col,
                        pp(paper * scale, 2, signed=False),
                        mean_se_text(stats, 1.0, 2) if stats else "—",
                        pp(diff, 2),
                        where,
                    ]
                )
        section.add(
            Table(
                columns=["row", "column", "paper", "ours (mean ± s.e., n)", "ours − paper", "ours from"],
                rows=body,
                title=label,
                caption="values in % / pp",
            )
        )
    return section


def runs_table(src: SweepSource) -> Section:
    section = Section("Runs", anchor="runs")
    combos = src.aggregate.get("combinations") or []
    metric = key_metrics(combos)[0][1] if combos and key_metrics(combos) else "splits.test.wga"
    rows, emphasis = [], {}
    from labconsole.engine.sweep import flatten_numbers

    for point, folder, run in src.runs:
        status = "missing" if run is None else run.status
        value = flatten_numbers(run.summary).get(metric) if run is not None else None
        error = (run.manifest.get("error") if run is not None else "") or ""
        where = (run.manifest.get("executor") or {}).get("kind", "") if run is not None else ""
        if status != "done":
            emphasis[(len(rows), 2)] = "large"
        rows.append(
            [
                folder,
                str(point.get("seed", "")),
                status,
                pct(value) if _scale(metric) == 100 else num(value),
                where,
                error[:160],
            ]
        )
    section.add(
        Table(
            columns=["run folder", "seed", "status", metric, "ran on", "error"],
            rows=rows,
            title="every run of the sweep",
            caption="each finished run has its own report.html in its folder",
            emphasis=emphasis,
        )
    )
    return section


def all_numbers(src: SweepSource) -> Section:
    section = Section("All aggregated numbers", anchor="all")
    combos = src.aggregate.get("combinations") or []
    names: list[str] = []
    for combo in combos:
        for name in combo.get("metrics") or {}:
            if name not in names:
                names.append(name)
    if not names:
        return section
    rows = [
        [name] + [mean_se_text((c.get("metrics") or {}).get(name), 1.0, 4) for c in combos]
        for name in names[:MAX_ALL_ROWS]
    ]
    caption = "raw stored values (fractions are not scaled)"
    if len(names) > MAX_ALL_ROWS:
        caption += f"; first {MAX_ALL_ROWS} of {len(names)} numbers, all of them are in aggregate.json"
    section.add(
        Table(
            columns=["number"] + [combo_label(c.get("point") or {}) for c in combos],
            rows=rows,
            title="mean ± s.e. (n) of every number in the runs' summary.json",
            caption=caption,
        )
    )
    return section
