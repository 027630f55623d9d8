"""A console session record renders in the report like headless Stage I readouts."""

from __future__ import annotations

from pathlib import Path

from labconsole.engine.records import ConsoleReadout, Ranking, Readout, SessionSetup
from labconsole.engine.stage1.session_record import SessionRecord
from labconsole.report import build_report
from labconsole.report.doc import Figure, Table

GROUPS = ["landbird-land", "landbird-water", "waterbird-land", "waterbird-water"]
COUNTS = {"landbird-land": 3498, "landbird-water": 184, "waterbird-land": 56, "waterbird-water": 1057}


def split(delta: dict[str, float], spread: float) -> dict[str, dict[str, float]]:
    return {
        "baseline": {g: 0.9 for g in GROUPS},
        "after": {g: 0.9 + delta[g] / 100 for g in GROUPS},
        "delta_pp": delta,
        "spread_pp": {g: spread for g in GROUPS},
    }


def test_a_session_record_has_its_model_rankings_and_readouts_with_control(tmp_path: Path) -> None:
    model = SessionSetup(dataset="synthetic-waterbirds", backbone="cifar_resnet8", checkpoint="runs/a/best.safetensors")
    record = SessionRecord.create(tmp_path, model, GROUPS, COUNTS)
    record.add_ranking(Ranking(criterion="gradient", group="waterbird-land", k=3, neurons=[("layer3.0.conv2", 4, 0.9)]))
    hit = {"landbird-land": -0.5, "landbird-water": -12.0, "waterbird-land": -20.0, "waterbird-water": -0.2}
    control = {g: -0.4 for g in GROUPS}
    record.add_readout(
        ConsoleReadout(
            criterion="gradient",
            ranked_group="waterbird-land",
            readout=Readout(
                mode="zero",
                neurons=[("layer3.0.conv2", 4)],
                splits={"train": split(hit, 0.0), "test": split(hit, 0.0)},
                control={"train": split(control, 0.3), "test": split(control, 0.3)},
            ),
        )
    )
    report = build_report(record.path)
    titles = [s.title for s in report.sections]
    assert "Console session" in titles and "Console session: readouts" in titles
    ours = [s for s in report.sections if s.title.startswith("Console session")]
    assert not any("could not" in str(block) for s in ours for block in s.blocks)
    session = next(s for s in report.sections if s.title == "Console session")
    model_table = next(b for b in session.blocks if isinstance(b, Table) and b.title == "model used")
    assert ["checkpoint", "runs/a/best.safetensors"] in model_table.rows
    readouts = next(s for s in report.sections if s.title == "Console session: readouts")
    tables = [b for b in readouts.blocks if isinstance(b, Table)]
    assert [t.title for t in tables] == ["Stage I readouts on train", "Stage I readouts on test"]
    row = tables[1].rows[0]
    assert row[2 + GROUPS.index("waterbird-land")] == "-20.00"
    assert row[-1] == " / ".join(["-0.40 ± 0.30"] * 4)  # the control per group, mean ± sd
    assert any(isinstance(b, Figure) for b in readouts.blocks)
    assert "config.toml is missing" not in repr(report.sections[0].blocks)  # a session trains nothing


def test_labconsole_report_renders_a_console_session_record_and_still_refuses_a_foreign_folder(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import sys

    import pytest

    from labconsole.cli.app import main

    def cli(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["labconsole", *args])
        monkeypatch.setenv("COLUMNS", "200")
        with pytest.raises(SystemExit) as exited:
            main()
        captured = capsys.readouterr()
        code = exited.value.code
        return (code if isinstance(code, int) else 0), captured.out + captured.err

    model = SessionSetup(dataset="synthetic-waterbirds", backbone="cifar_resnet8", checkpoint="runs/a/best.safetensors")
    record = SessionRecord.create(tmp_path / "runs", model, GROUPS, COUNTS)
    code, output = cli("report", "--format", "md", str(record.path))
    assert code == 0, output
    assert "Console session" in (record.path / "report.md").read_text(encoding="utf-8")
    # a folder with someone else's manifest.json is still refused, nothing written
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text('{"name": "a web app", "kind": "console-session"}')
    code, output = cli("report", str(other))
    assert code == 2 and "not a labconsole run" in output, output
    assert sorted(p.name for p in other.iterdir()) == ["manifest.json"]
