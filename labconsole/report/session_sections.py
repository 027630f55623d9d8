"""Report sections of a console session record (``labconsole.engine.stage1.session_record``).

A session directory holds no training: its report shows the model the session used, the
rankings it computed, and its readouts rendered exactly like the headless Stage I readouts
(a table per split with the random control, and the per-group bar chart), drawn here from the
record's own lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from labconsole.engine.records import ConsoleReadout, ReadoutSplit, SessionManifest
from labconsole.report import plots
from labconsole.report.doc import MISSING, Figure, Section, Table, Text, is_number, pct, pp
from labconsole.report.source import RunSource

KIND = "console-session"  # labconsole.engine.stage1.session_record.KIND (not imported: no engine here)
MAX_RANKED_SHOWN = 10


def manifest_of(src: RunSource) -> dict[str, Any]:
    """The run's manifest as plain JSON (a ``records.Manifest`` keeps the session's extra keys)."""
    manifest: Any = src.manifest
    if hasattr(manifest, "model_dump"):
        dumped: dict[str, Any] = manifest.model_dump(mode="json")
        return dumped
    return dict(manifest or {})


def is_session(src: RunSource) -> bool:
    return manifest_of(src).get("kind") == KIND


def read_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The record's lines and how many could not be read (a torn last line)."""
    lines, torn = [], 0
    if not path.exists():
        return [], 0
    for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            torn += 1
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines, torn


def readout_line(line: dict[str, Any]) -> ConsoleReadout | None:
    """A readout line as its record (an older flat line is its own readout); None when it does
    not fit."""
    payload = line if isinstance(line.get("readout"), dict) else {**line, "readout": line}
    try:
        return ConsoleReadout.model_validate(payload)
    except ValidationError:
        return None


def readout_label(line: ConsoleReadout) -> str:
    """``#2 gradient@waterbird-land conv1#3, …``: its place in the session, ranking, neurons."""
    readout = line.readout
    neurons = [f"{n[0]}#{n[1]}" for n in readout.neurons]
    shown = ", ".join(neurons[:3]) + (f" +{len(neurons) - 3}" if len(neurons) > 3 else "")
    ranked = (line.criterion or "") + (f"@{line.ranked_group}" if line.ranked_group else "")
    parts = [f"#{'?' if line.seq is None else line.seq}", ranked or readout.label, shown]
    return " ".join(p for p in parts if p)


def _pm(value: Any, spread: Any) -> str:
    if not is_number(value):
        return MISSING
    return pp(value) + (f" ± {spread:.2f}" if is_number(spread) and spread > 0 else "")


def readouts_section(readouts: list[ConsoleReadout], groups: list[str], minority: list[str]) -> Section:
    """A table per split (Δ per group ± spread, the random control per group as mean ± sd over
    its draws) and the per-group bar chart: the layout of the headless Stage I readouts."""
    section = Section("Console session: readouts", anchor="console-readouts")
    splits = [s for s in ("train", "val", "test") if any(s in x.readout.splits for x in readouts)]
    for split in splits:
        body: list[list[str]] = []
        emphasis: dict[tuple[int, int], str] = {}
        baseline: dict[str, float | None] = {}
        quantum: float | None = None
        for line in readouts:
            readout = line.readout
            data = readout.splits.get(split) or ReadoutSplit()
            control = (readout.control or {}).get(split) or ReadoutSplit()
            baseline = baseline or data.baseline
            quantum = quantum if quantum is not None else readout.wga_quantum_pp.get(split)
            std = f" σ={readout.std:g}" if is_number(readout.std) and readout.mode != "zero" else ""
            cells = [readout_label(line), f"{readout.mode}{std}"]
            for i, g in enumerate(groups):
                cells.append(_pm(data.delta_pp.get(g), data.spread_pp.get(g)))
                if line.ranked_group == g:
                    emphasis[(len(body), 2 + i)] = "ranked"
            deltas, spreads = control.delta_pp, control.spread_pp
            cells.append(" / ".join(_pm(deltas.get(g), spreads.get(g)) for g in groups) if deltas else MISSING)
            body.append(cells)
        base = " · ".join(f"{g} {pct(baseline.get(g))}" for g in groups)
        section.add(
            Table(
                columns=["readout", "edit"] + groups + ["control (random)"],
                rows=body,
                title=f"Stage I readouts on {split}",
                caption=(
                    f"Δ {split} accuracy (pp) ± spread over seeds; baseline: {base}. Bold: the group the "
                    "neurons were ranked on. Control = as many random neurons, mean ± sd over its draws "
                    f"(same order of groups). Minority groups: {', '.join(minority) or '—'}. "
                    f"WGA quantum: {pp(quantum, 2, signed=False)} pp"
                ),
                emphasis=emphasis,
            )
        )
    if groups and splits:
        split = splits[-1]
        series = {
            readout_label(x)[:40]: [(x.readout.splits.get(split) or ReadoutSplit()).delta_pp.get(g) for g in groups]
            for x in readouts[-12:]
        }
        section.add(
            Figure(
                plots.grouped_bars(
                    groups,
                    series,
                    ylabel=f"Δ {split} accuracy (pp)",
                    title=f"Console readouts: change of each group's {split} accuracy",
                ),
                title=f"Console readouts ({split})",
            )
        )
    return section


