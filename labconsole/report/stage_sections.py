"""Stage-specific sections (Stage I readouts, structured tracing, overlap, fine-tuning, Paper B)
and the generic fall-back for every other summary entry, PNG and JSON artifact.

Each builder records the artifacts it showed in ``shown`` so the generic pass skips them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from labconsole.engine.records import (
    FinetuneSection,
    GradcamSection,
    MeanSE,
    NeuronsRow,
    OverlapSection,
    RareScoreSection,
    ReadoutsArtifact,
    Record,
    StageSection,
    TracingSection,
)
from labconsole.report import figures_gradcam, figures_rare, figures_tracing, generic, plots
from labconsole.report.doc import MISSING, Figure, Section, Table, Text, is_number, num, pct, pp
from labconsole.report.source import RunSource

R = TypeVar("R", bound=Record)
S = TypeVar("S", bound=StageSection)
MAX_PNG_BYTES = 8 * 1024 * 1024
# Summary entries rendered elsewhere (header, group tables) or bookkeeping only.
HANDLED_SUMMARY = {"preset", "variant", "selection", "splits", "epochs", "erm", "model"}


def _load_artifact(src: RunSource, name: str) -> object:
    """``artifacts/<name>`` as parsed JSON (None when missing); read through a record next."""
    path = src.path / "artifacts" / name
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _artifact_record(src: RunSource, name: str, model: type[R]) -> R | None:
    """An artifact read as its record; None when missing. A misfit raises (the guarded
    section builder turns it into a "could not render" note)."""
    data = _load_artifact(src, name)
    return None if data is None else model.model_validate(data)


def _artifact_or_summary(src: RunSource, artifact: str, section: S | None, shown: set[str]) -> S | None:
    """A stage's JSON artifact (read as its summary record), else its summary section;
    ``None`` when the run has neither."""
    data = _load_artifact(src, artifact)
    if isinstance(data, dict):
        shown.add(artifact)
        model = type(section) if section is not None else None
        return model.model_validate(data) if model is not None else None
    if section is not None:
        shown.add(artifact)
    return section


def figure_from(path: Path, title: str = "", caption: str = "") -> Figure | Text:
    size = path.stat().st_size
    if size > MAX_PNG_BYTES:
        return Text(f"could not render {path.name}: {size / 1e6:.1f} MB is too large to embed", kind="warning")
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG"):
        return Text(f"could not render {path.name}: not a PNG file", kind="warning")
    return Figure(data, title=title or path.stem.replace("_", " "), caption=caption, source=f"artifacts/{path.name}")


# -- Stage I readouts ------------------------------------------------------------------------------


def neurons(src: RunSource, shown: set[str]) -> Section | None:
    full = _artifact_record(src, "stage1_readouts.json", ReadoutsArtifact)
    summary = src.summary.neurons
    if full is not None:
        shown.add("stage1_readouts.json")
    rows: list[NeuronsRow] = [r.compact() for r in full.rows] if full is not None and full.rows else []
    rows = rows or (summary.rows if summary is not None else [])
    if not rows:
        return None
    section = Section("Stage I: readouts after editing critical neurons", anchor="neurons")
    baseline = (full.baseline if full is not None else {}) or (summary.baseline if summary is not None else {})
    groups = (full.group_names if full is not None else []) or list(baseline.get("train", {}))
    splits = [s for s in ("train", "val", "test") if any(s in r.delta_pp for r in rows)]
    quantum = summary.wga_quantum_pp if summary is not None else {}
    minority = (full.minority_groups if full is not None else []) or (summary.minority_groups if summary else [])
    for split in splits:
        body: list[list[str]] = []
        emphasis: dict[tuple[int, int], str] = {}
        for row in rows:
            delta, spread = row.delta_pp.get(split, {}), row.spread_pp.get(split, {})
            cdelta, cspread = row.control_delta_pp.get(split, {}), row.control_spread_pp.get(split, {})
            std = f" σ={row.std:g}" if row.std is not None and row.mode != "zero" else ""
            cells = [row.label or "?", f"{row.mode}{std}"]
            for i, g in enumerate(groups):
                cells.append(_pm(delta.get(g), spread.get(g)))
                if row.ranked_group == g:
                    emphasis[(len(body), 2 + i)] = "ranked"
            cells.append(" / ".join(_pm(cdelta.get(g), cspread.get(g)) for g in groups) if cdelta else MISSING)
            body.append(cells)
        base = " · ".join(f"{g} {pct(baseline.get(split, {}).get(g))}" for g in groups)
        caption = (
            f"Δ {split} accuracy (pp) ± spread over seeds; baseline: {base}. Bold: the group the neurons "
            f"were ranked on. Control = as many random neurons (same order of groups). "
            f"Minority groups: {', '.join(minority) or '—'}. WGA quantum: "
            f"{pp(quantum.get(split), 2, signed=False)} pp"
        )
        section.add(
            Table(
                columns=["readout", "edit"] + groups + ["control (random)"],
                rows=body,
                title=f"Stage I readouts on {split}",
                caption=caption,
                emphasis=emphasis,
            )
        )
    if groups and splits:
        split = splits[0]
        series = {(r.label or "?")[:40]: [r.delta_pp.get(split, {}).get(g) for g in groups] for r in rows[:12]}
        section.add(
            Figure(
                plots.grouped_bars(
                    groups,
                    series,
                    ylabel=f"Δ {split} accuracy (pp)",
                    title=f"Stage I: change of each group's {split} accuracy",
                ),
                title=f"Stage I readouts ({split})",
            )
        )
    return section


def _pm(value: float | None, spread: float | None) -> str:
    if value is None or not is_number(value):
        return MISSING
    return pp(value) + (f" ± {spread:.2f}" if spread is not None and is_number(spread) and spread > 0 else "")


# -- structured tracing and overlap -----------------------------------------------------------------


def tracing(src: RunSource, shown: set[str]) -> Section | None:
    record = _artifact_or_summary(src, "stage1_tracing.json", src.summary.tracing or TracingSection(), shown)
    if record is None or not (record.layers or record.matrices):
        return None
    section = Section("Structured tracing: layers × groups (Figure 7)", anchor="tracing")
    shown.add("stage1_tracing.png")  # older runs drew the same heat map themselves
    layers, groups = record.layers, record.groups
    split = figures_tracing.tracing_split(record)
    if layers and groups and record.matrices:
        caption = f"Δ {split} accuracy (pp) when zeroing each layer's top-{record.k or '?'} neurons"
        section.blocks.extend(
            _drawn(
                lambda: [Figure(figures_tracing.tracing_heatmap(record), "structured tracing heat map", caption)],
                "stage1_tracing.json",
            )
        )
    for criterion, per_split in record.matrices.items():
        matrix = per_split.get(split) or []
        rows = [[layer] + [pp(v) for v in values] for layer, values in zip(layers, matrix)]
        section.add(
            Table(
                columns=["layer"] + groups,
                rows=rows,
                title=f"{criterion}: Δ {split} accuracy (pp)",
                caption="control = as many random neurons of the same layer"
                if criterion == "control"
                else "group column g: neurons ranked on g (group-dependent criteria)",
            )
        )
    return section


def overlap(src: RunSource, shown: set[str]) -> Section | None:
    record = _artifact_or_summary(src, "stage1_overlap.json", src.summary.overlap or OverlapSection(), shown)
    if record is None or not (record.kinds or record.bins):
        return None
    section = Section("Overlap of gradient and magnitude criteria (Figure 3)", anchor="overlap")
    shown.add("stage1_overlap.png")  # older runs drew the same histograms themselves
    if record.kinds and len(record.bins) > 1:
        section.blocks.extend(
            _drawn(
                lambda: [Figure(figures_tracing.overlap_histograms(record), "overlap histograms")],
                "stage1_overlap.json",
            )
        )
    edges = record.bins
    for kind, info in record.kinds.items():
        rows = []
        for key, _ in figures_tracing.OVERLAP_PANELS:
            hist = figures_tracing.overlap_histogram(info, key)
            if hist:
                rows.append([key.replace("_", " ")] + [str(h) for h in hist])
        if rows:
            cols = [f"{edges[i]:.0f}–{edges[i + 1]:.0f}" for i in range(len(edges) - 1)] if len(edges) > 1 else []
            width = max(len(r) for r in rows) - 1
            cols = cols[:width] + [f"bin {i}" for i in range(len(cols), width)]
            section.add(
                Table(
                    columns=["histogram (percentile rank bins)"] + cols,
                    rows=rows,
                    title=f"{kind} layers ({info.n_neurons or '?'} neurons), top {num(record.top_percent)} %",
                )
            )
    return section


# -- fine-tuning ------------------------------------------------------------------------------------


def finetune(src: RunSource, shown: set[str]) -> Section | None:
    cams = [p for p in src.artifacts(".png") if "gradcam" in p.name.lower()]  # older runs drew these
    cam_raw = _load_artifact(src, figures_gradcam.META)
    cam_meta = GradcamSection.model_validate(cam_raw) if isinstance(cam_raw, dict) else None  # misfit: noted
    if src.summary.finetune is None and not cams and cam_meta is None:
        return None
    section = Section("Fine-tuning (Stage II)", anchor="finetune")
    data = src.summary.finetune or FinetuneSection()
    if data.method:
        section.add(Text(f"Method: {data.method} (variant: {data.variant or '?'}).", kind="p"))
    before, after, gain = data.wga_before, data.wga_after, data.wga_gain
    if before or after:
        rows = [
            [sp, pct(before.get(sp)), pct(after.get(sp)), pp(100 * g) if (g := gain.get(sp)) is not None else MISSING]
            for sp in ("val", "test")
        ]
        selection = data.selection
        section.add(
            Table(
                columns=["split", "WGA before (%)", "WGA after (%)", "gain (pp)"],
                rows=rows,
                title="worst-group accuracy before and after fine-tuning",
                caption=f"selection: {selection.rule if selection else '?'} → epoch "
                f"{selection.epoch if selection else '?'}; start: {data.start.note if data.start else ''}",
            )
        )
    if data.variant_options:
        section.add(
            Table(
                columns=["option", "value"],
                rows=[[k, generic.cell(v)] for k, v in data.variant_options.items()],
                title="variant options",
            )
        )
    if data.history:
        section.add(generic.rows_table([h.to_json() for h in data.history], "per-epoch masks and losses"))
    if cam_meta is not None:
        shown.add(figures_gradcam.META)
        caption = (
            f"GradCAM at {cam_meta.layer or '?'}, output {cam_meta.output_index}, "
            f"{cam_meta.split or '?'} images; columns: {', '.join(cam_meta.models)}"
        )
        section.blocks.extend(
            _drawn(
                lambda: [
                    Figure(
                        figures_gradcam.figure_from_run(src.path / "artifacts", cam_meta),
                        "GradCAM: ERM vs fine-tuned",
                        caption,
                    )
                ],
                figures_gradcam.META,
            )
        )
    for path in cams:
        shown.add(path.name)
        section.add(
            figure_from(path, f"GradCAM: {path.stem}", "ERM (left) vs fine-tuned (right) where the figure pairs them")
        )
    return section


# -- Paper B --------------------------------------------------------------------------------------


def rare_score(src: RunSource, shown: set[str]) -> Section | None:
    data = _artifact_record(src, "rare_score.json", RareScoreSection)
    if data is None or not data.per_pattern:
        return None
    raw = data.to_json()  # the figure module draws from the JSON table
    shown.add("rare_score.json")
    section = Section("Paper B: spurious score vs number of spurious examples", anchor="rare-score")
    shown.update(figures_rare.legacy_pngs("rare_score.json", (p.name for p in src.artifacts(".png"))))
    section.blocks.extend(_drawn(lambda: figures_rare.figures_for("rare_score.json", raw), "rare_score.json"))
    rows = []
    for pattern, per_n in data.per_pattern.items():
        for n, cell in per_n.items():
            rows.append(
                [pattern, str(n)]
                + [_mse(m) for m in (cell.score, cell.clean_acc, cell.spurious_acc)]
                + [num(cell.p_value, 3)]
            )
    section.add(
        Table(
            columns=["pattern", "n", "spurious score", "clean acc", "spurious acc", "p (Welch, > n=0)"],
            rows=rows,
            title=f"ε = {data.epsilon}, target class {data.target_class}, seeds {data.seeds}",
            caption="mean ± s.e. over seeds (n = number of seeds)",
        )
    )
    return section


def _mse(stats: MeanSE) -> str:
    if stats.mean is None or not is_number(stats.mean):
        return MISSING
    se = f" ± {stats.se:.3f}" if stats.se is not None and is_number(stats.se) else ""
    return f"{stats.mean:.3f}{se} (n={stats.n})"


# -- everything else --------------------------------------------------------------------------------


def other_summary(src: RunSource, stages_with_sections: set[str]) -> list[Section]:
    out = []
    for key, value in src.summary.stage_sections():
        if key in HANDLED_SUMMARY or key in stages_with_sections:
            continue
        section = Section(f"Stage {key}: summary", anchor=f"summary-{key}")
        section.blocks.extend(generic.json_blocks(value.to_json(), key))
        out.append(section)
    return out


def artifacts(src: RunSource, shown: set[str]) -> Section:
    section = Section("Other artifacts", anchor="artifacts")
    pngs = [p.name for p in src.artifacts(".png")]
    for path in src.artifacts(".json"):  # figures the report draws from a table replace an older run's PNG
        if path.name not in shown and path.name in figures_rare.FIGURES:
            shown.update(figures_rare.legacy_pngs(path.name, pngs))
    for path in src.artifacts(".png"):
        if path.name not in shown:
            section.add(_safe(functools.partial(figure_from, path), path.name))
    for path in src.artifacts(".json"):
        if path.name in shown:
            continue
        section.add(Text(f"artifacts/{path.relative_to(src.path / 'artifacts')}", kind="p"))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            section.add(Text(f"could not render {path.name}: not valid JSON ({exc})", kind="warning"))
            continue
        section.blocks.extend(_drawn(functools.partial(figures_rare.figures_for, path.name, data), path.name))
        section.blocks.extend(generic.json_blocks(data, path.stem)[:30])
    return section


def _drawn(build: Callable[[], Iterable[Figure | Text]], name: str) -> list[Figure | Text]:
    """Figures drawn from one artifact; a table the figure cannot read becomes a note."""
    try:
        return list(build())
    except Exception as exc:  # a malformed table must still leave the rest of the report
        return [Text(f"could not draw the figures of {name}: {type(exc).__name__}: {exc}", kind="warning")]


def _safe(build: Callable[[], Figure | Text], name: str) -> Figure | Text:
    try:
        return build()
    except Exception as exc:  # unreadable file: say so, keep going
        return Text(f"could not render {name}: {type(exc).__name__}: {exc}", kind="warning")
