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


def readout_of(line: dict[str, Any]) -> dict[str, Any]:
    """The readout of a line (``records.ConsoleReadout.readout``; an older flat line is its own)."""
    readout = line.get("readout")
    return readout if isinstance(readout, dict) else line


def readout_label(line: dict[str, Any]) -> str:
    """``#2 gradient@waterbird-land conv1#3, …``: its place in the session, ranking, neurons."""
    readout = readout_of(line)
    neurons = [f"{n[0]}#{n[1]}" for n in readout.get("neurons") or []]
    shown = ", ".join(neurons[:3]) + (f" +{len(neurons) - 3}" if len(neurons) > 3 else "")
    ranked = str(line.get("criterion") or "") + (f"@{line['ranked_group']}" if line.get("ranked_group") else "")
    parts = [f"#{line.get('seq', '?')}", ranked or str(readout.get("label") or ""), shown]
    return " ".join(p for p in parts if p)


def _pm(value: Any, spread: Any) -> str:
    if not is_number(value):
        return MISSING
    return pp(value) + (f" ± {spread:.2f}" if is_number(spread) and spread > 0 else "")


def readouts_section(readouts: list[dict[str, Any]], groups: list[str], minority: list[str]) -> Section:
    """A table per split (Δ per group ± spread, the random control per group as mean ± sd over
    its draws) and the per-group bar chart: the layout of the headless Stage I readouts."""
    section = Section("Console session: readouts", anchor="console-readouts")
    splits = [s for s in ("train", "val", "test") if any(s in (readout_of(x).get("splits") or {}) for x in readouts)]
    for split in splits:
        body: list[list[str]] = []
        emphasis: dict[tuple[int, int], str] = {}
        baseline: dict[str, Any] = {}
        quantum: Any = None
        for line in readouts:
            readout = readout_of(line)
            data = (readout.get("splits") or {}).get(split) or {}
            control = (readout.get("control") or {}).get(split) or {}
            baseline = baseline or data.get("baseline") or {}
            quantum = quantum if quantum is not None else (readout.get("wga_quantum_pp") or {}).get(split)
            std = f" σ={readout['std']:g}" if is_number(readout.get("std")) and readout.get("mode") != "zero" else ""
            cells = [readout_label(line), f"{readout.get('mode', '?')}{std}"]
            for i, g in enumerate(groups):
                cells.append(_pm((data.get("delta_pp") or {}).get(g), (data.get("spread_pp") or {}).get(g)))
                if line.get("ranked_group") == g:
                    emphasis[(len(body), 2 + i)] = "ranked"
            deltas, spreads = control.get("delta_pp") or {}, control.get("spread_pp") or {}
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
            readout_label(x)[:40]: [
                ((readout_of(x).get("splits") or {}).get(split) or {}).get("delta_pp", {}).get(g) for g in groups
            ]
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
    manifest = manifest_of(src)
    lines, torn = read_lines(src.path / "readouts.jsonl")
    model = manifest.get("model") or {}
    head = Section("Console session", anchor="console-session")
    head.add(
        Table(
            columns=["", ""],
            rows=[
                ["checkpoint", str(model.get("checkpoint") or "fresh weights")],
                ["backbone", str(model.get("backbone", "?"))],
                [
                    "dataset",
                    str(model.get("dataset", "?")) + (f" ({model['data_root']})" if model.get("data_root") else ""),
                ],
                ["device", str(model.get("device") or manifest.get("device") or "auto")],
                ["groups", ", ".join(manifest.get("group_names") or [])],
                ["minority groups", ", ".join(manifest.get("minority_groups") or []) or MISSING],
                ["opened", str(manifest.get("created", "?"))],
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
    readouts = [x for x in lines if x.get("type") == "readout"]
    if readouts:
        groups = list(manifest.get("group_names") or [])
        out.append(readouts_section(readouts, groups, list(manifest.get("minority_groups") or [])))
    else:
        head.add(Text("no readouts in this session yet", kind="note"))
    shown.add("readouts.jsonl")
    return out
