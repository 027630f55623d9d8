"""The real engine's readers of run directories: the engine's records turned into what the
console shows (the final model's WGA in a run listing, a run's epochs as events, a dataset
check as a verdict line). Engine modules are imported inside the functions, as in
``real_engine``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from labconsole.engine.events import DEFAULT_SELECTION, EpochResult
from labconsole.ui.engine_port import DatasetCheck

if TYPE_CHECKING:
    from labconsole.engine.records import RunSummary


def final_stage_wga(summary: RunSummary, stages_done: Sequence[str]) -> tuple[str, float | None]:
    """(stage, test WGA) of the run's final model: the last finished stage that measured one
    (fine-tuning's ``wga_after``, a stage's own ``splits``), else the top-level (ERM) numbers."""
    for stage in reversed([s for s in stages_done if s != "erm"]):
        for path in (f'["{stage}"].wga_after.test', f'["{stage}"].splits.test.wga'):
            wga = summary.metric(path)
            if wga is not None:
                return stage, wga
    wga = summary.metric("splits.test.wga")
    if wga is not None:
        return ("erm" if "erm" in stages_done else (stages_done[-1] if stages_done else "")), wga
    return "", None


# What an EpochResult line cannot be without (the others have defaults).
EPOCH_LINE_KEYS = ("run_id", "stage", "epoch", "total_epochs", "splits")


def epochs_from_records(lines: Iterable[Mapping[str, object]]) -> list[EpochResult]:
    """``EpochResult`` lines of a ``metrics.jsonl`` → events, in order, read through
    ``records.EpochRecord``; an epoch recorded twice (run again after a resume) keeps its latest
    line, in the place of the first. A line from another version of the engine (a key missing,
    a value that does not fit) is skipped, not fatal."""
    from pydantic import ValidationError

    from labconsole.engine.records import EpochRecord

    latest: dict[tuple[str, int], EpochResult] = {}
    for line in lines:
        if any(key not in line for key in EPOCH_LINE_KEYS):
            continue
        try:
            record = EpochRecord.model_validate(line)
        except ValidationError:
            continue
        given = record.model_fields_set  # a line without a selection used the default rule
        event = EpochResult(
            run_id=str(line["run_id"]),
            stage=record.stage,
            epoch=record.epoch,
            total_epochs=record.total_epochs or 0,
            splits=record.splits,
            train_loss=record.train_loss,
            lr=record.lr,
            is_best=record.is_best,
            best_epoch=record.best_epoch,
            selection=record.selection if "selection" in given else DEFAULT_SELECTION,
        )
        latest[(event.stage, event.epoch)] = event
    return list(latest.values())


def dataset_check_from_report(report: Mapping[str, object]) -> DatasetCheck:
    """``labconsole.engine.data.check.check_dataset``'s report → a verdict line and group counts."""
    from labconsole.engine.records import DatasetCheck as CheckRecord

    check = CheckRecord.model_validate(report)
    verdict = check.verdict or ("loads" if check.ok else "does not load")
    layout = f" ({check.layout} layout)" if check.layout else ""
    message = "; ".join(check.problems) if check.problems else verdict + layout
    counts = {
        split: {row.group: (row.found or 0, row.expected) for row in info.groups}
        for split, info in check.splits.items()
    }
    return DatasetCheck(bool(check.ok), message, counts)