def sections(src: RunSource, shown: set[str]) -> list[Section]:
    if not is_session(src):
        return []
    manifest = SessionManifest.model_validate(manifest_of(src))
    lines, torn = read_lines(src.path / "readouts.jsonl")
    model = manifest.model
    # The session's own device when it recorded one, else the run's.
    given = model.model_fields_set  # a field the file left out reads "?", not its default
    device = (model.device if "device" in given else "") or manifest.device or "auto"
    head = Section("Console session", anchor="console-session")
    head.add(
        Table(
            columns=["", ""],
            rows=[
                ["checkpoint", model.checkpoint or "fresh weights"],
                ["backbone", model.backbone if "backbone" in given else "?"],
                [
                    "dataset",
                    (model.dataset if "dataset" in given else "?")
                    + (f" ({model.data_root})" if model.data_root else ""),
                ],
                ["device", device],
                ["groups", ", ".join(manifest.group_names)],
                ["minority groups", ", ".join(manifest.minority_groups) or MISSING],
                ["opened", manifest.created or "?"],
                [
                    "rankings / readouts",
                    f"{sum(1 for x in lines if x.get('type') == 'ranking')} / "
                    f"{sum(1 for x in lines if x.get('type') == 'readout')}",
                ],
            ],
            title="model used",
        )
    )
    if torn:
        head.add(Text(f"readouts.jsonl has {torn} unreadable line(s) (skipped)", kind="warning"))
    rankings = [x for x in lines if x.get("type") == "ranking"]
    if rankings:
        body = []
        for line in rankings:
            top = [f"{layer}#{index}" for layer, index, *_ in (line.get("neurons") or [])[:MAX_RANKED_SHOWN]]
            body.append(
                [
                    str(line.get("seq", "?")),
                    str(line.get("criterion", "?")),
                    str(line.get("group") or "all groups"),
                    f"{line.get('scope') or 'global'} k={line.get('k', '?'):g}"
                    if isinstance(line.get("k"), (int, float))
                    else str(line.get("scope") or "global"),
                    str(len(line.get("neurons") or [])),
                    ", ".join(top),
                ]
            )
        head.add(
            Table(
                columns=["#", "criterion", "group", "scope", "neurons", f"first {MAX_RANKED_SHOWN}"],
                rows=body,
                title="rankings computed in the console",
            )
        )
    out = [head]
    readouts = [r for r in (readout_line(x) for x in lines if x.get("type") == "readout") if r is not None]
    if readouts:
        out.append(readouts_section(readouts, list(manifest.group_names), list(manifest.minority_groups)))
    else:
        head.add(Text("no readouts in this session yet", kind="note"))
    shown.add("readouts.jsonl")
    return out
