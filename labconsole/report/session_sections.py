"""Report sections of a console session record (``labconsole.engine.stage1.session_record``).

A session directory holds no training: its report shows the model the session used, the
rankings it computed, and its readouts rendered exactly like the headless Stage I readouts
(a table per split with the random control, and the per-group bar chart), drawn here from the
record's own lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from labconsole.engine.records import (
    ConsoleReadout,
    RankingLine,
    ReadoutSplit,
    SessionSetup,
    parse_session_line,
)
from labconsole.report import plots
from labconsole.report.doc import MISSING, Figure, Section, Table, Text, is_number, pct, pp
from labconsole.report.source import RunSource

KIND = "console-session"  # labconsole.engine.stage1.session_record.KIND (not imported: no engine here)
MAX_RANKED_SHOWN = 10


def is_session(src: RunSource) -> bool:
    return src.manifest.kind == KIND


@dataclass
class SessionLines:
    """A session record's ``readouts.jsonl`` read through its records. The counts are of lines
    of each kind, whether or not they could be read; ``torn``: lines that are not JSON."""

    rankings: list[RankingLine] = field(default_factory=list)
    readouts: list[ConsoleReadout] = field(default_factory=list)
    ranking_lines: int = 0
    readout_lines: int = 0
    torn: int = 0


def read_lines(path: Path) -> SessionLines:
    """The record's rankings and readouts, in order (a torn last line is counted, not fatal)."""
    found = SessionLines()
    if not path.exists():
        return found
    for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            found.torn += 1
            continue
        if not isinstance(line, dict):
            continue
        record = parse_session_line(line)
        if isinstance(record, RankingLine):
            found.rankings.append(record)
            found.ranking_lines += 1
        elif isinstance(record, ConsoleReadout):
            found.readouts.append(record)
            found.readout_lines += 1
        else:  # a line of either kind that does not fit its record is counted, not shown
            found.ranking_lines += record.kind == "ranking"
            found.readout_lines += record.kind == "readout"
    return found


def readout_label(line: ConsoleReadout) -> str:
    """``#2 gradient@waterbird-land conv1#3, …``: its place in the session, ranking, neurons."""
    readout = line.readout
    neurons = [f"{n[0]}#{n[1]}" for n in readout.neurons]
    shown = ", ".join(neurons[:3]) + (f" +{len(neurons) - 3}" if len(neurons) > 3 else "")
    ranked = (line.criterion or "") + (f"@{line.ranked_group}" if line.ranked_group else "")
    parts = [f"#{'?' if line.seq is None else line.seq}", ranked or readout.label, shown]
    return " ".join(p for p in parts if p)


def _pm(value: float | None, spread: float | None) -> str:
    if value is None:
        return MISSING
    return pp(value) + (f" ± {spread:.2f}" if spread is not None and spread > 0 else "")


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
            data = readout.split(split)
            control = readout.control_split(split) or ReadoutSplit()
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
            readout_label(x)[:40]: [x.readout.split(split).delta_pp.get(g) for g in groups] for x in readouts[-12:]
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
    manifest = src.manifest
    lines = read_lines(src.path / "readouts.jsonl")
    model = manifest.model or SessionSetup()
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
                ["rankings / readouts", f"{lines.ranking_lines} / {lines.readout_lines}"],
            ],
            title="model used",
        )
    )
    if lines.torn:
        head.add(Text(f"readouts.jsonl has {lines.torn} unreadable line(s) (skipped)", kind="warning"))
    if lines.rankings:
        head.add(
            Table(
                columns=["#", "criterion", "group", "scope", "neurons", f"first {MAX_RANKED_SHOWN}"],
                rows=[ranking_row(line) for line in lines.rankings],
                title="rankings computed in the console",
            )
        )
    out = [head]
    if lines.readouts:
        out.append(readouts_section(lines.readouts, list(manifest.group_names), list(manifest.minority_groups)))
    else:
        head.add(Text("no readouts in this session yet", kind="note"))
    shown.add("readouts.jsonl")
    return out


def ranking_row(line: RankingLine) -> list[str]:
    """#, criterion, group, scope (with its k where the line has one), count, first neurons."""
    top = [f"{layer}#{index}" for layer, index, _ in line.neurons[:MAX_RANKED_SHOWN]]
    scope = line.scope or "global"
    return [
        "?" if line.seq is None else str(line.seq),
        line.criterion or "?",
        line.group or "all groups",
        f"{scope} k={line.k:g}" if "k" in line.model_fields_set else scope,
        str(len(line.neurons)),
        ", ".join(top),
    ]
