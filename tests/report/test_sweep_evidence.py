"""A sweep's report reads Stage I evidence over seeds from its runs' recorded readouts: a table
per readout, a row per minority group, the paired p and the verdict both ways."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labconsole.report import build_report
from labconsole.report.doc import Table, Text
from tests.engine.evidence_seed_fixtures import readout_row, readouts
from tests.report.report_fixtures import make_run

TITLE = "Stage I evidence over model seeds"


def _sweep(root: Path, rows_per_seed: list[list[dict[str, Any]]]) -> Path:
    sweep = root / "sweep"
    points = []
    for seed, rows in enumerate(rows_per_seed):
        run = make_run(sweep, f"s{seed}", seed=seed, stage1=False, extras=False)
        run.write_json("artifacts/stage1_readouts.json", readouts(rows))
        points.append({"point": {"seed": seed}, "dir": run.path.name})
    index = {"schema_version": 1, "preset": "quickstart", "seeds": list(range(len(rows_per_seed))), "points": points}
    (sweep / "sweep.json").write_text(json.dumps(index), encoding="utf-8")
    return sweep


def test_stage1_table_over_seeds_with_the_signature_seen_and_not_seen(tmp_path: Path) -> None:
    # waterbird-land: train drops (−2, −3, −4 pp), test holds (−1 pp, as the control): seen.
    # landbird-water: train −98 … −100 pp, test −67 … −69 pp: Δtrain − Δtest beats the control,
    # but the group is lost on test: not seen.
    rows = [
        [
            readout_row("waterbird-land", -2.0 - s, -1.0),
            readout_row("landbird-water", -98.0 - s, -67.0 - s),
        ]
        for s in range(3)
    ]
    report = build_report(_sweep(tmp_path, rows))
    section = next(s for s in report.sections if s.title == TITLE)
    (table,) = [b for b in section.blocks if isinstance(b, Table)]
    assert table.title == "Stage I over seeds: gradient/top3/zero"
    by_group = {row[0]: row for row in table.rows}
    seen = by_group["waterbird-land"]
    assert seen[1:5] == ["0, 1, 2", "-3.0", "-1.0", "-1.0 / -1.0"]
    assert seen[5:7] == ["-2.0 ± 0.6", "0.037"]  # train: critical − control, paired p
    assert seen[9:] == ["-2.0 ± 0.6", "0.037", "3 of 3", "seen"]
    lost = by_group["landbird-water"]
    assert lost[7] == "-67.0 ± 0.6" and lost[8] == "0.000"  # the test drop, beyond the control
    assert lost[11:] == ["0 of 3", "not seen"]
    notes = [b.text for b in section.blocks if isinstance(b, Text)]
    assert any(
        n.startswith(
            "gradient/top3/zero, waterbird-land: signature seen in 3 of 3 seeds; over seeds Δtrain − Δtest "
            "beats the control at p = 0.037 and test holds"
        )
        for n in notes
    )
    assert any("landbird-water" in n and "but test drops beyond the control's spread" in n for n in notes)
    assert "test Δ drops by no more than the control's spread" in table.caption  # the rule, in the caption


def test_no_stage1_table_with_one_seed_and_a_broken_record_is_named(tmp_path: Path) -> None:
    one = build_report(_sweep(tmp_path / "one", [[readout_row("waterbird-land", -3.0, -1.0)]]))
    assert TITLE not in [s.title for s in one.sections]
    sweep = _sweep(tmp_path / "two", [[readout_row("waterbird-land", -3.0 - s, -1.0)] for s in range(3)])
    folder = json.loads((sweep / "sweep.json").read_text())["points"][1]["dir"]
    (sweep / folder / "artifacts" / "stage1_readouts.json").write_text("{not json", encoding="utf-8")
    section = next(s for s in build_report(sweep).sections if s.title == TITLE)
    warnings = [b.text for b in section.blocks if isinstance(b, Text) and b.kind == "warning"]
    assert len(warnings) == 1 and f"{folder}/artifacts/stage1_readouts.json could not be read" in warnings[0]
    (table,) = [b for b in section.blocks if isinstance(b, Table)]
    assert table.rows[0][1] == "0, 2"  # the two readable seeds
