"""Reports rendered from run and sweep directories (never from live objects).

``write_report(path)`` writes ``report.html`` (self-contained), ``report.md`` (+ figure files),
``report.json`` and ``report.svg`` (the main table) into the directory and returns their paths.
A malformed artifact becomes a "could not render …" note; an incomplete run is marked as such.
Only a path that is not a run or sweep directory raises ``UserError``.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable
from pathlib import Path

from labconsole.engine.runs import atomic_write_json, atomic_write_text
from labconsole.errors import UserError
from labconsole.report import (
    evidence_sections,
    rare_sections,
    run_sections,
    session_sections,
    stage_sections,
    sweep_evidence,
    sweep_sections,
)
from labconsole.report.doc import Figure, Report, Section, Table, Text, guarded
from labconsole.report.source import RunSource, SweepSource, classify, load_run, load_sweep

FORMATS = ("html", "md", "json", "svg")
__all__ = ["FORMATS", "build_report", "write_report"]


def build_run_report(src: RunSource) -> Report:
    report = Report(kind="run", title=f"{src.preset_name} — {src.path.name}", path=str(src.path), status=src.status)
    shown: set[str] = set()
    specific = {
        "neurons": stage_sections.neurons,
        "tracing": stage_sections.tracing,
        "overlap": stage_sections.overlap,
        "finetune": stage_sections.finetune,
        "evidence": evidence_sections.evidence,  # Stage I controls and p, Stage II against its start
        "rare-score": stage_sections.rare_score,
    }
    sections: list[Section] = []
    if session_sections.is_session(src):  # a console session record trains nothing: no config.toml
        src.problems[:] = [p for p in src.problems if p != "config.toml is missing"]
    sections += guarded("run header", lambda: run_sections.header(src))
    if rare_sections.is_rare_run(src.path):  # Paper B's lab: its own sections, none of Paper A's
        return _rare_run_report(report, src, sections)
    sections += guarded("per-group accuracy", lambda: run_sections.results(src))
    sections += guarded("published numbers", lambda: run_sections.published(src))
    sections += guarded("curves over epochs", lambda: run_sections.curves(src))
    for name, build in specific.items():
        sections += guarded(f"{name} section", functools.partial(build, src, shown))
    sections += guarded("console session", lambda: session_sections.sections(src, shown))
    sections += guarded("stage summaries", lambda: stage_sections.other_summary(src, set(specific) | {"rare-score"}))
    sections += guarded("artifacts", lambda: stage_sections.artifacts(src, shown))
    sections += guarded("configuration", lambda: run_sections.definitions(src))
    report.sections = sections
    try:
        report.main_table = run_sections.main_table(src)
    except Exception:  # the SVG is optional; the HTML already says what went wrong
        report.main_table = None
    report.data = _run_data(src)
    return report


def _run_data(src: RunSource) -> dict[str, object]:
    """``report.json``'s body for a run: where it is, its state and its records as written."""
    return {
        "kind": "run",
        "path": str(src.path),
        "status": src.status,
        "problems": src.problems,
        "manifest": src.manifest.to_json(),
        "summary": src.summary.to_json(),
        "reference": src.reference,
    }


def _rare_run_report(report: Report, src: RunSource, sections: list[Section]) -> Report:
    shown: set[str] = set()
    sections += rare_sections.sections(src.path, shown)
    sections += guarded("artifacts", lambda: stage_sections.artifacts(src, shown))
    sections += guarded("configuration", lambda: rare_sections.definitions(src.path))
    report.sections = sections
    try:
        report.main_table = rare_sections.main_table(src.path)
    except Exception:  # the SVG is optional
        report.main_table = None
    report.data = _run_data(src)
    return report


