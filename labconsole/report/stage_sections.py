"""Stage-specific sections (Stage I readouts, structured tracing, overlap, fine-tuning, Paper B)
and the generic fall-back for every other summary entry, PNG and JSON artifact.

Each builder records the artifacts it showed in ``shown`` so the generic pass skips them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labconsole.report import figures_gradcam, figures_rare, figures_tracing, generic, plots
from labconsole.report.doc import Figure, Section, Table, Text, is_number, num, pct, pp
from labconsole.report.source import RunSource

MAX_PNG_BYTES = 8 * 1024 * 1024
# Summary entries rendered elsewhere (header, group tables) or bookkeeping only.
HANDLED_SUMMARY = {"preset", "variant", "selection", "splits", "epochs", "erm", "model"}


def _load_artifact(src: RunSource, name: str) -> Any:
    path = src.path / "artifacts" / name
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _artifact_or_summary(src: RunSource, artifact: str, stage: str, shown: set[str]) -> dict[str, Any] | None:
    """A stage's JSON artifact, else its summary section; ``None`` when the run has neither."""
    data = _load_artifact(src, artifact)
    if not isinstance(data, dict):
        data = src.summary.get(stage)
        if not isinstance(data, dict):
            return None
    shown.add(artifact)
    return data


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
    full = _load_artifact(src, "stage1_readouts.json")
    summary = src.summary.get("neurons") if isinstance(src.summary.get("neurons"), dict) else {}
    rows = (full or {}).get("rows") if isinstance(full, dict) else None
    if full is not None:
        shown.add("stage1_readouts.json")
    if not rows and not summary.get("rows"):
        return None
    section = Section("Stage I: readouts after editing critical neurons", anchor="neurons")
    compact = rows is None
    rows = rows or summary["rows"]
    groups = (full or {}).get("group_names") or list((summary.get("baseline") or {}).get("train") or {})
    baseline = (full or {}).get("baseline") or summary.get("baseline") or {}
    splits = [s for s in ("train", "val", "test") if any(s in _deltas(r, compact) for r in rows)]
    quantum = summary.get("wga_quantum_pp") or {}
    minority = (full or {}).get("minority_groups") or summary.get("minority_groups") or []
    for split in splits:
        body, emphasis = [], {}
        for row in rows:
            delta, spread = _deltas(row, compact).get(split) or {}, _spreads(row, compact).get(split) or {}
            cdelta, cspread = _control(row, compact).get(split) or {}, _control_spread(row, compact).get(split) or {}
            std = f" σ={row['std']:g}" if is_number(row.get("std")) and row.get("mode") != "zero" else ""
            cells = [f"{row.get('label', '?')}", f"{row.get('mode', '?')}{std}"]
            for i, g in enumerate(groups):
                cells.append(_pm(delta.get(g), spread.get(g)))
                if row.get("ranked_group") == g:
                    emphasis[(len(body), 2 + i)] = "ranked"
            cells.append(" / ".join(_pm(cdelta.get(g), cspread.get(g)) for g in groups) if cdelta else "—")
            body.append(cells)
        base = " · ".join(f"{g} {pct((baseline.get(split) or {}).get(g))}" for g in groups)
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
    if groups and rows:
        split = splits[0]
        series = {
            str(r.get("label", "?"))[:40]: [(_deltas(r, compact).get(split) or {}).get(g) for g in groups]
            for r in rows[:12]
        }
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


def _deltas(row: dict[str, Any], compact: bool) -> dict[str, Any]:
    return (
        row.get("delta_pp") or {} if compact else {s: v.get("delta_pp") for s, v in (row.get("splits") or {}).items()}
    )


def _spreads(row: dict[str, Any], compact: bool) -> dict[str, Any]:
    return (
        row.get("spread_pp") or {} if compact else {s: v.get("spread_pp") for s, v in (row.get("splits") or {}).items()}
    )


