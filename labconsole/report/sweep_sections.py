"""Sections of a sweep's report: the aggregated table (mean ± s.e., n) with the paper's column,
a bar plot, the published numbers, every run's status, and all aggregated numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping

from pydantic import JsonValue

from labconsole.engine.records import Combination, JsonScalar, MeanSE, Point
from labconsole.report import plots, reference, reference_tables
from labconsole.report.doc import MISSING, Figure, Section, Table, Text, mean_se_text, num, pct, pp
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
ERM_METRIC = "finetune.wga_before.test"  # ERM's test WGA in a fine-tuning sweep


def combo_label(point: Point) -> str:
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in point.items()) or "(all runs)"


def key_metrics(combos: list[Combination]) -> list[tuple[str, str]]:
    present = {name for c in combos for name, s in c.metrics.items() if s.n}
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
    ref: Mapping[str, JsonValue], point: Point, metric: str, backbone: str = ""
) -> tuple[float | None, str]:
    """The published number for this combination and measure, in %, and where it is from."""
    cells = reference.paper_cells(ref, point, metric, backbone)
    return cells[0] if cells else (None, "")


def main_table(src: SweepSource) -> Table | None:
    combos = src.aggregate.combinations
    if not combos:
        return None
    metrics = key_metrics(combos)
    if not metrics:
        return None
    main_label, main_metric = metrics[0]
    factor = _scale(main_metric)
    axes = list(src.index.axes) or sorted({k for c in combos for k in c.point})
    ref = src.reference
    columns = [a.split(".")[-1] for a in axes] + [f"ours: {main_label} mean ± s.e. (n)", "paper", "ours − paper"]
    columns += [f"{label} mean ± s.e. (n)" for label, _ in metrics[1:]] + ["runs done / planned"]
    rows: list[list[str]] = []
    emphasis: dict[tuple[int, int], str] = {}
    for combo in combos:
        stats = combo.metrics.get(main_metric)
        paper, _ = paper_value(ref, combo.point, main_metric, src.backbone)
        mean = stats.mean * factor if stats is not None and stats.mean is not None else None
        diff = mean - paper if mean is not None and paper is not None else None
        planned = len(combo.runs) + len(combo.incomplete)
        row = [str(combo.point.get(a, "")) for a in axes] + [
            mean_se_text(stats, factor),
            pp(paper, 1, signed=False),
            pp(diff, 1),
        ]
        row += [mean_se_text(combo.metrics.get(m), _scale(m)) for _, m in metrics[1:]]
        row.append(f"{len(combo.runs)} / {planned}")
        if combo.incomplete:
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
    if not any(m == ERM_METRIC for _, m in metrics):
        return None
    per_seed: dict[JsonScalar, list[float]] = {}
    for point, _, run in src.runs:
        if run is None or not run.is_done or run.summary.finetune is None:
            continue
        value = run.summary.finetune.wga_before.get("test")
        if value is not None:
            per_seed.setdefault(point.get("seed"), []).append(value)
    values = [sum(v) / len(v) for v in per_seed.values()]
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    se = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n) if n > 1 else None
    paper, _ = _erm_paper(src.reference, src.backbone)
    row = ["ERM (before fine-tuning)"] + [""] * (len(axes) - 1) if axes else ["ERM (before fine-tuning)"]
    ours = mean_se_text(MeanSE(mean=mean, se=se, n=n), 100.0)
    row += [ours, pp(paper, 1, signed=False), pp(100 * mean - paper if paper is not None else None, 1)]
    row += [MISSING] * (len(metrics) - 1) + [f"{n} seed(s)"]
    return row


def _erm_paper(ref: Mapping[str, JsonValue], backbone: str) -> tuple[float | None, str]:
    """ERM's published WGA: the cell whose metric path is ERM's (WGA before fine-tuning), the
    one about our backbone first."""
    found: list[tuple[int, float, str]] = []
    for table in reference.tables(ref):
        for row, cols in table.rows.items():
            for col, value in cols.items():
                path = table.path(row, col)
                try:
                    if not path or reference.aggregate_name(path) != ERM_METRIC:
                        continue
                except ValueError:
                    continue
                other = bool(reference.backbone_note(table, row, backbone))
                found.append((int(other), value * table.scale, f"{table.label}: {row}"))
    found.sort(key=lambda item: item[0])
    return (found[0][1], found[0][2]) if found else (None, "")


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
        ["reproduces", index.reproduces or MISSING],
        ["variant", index.variant or "?"],
        ["axes", "; ".join(f"{k} ∈ {v}" for k, v in index.axes.items()) or MISSING],
        ["seeds", ", ".join(str(s) for s in index.seeds) or MISSING],
        ["runs", f"{done} done of {len(runs)}"],
        ["executor", index.executor.kind if index.executor else "local"],
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
    combos = src.aggregate.combinations
    label, metric = key_metrics(combos)[0]
    factor = _scale(metric)
    stats = [c.metrics.get(metric) or MeanSE() for c in combos]
    paper = [paper_value(src.reference, c.point, metric, src.backbone)[0] for c in combos]
    section.add(
        Figure(
            plots.error_bars(
                [combo_label(c.point) for c in combos],
                [s.mean * factor if s.mean is not None else None for s in stats],
                [s.se * factor if s.se is not None else None for s in stats],
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
    # each cell in its own unit; artifact cells read the combination's run folders
    for table in reference_tables.sweep_tables(src.reference, src.aggregate.combinations, src.backbone, src.path):
        section.add(table)
    return section


def runs_table(src: SweepSource) -> Section:
    section = Section("Runs", anchor="runs")
    combos = src.aggregate.combinations
    chosen = key_metrics(combos) if combos else []
    metric = chosen[0][1] if chosen else "splits.test.wga"
    rows: list[list[str]] = []
    emphasis: dict[tuple[int, int], str] = {}
    for point, folder, run in src.runs:
        status = "missing" if run is None else run.status
        value = run.summary.numbers().get(metric) if run is not None else None
        error = (run.manifest.error if run is not None else None) or ""
        executor = run.manifest.executor if run is not None else None
        if status != "done":
            emphasis[(len(rows), 2)] = "large"
        rows.append(
            [
                folder,
                str(point.get("seed", "")),
                status,
                pct(value) if _scale(metric) == 100 else num(value),
                executor.kind if executor else "",
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
    combos = src.aggregate.combinations
    names: list[str] = []
    for combo in combos:
        for name in combo.metrics:
            if name not in names:
                names.append(name)
    if not names:
        return section
    rows = [[name] + [mean_se_text(c.metrics.get(name), 1.0, 4) for c in combos] for name in names[:MAX_ALL_ROWS]]
    caption = "raw stored values (fractions are not scaled)"
    if len(names) > MAX_ALL_ROWS:
        caption += f"; first {MAX_ALL_ROWS} of {len(names)} numbers, all of them are in aggregate.json"
    section.add(
        Table(
            columns=["number"] + [combo_label(c.point) for c in combos],
            rows=rows,
            title="mean ± s.e. (n) of every number in the runs' summary.json",
            caption=caption,
        )
    )
    return section
