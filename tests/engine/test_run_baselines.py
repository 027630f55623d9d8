"""The unmodified model's logits kept in the run directory: a later session on the same run,
model and data starts from them; any other model or setting recomputes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from labconsole.engine.models.checkpoint import save_checkpoint
from labconsole.engine.models.factory import create_model
from labconsole.engine.stage1.fast_eval import FastSplitEvaluator
from labconsole.engine.stage1.folding import fold_batchnorm
from labconsole.engine.stage1.session import Session
from labconsole.presets import load_preset

META = {"backbone": "cifar_resnet8", "num_classes": 2, "width": 8, "dataset": "synthetic-waterbirds"}


def tiny_run(tmp_path: Path, seed: int = 0) -> Path:
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "config.toml").write_text(load_preset("quickstart", smoke=True).to_toml(), encoding="utf-8")
    torch.manual_seed(seed)
    save_checkpoint(run / "checkpoints" / "best", create_model("cifar_resnet8", 2, width=8), META)
    return run


class NoPass:
    """Makes any baseline pass of the fast path fail the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = FastSplitEvaluator.logits

        def counted(evaluator: FastSplitEvaluator, part: str, cancel: object) -> torch.Tensor:
            self.calls += 1
            return original(evaluator, part, cancel)  # type: ignore[arg-type]

        monkeypatch.setattr(FastSplitEvaluator, "logits", counted)


def test_a_second_session_reads_the_baseline_the_first_one_kept(tmp_path: Path, monkeypatch) -> None:
    run = tiny_run(tmp_path)
    first = Session.from_checkpoint(run)
    ranking = first.rank("gradient", group="waterbird-land", k=3)
    baseline = first.baseline("train")
    assert len(list((run / "cache").glob("baseline-*-train.pt"))) == 1
    passes = NoPass(monkeypatch)
    second = Session.from_checkpoint(run)
    assert second.rank("gradient", group="waterbird-land", k=3) == ranking
    assert second.baseline("train") == baseline
    assert torch.equal(second.baseline_logits("train"), first.baseline_logits("train"))
    assert passes.calls == 0  # no pass: the logits came from the run directory
    second.baseline("test")
    assert passes.calls == 2  # a split not kept yet is computed (subsample, rest) and kept
    assert len(list((run / "cache").glob("baseline-*-test.pt"))) == 1


def test_other_weights_or_settings_never_read_a_kept_baseline(tmp_path: Path, monkeypatch) -> None:
    run = tiny_run(tmp_path)
    Session.from_checkpoint(run).baseline("train")
    passes = NoPass(monkeypatch)
    tiny_run(tmp_path, seed=1)  # the same run folder, a different model
    Session.from_checkpoint(run).baseline("train")
    assert passes.calls == 2
    session = Session.from_checkpoint(run)
    session.config = session.config.model_copy(update={"batch_size": 7})  # other batches
    session.baseline("train")
    assert passes.calls == 4
    assert len(list((run / "cache").glob("baseline-*-train.pt"))) == 3
    unfused = Session.from_checkpoint(run)  # the same graph without fused kernels (as on a GPU)
    unfused._folded, unfused._folded_tried = fold_batchnorm(unfused.model, fuse=False), True
    unfused.baseline("train")
    assert passes.calls == 6
    assert len(list((run / "cache").glob("baseline-*-train.pt"))) == 4


def test_a_damaged_baseline_file_is_recomputed(tmp_path: Path, monkeypatch) -> None:
    run = tiny_run(tmp_path)
    expected = Session.from_checkpoint(run).baseline("train")
    (kept,) = (run / "cache").glob("baseline-*-train.pt")
    kept.write_bytes(b"not a tensor")
    passes = NoPass(monkeypatch)
    assert Session.from_checkpoint(run).baseline("train") == expected
    assert passes.calls == 2


@pytest.mark.slow
def test_a_run_with_stage_one_leaves_the_baseline_the_console_starts_from(tmp_path: Path, monkeypatch) -> None:
    from labconsole.engine.api import run_job

    preset = load_preset(
        "presets/quickstart.toml",
        ['stages=["erm", "neurons"]', "neurons.top_k=[1]", "neurons.control_draws=0"],
        smoke=True,
    )
    run = run_job(preset, emit=lambda e: None, runs_root=tmp_path)
    passes = NoPass(monkeypatch)
    session = Session.from_checkpoint(run.path)
    session.rank("gradient", group="waterbird-land", k=2)
    session.baseline("test")
    assert passes.calls == 0  # both splits Stage I read out were kept by the run