def _control(row: dict[str, Any], compact: bool) -> dict[str, Any]:
    return (
        row.get("control_delta_pp") or {}
        if compact
        else {s: v.get("delta_pp") for s, v in (row.get("control") or {}).items()}
    )


def _control_spread(row: dict[str, Any], compact: bool) -> dict[str, Any]:
    return (
        row.get("control_spread_pp") or {}
        if compact
        else {s: v.get("spread_pp") for s, v in (row.get("control") or {}).items()}
    )


def _pm(value: Any, spread: Any) -> str:
    if not is_number(value):
        return "—"
    return pp(value) + (f" ± {spread:.2f}" if is_number(spread) and spread > 0 else "")


# -- structured tracing and overlap -----------------------------------------------------------------


def tracing(src: RunSource, shown: set[str]) -> Section | None:
    data = _artifact_or_summary(src, "stage1_tracing.json", "tracing", shown)
    if data is None:
        return None
    section = Section("Structured tracing: layers × groups (Figure 7)", anchor="tracing")
    shown.add("stage1_tracing.png")  # older runs drew the same heat map themselves
    layers, groups = data.get("layers") or [], data.get("groups") or []
    split = figures_tracing.tracing_split(data)
    if layers and groups and data.get("matrices"):
        caption = f"Δ {split} accuracy (pp) when zeroing each layer's top-{data.get('k', '?')} neurons"
        section.blocks.extend(
            _drawn(
                lambda: [Figure(figures_tracing.tracing_heatmap(data), "structured tracing heat map", caption)],
                "stage1_tracing.json",
            )
        )
    for criterion, per_split in (data.get("matrices") or {}).items():
        matrix = (per_split or {}).get(split) or []
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
    data = _artifact_or_summary(src, "stage1_overlap.json", "overlap", shown)
    if data is None:
        return None
    section = Section("Overlap of gradient and magnitude criteria (Figure 3)", anchor="overlap")
    shown.add("stage1_overlap.png")  # older runs drew the same histograms themselves
    if data.get("kinds") and len(data.get("bins") or []) > 1:
        section.blocks.extend(
            _drawn(
                lambda: [Figure(figures_tracing.overlap_histograms(data), "overlap histograms")], "stage1_overlap.json"
            )
        )
    edges = data.get("bins") or []
    for kind, info in (data.get("kinds") or {}).items():
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
                    title=f"{kind} layers ({info.get('n_neurons', '?')} neurons), top {num(data.get('top_percent'))} %",
                )
            )
    return section


# -- fine-tuning ------------------------------------------------------------------------------------