def build_sweep_report(src: SweepSource) -> Report:
    status = "done" if src.runs and all(r is not None and r.is_done for _, _, r in src.runs) else "incomplete"
    report = Report(kind="sweep", title=f"{src.preset_name} — sweep {src.path.name}", path=str(src.path), status=status)
    sections: list[Section] = []
    sections += guarded("sweep overview", lambda: sweep_sections.overview(src))
    sections += guarded("aggregated results", lambda: sweep_sections.aggregated(src))
    sections += guarded("Stage I over seeds", lambda: sweep_evidence.stage1_over_seeds(src))
    sections += guarded("recipes against their control", lambda: evidence_sections.recipes_vs_control(src))
    sections += guarded("published numbers", lambda: sweep_sections.published(src))
    sections += guarded("runs", lambda: sweep_sections.runs_table(src))
    sections += guarded("all aggregated numbers", lambda: sweep_sections.all_numbers(src))
    report.sections = sections
    try:
        report.main_table = sweep_sections.main_table(src)
    except Exception:
        report.main_table = None
    report.data = {
        "kind": "sweep",
        "path": str(src.path),
        "status": status,
        "problems": src.problems,
        "index": src.index.to_json(),
        "aggregate": src.aggregate.to_json(),
        "reference": src.reference,
    }
    return report


def build_report(path: Path | str) -> Report:
    path = Path(path)
    return build_sweep_report(load_sweep(path)) if classify(path) == "sweep" else build_run_report(load_run(path))


def parse_formats(formats: Iterable[str] | str) -> tuple[str, ...]:
    items = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    unknown = [f for f in items if f not in FORMATS]
    if unknown or not items:
        raise UserError(
            f"--format: unknown format(s) {', '.join(unknown) or '(none)'}; expected a comma-separated "
            f"list of {', '.join(FORMATS)}"
        )
    return tuple(dict.fromkeys(items))


def write_report(run_or_sweep_dir: Path | str, formats: Iterable[str] | str = FORMATS) -> list[Path]:
    """Write the report files into the run or sweep directory and return their paths.

    For a sweep, each finished run without an up-to-date ``report.html`` gets one too.
    """
    folder = Path(run_or_sweep_dir)
    wanted = parse_formats(formats)
    report = build_report(folder)
    written: list[Path] = []
    if report.kind == "sweep":
        _write_run_reports(folder)
    if "html" in wanted:
        from labconsole.report.html import render_html

        written.append(_write(folder / "report.html", render_html(report)))
    if "md" in wanted:
        from labconsole.report.markdown import render_markdown

        text, _ = render_markdown(report, folder)
        written.append(_write(folder / "report.md", text))
    if "json" in wanted:
        target = folder / "report.json"
        atomic_write_json(
            target,
            {
                **report.data,
                "title": report.title,
                "generated": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "sections": [_section_json(s) for s in report.sections],
            },
        )
        written.append(target)
    if "svg" in wanted:
        from labconsole.report.markdown import render_svg

        svg = render_svg(report)
        if svg is not None:
            written.append(_write(folder / "report.svg", svg))
    return written


def _write_run_reports(sweep_dir: Path) -> None:
    for child in sorted(p for p in sweep_dir.iterdir() if p.is_dir()):
        done, html = child / "done", child / "report.html"
        if done.exists() and (
            not html.exists() or html.stat().st_mtime < (child / "summary.json").stat().st_mtime
            if (child / "summary.json").exists()
            else not html.exists()
        ):
            from labconsole.report.html import render_html

            try:
                _write(html, render_html(build_run_report(load_run(child))))
            except Exception:  # a broken run shows up in the sweep's own runs table
                continue


def _write(path: Path, text: str) -> Path:
    atomic_write_text(path, text)
    return path


def _section_json(section: Section) -> dict[str, object]:
    blocks: list[dict[str, object]] = []
    for block in section.blocks:
        if isinstance(block, Table):
            blocks.append(
                {
                    "type": "table",
                    "title": block.title,
                    "columns": block.columns,
                    "rows": block.rows,
                    "caption": block.caption,
                }
            )
        elif isinstance(block, Figure):
            blocks.append({"type": "figure", "title": block.title, "caption": block.caption, "source": block.source})
        elif isinstance(block, Text):
            blocks.append({"type": block.kind, "title": block.title, "text": block.text})
    return {"title": section.title, "blocks": blocks}


def dumps(obj: object) -> str:  # pragma: no cover - debugging helper
    return json.dumps(obj, indent=1, default=str)
