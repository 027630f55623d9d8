"""The console's session record: appended line by line, found again for the same model."""

from __future__ import annotations

from pathlib import Path

from labconsole.engine.records import ConsoleReadout, Ranking, Readout, SessionSetup
from labconsole.engine.runs import RunDir
from labconsole.engine.stage1.session_record import READOUTS, SessionRecord

GROUPS = ["landbird-land", "landbird-water", "waterbird-land", "waterbird-water"]
COUNTS = {"landbird-land": 3498, "landbird-water": 184, "waterbird-land": 56, "waterbird-water": 1057}
MODEL = SessionSetup(
    dataset="synthetic-waterbirds", backbone="cifar_resnet8", checkpoint="runs/x/checkpoints/best.safetensors"
)


def readout(delta: float) -> ConsoleReadout:
    split = {
        "baseline": {g: 0.9 for g in GROUPS},
        "after": {g: 0.9 + delta / 100 for g in GROUPS},
        "delta_pp": {g: delta for g in GROUPS},
        "spread_pp": {g: 0.0 for g in GROUPS},
    }
    return ConsoleReadout(readout=Readout(mode="zero", neurons=[("conv1", 3)], splits={"train": split, "test": split}))


def test_lines_are_appended_in_order_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    record = SessionRecord.create(tmp_path, MODEL, GROUPS, COUNTS)
    record.add_ranking(Ranking(criterion="gradient", group="waterbird-land", k=3, neurons=[("conv1", 3, 0.5)]))
    record.add_readout(readout(-4.0))
    with open(record.path / READOUTS, "a", encoding="utf-8") as handle:
        handle.write('{"type": "readout", "seq": 3, "readout": {')  # a crash mid-write
    again = SessionRecord(record.path)
    assert [line["type"] for line in again.entries()] == ["ranking", "readout"]
    assert [line["seq"] for line in again.entries()] == [1, 2]
    assert again.readouts()[0].readout.splits["test"].delta_pp["waterbird-land"] == -4.0
    assert again.entries()[1]["checkpoint"] == MODEL.checkpoint  # the model each line was made on
    manifest = again.manifest()
    assert manifest.kind == "console-session" and manifest.minority_groups == ["landbird-water", "waterbird-land"]
    assert RunDir(record.path).status() == "done"  # never offered for resuming


def test_the_same_model_continues_its_newest_record_and_another_model_gets_its_own(tmp_path: Path) -> None:
    first = SessionRecord.create(tmp_path, MODEL, GROUPS, COUNTS, when=1_700_000_000)
    first.add_readout(readout(-1.0))
    on_gpu = MODEL.model_copy(update={"device": "cuda"})
    reopened = SessionRecord.open_or_create(tmp_path, on_gpu, GROUPS, COUNTS)
    assert reopened.path == first.path
    reopened.add_readout(readout(-2.0))
    assert [line["seq"] for line in SessionRecord(first.path).entries()] == [1, 2]
    other = SessionRecord.open_or_create(tmp_path, MODEL.model_copy(update={"checkpoint": ""}), GROUPS, COUNTS)
    assert other.path != first.path and other.entries() == []