def finetune(src: RunSource, shown: set[str]) -> Section | None:
    data = src.summary.get("finetune")
    cams = [p for p in src.artifacts(".png") if "gradcam" in p.name.lower()]  # older runs drew these
    cam_meta = _load_artifact(src, figures_gradcam.META)
    if not isinstance(data, dict) and not cams and not isinstance(cam_meta, dict):
        return None
    section = Section("Fine-tuning (Stage II)", anchor="finetune")
    data = data if isinstance(data, dict) else {}
    if data.get("method"):
        section.add(Text(f"Method: {data['method']} (variant: {data.get('variant', '?')}).", kind="p"))
    before, after, gain = data.get("wga_before") or {}, data.get("wga_after") or {}, data.get("wga_gain") or {}
    if before or after:
        rows = [
            [sp, pct(before.get(sp)), pct(after.get(sp)), pp(100 * gain[sp]) if is_number(gain.get(sp)) else "—"]
            for sp in ("val", "test")
        ]
        section.add(
            Table(
                columns=["split", "WGA before (%)", "WGA after (%)", "gain (pp)"],
                rows=rows,
                title="worst-group accuracy before and after fine-tuning",
                caption=f"selection: {(data.get('selection') or {}).get('rule', '?')} → epoch "
                f"{(data.get('selection') or {}).get('epoch', '?')}; start: "
                f"{(data.get('start') or {}).get('note', '')}",
            )
        )
    options = data.get("variant_options")
    if isinstance(options, dict) and options:
        section.add(
            Table(
                columns=["option", "value"],
                rows=[[k, generic.cell(v)] for k, v in options.items()],
                title="variant options",
            )
        )
    history = data.get("history")
    if isinstance(history, list) and history:
        section.add(generic.rows_table([h for h in history if isinstance(h, dict)], "per-epoch masks and losses"))
    if isinstance(cam_meta, dict):
        shown.add(figures_gradcam.META)
        caption = (
            f"GradCAM at {cam_meta.get('layer', '?')}, output {cam_meta.get('output_index', '?')}, "
            f"{cam_meta.get('split', '?')} images; columns: {', '.join(map(str, cam_meta.get('models') or []))}"
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
    data = _load_artifact(src, "rare_score.json")
    if not isinstance(data, dict) or not isinstance(data.get("per_pattern"), dict):
        return None
    shown.add("rare_score.json")
    section = Section("Paper B: spurious score vs number of spurious examples", anchor="rare-score")
    shown.update(figures_rare.legacy_pngs("rare_score.json", (p.name for p in src.artifacts(".png"))))
    section.blocks.extend(_drawn(lambda: figures_rare.score(data), "rare_score.json"))
    rows = []
    for pattern, per_n in data["per_pattern"].items():
        for n, cell in (per_n or {}).items():
            rows.append(
                [pattern, str(n)]
                + [_mse(cell.get(m)) for m in ("score", "clean_acc", "spurious_acc")]
                + [num(cell.get("p_value"), 3)]
            )
    section.add(
        Table(
            columns=["pattern", "n", "spurious score", "clean acc", "spurious acc", "p (Welch, > n=0)"],
            rows=rows,
            title=f"ε = {data.get('epsilon')}, target class {data.get('target_class')}, seeds {data.get('seeds')}",
            caption="mean ± s.e. over seeds (n = number of seeds)",
        )
    )
    return section


def _mse(stats: Any) -> str:
    if not isinstance(stats, dict) or not is_number(stats.get("mean")):
        return "—"
    se = stats.get("se")
    return f"{stats['mean']:.3f}" + (f" ± {se:.3f}" if is_number(se) else "") + f" (n={stats.get('n', '?')})"


# -- everything else --------------------------------------------------------------------------------


def other_summary(src: RunSource, stages_with_sections: set[str]) -> list[Section]:
    out = []
    for key, value in src.summary.items():
        if key in HANDLED_SUMMARY or key in stages_with_sections or not isinstance(value, (dict, list)):
            continue
        section = Section(f"Stage {key}: summary", anchor=f"summary-{key}")
        section.blocks.extend(generic.json_blocks(value, key))
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
            section.add(_safe(lambda p=path: figure_from(p), path.name))
    for path in src.artifacts(".json"):
        if path.name in shown:
            continue
        section.add(Text(f"artifacts/{path.relative_to(src.path / 'artifacts')}", kind="p"))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            section.add(Text(f"could not render {path.name}: not valid JSON ({exc})", kind="warning"))
            continue
        section.blocks.extend(_drawn(lambda p=path, d=data: figures_rare.figures_for(p.name, d), path.name))
        section.blocks.extend(generic.json_blocks(data, path.stem)[:30])
    return section


def _drawn(build: Any, name: str) -> list[Figure | Text]:
    """Figures drawn from one artifact; a table the figure cannot read becomes a note."""
    try:
        return list(build())
    except Exception as exc:  # a malformed table must still leave the rest of the report
        return [Text(f"could not draw the figures of {name}: {type(exc).__name__}: {exc}", kind="warning")]


def _safe(build: Any, name: str) -> Figure | Text:
    try:
        return build()
    except Exception as exc:  # unreadable file: say so, keep going
        return Text(f"could not render {name}: {type(exc).__name__}: {exc}", kind="warning")
