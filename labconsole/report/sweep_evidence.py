"""A sweep's Stage I evidence over model seeds: per readout and minority group, the critical
set's Δtrain and Δtest next to its control, critical − control paired by seed, and the
memorization signature's verdict over seeds. Read from each finished run's recorded readouts
(``artifacts/stage1_readouts.json``); the statistics are ``engine.stage1.evidence_seeds``'."""

from __future__ import annotations

from labconsole.engine.records import ReadoutsArtifact
from labconsole.engine.stage1.evidence_seeds import OverSeeds, Paired, over_seeds
from labconsole.engine.stage1.evidence_stats import SIGNIFICANCE
from labconsole.errors import UserError
from labconsole.report.doc import MISSING, Section, Table, Text
from labconsole.report.evidence_sections import READOUTS, stage1_readouts
from labconsole.report.source import SweepSource

COLUMNS = [
    "group",
    "seeds",
    "Δtrain (pp)",
    "Δtest (pp)",
    "control Δtrain / Δtest (pp)",
    "train: critical − control",
    "p",
    "test: critical − control",
    "p",
    "Δtrain − Δtest: critical − control",
    "p",
    "signature seen in",
    "over seeds",
]
CAPTION = (
    "Δ: the critical set's change of the group's accuracy, mean over seeds; control: its control's "
    "(layer-matched unless the preset says anywhere) mean over draws, then over seeds. critical − control: mean ± s.e. over seeds of the per-seed "
    "difference, p: one-sided paired t-test over seeds (small = the critical set is more damaging than its "
    f"control). The memorization signature (Paper A: train drops, test holds) is seen for a seed when "
    f"Δtrain − Δtest is below its control draws at p < {SIGNIFICANCE:g} and the group's test Δ drops by no "
    "more than the control's spread (Δtest ≥ −sd of the draws' test Δ); over seeds when the paired "
    f"Δtrain − Δtest difference is negative at p < {SIGNIFICANCE:g} and the mean Δtest drops by no more than "
    "the control's mean spread on test. Finished runs only."
)


def _runs(src: SweepSource, problems: list[str]) -> dict[str, list[tuple[int, ReadoutsArtifact]]]:
    """Each finished run's readouts by combination of the non-seed axes ("" without axes)."""
    out: dict[str, list[tuple[int, ReadoutsArtifact]]] = {}
    for point, folder, run in src.runs:
        if run is None or not run.is_done:
            continue
        try:
            found = stage1_readouts(run)
        except (UserError, ValueError, OSError) as exc:  # one unreadable run must not hide the others
            problems.append(f"{folder}/artifacts/{READOUTS} could not be read ({exc})")
            continue
        seed = point.get("seed", 0)
        if found is None or not isinstance(seed, int):
            continue
        combo = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in point.items() if k != "seed")
        out.setdefault(combo, []).append((seed, found))
    return out


def _paired(test: Paired) -> list[str]:
    mean, se, p = test["mean_pp"], test["se_pp"], test["p_one_sided"]
    text = MISSING if mean is None else f"{float(mean):+.1f}" + ("" if se is None else f" ± {float(se):.1f}")
    return [text, MISSING if p is None else f"{float(p):.3f}"]


def _row(entry: OverSeeds) -> list[str]:
    group = entry.group if entry.ranked_on is not None else f"{entry.group} (global ranking)"
    control = f"{entry.mean('control_train_pp'):+.1f} / {entry.mean('control_test_pp'):+.1f}"
    return [
        group,
        ", ".join(str(s) for s in entry.seeds),
        f"{entry.mean('train_pp'):+.1f}",
        f"{entry.mean('test_pp'):+.1f}",
        control,
        *_paired(entry.paired("train")),
        *_paired(entry.paired("test")),
        *_paired(entry.paired("signature")),
        f"{entry.seen_in} of {len(entry.cells)}",
        "seen" if entry.seen else "not seen",
    ]


def stage1_over_seeds(src: SweepSource) -> Section | None:
    """One table per readout (criterion, score, k, mode) and combination, one row per minority
    group, when two or more seeds recorded it; None when no readout has two seeds."""
    problems: list[str] = []
    tables: list[Table | Text] = []
    for combo, runs in _runs(src, problems).items():
        by_readout: dict[str, list[OverSeeds]] = {}
        for entry in over_seeds(runs):
            by_readout.setdefault(entry.readout, []).append(entry)
        for readout, entries in by_readout.items():
            title = f"Stage I over seeds: {readout}" + (f" ({combo})" if combo else "")
            tables.append(Table(columns=COLUMNS, rows=[_row(e) for e in entries], title=title, caption=CAPTION))
            tables += [Text(f"{readout}, {e.group}: {e.verdict()}", kind="note") for e in entries]
    if not tables and not problems:
        return None
    section = Section("Stage I evidence over model seeds", anchor="stage1-seeds")
    section.blocks += [Text(p, kind="warning") for p in problems]
    section.blocks += tables
    return section
