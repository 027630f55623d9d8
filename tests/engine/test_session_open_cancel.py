"""Opening a session stops at the first chunk boundary after a cancel and writes nothing half-done."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from labconsole.engine.context import Cancelled
from labconsole.engine.models.checkpoint import save_checkpoint
from labconsole.engine.models.factory import create_model
from labconsole.engine.stage1.session import Session
from labconsole.presets import load_preset


class SetAfter:
    """A cancel token that reads as set from its ``looks + 1``-th look on; counts every look."""

    def __init__(self, looks: int) -> None:
        self.unset_looks = looks
        self.looks = 0

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks > self.unset_looks


def tiny_run(tmp_path: Path) -> Path:
    """A run folder with the smoke quickstart's config and a tiny checkpoint, no dataset cache."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(load_preset("quickstart", smoke=True).to_toml(), encoding="utf-8")
    torch.manual_seed(0)
    model = create_model("cifar_resnet8", 2, width=8)
    meta = {"backbone": "cifar_resnet8", "num_classes": 2, "width": 8, "dataset": "synthetic-waterbirds"}
    return save_checkpoint(run / "checkpoints" / "best", model, meta)


def cache_files(checkpoint: Path) -> list[Path]:
    return sorted((checkpoint.parent.parent / "cache").glob("dataset-*"))


def test_a_cancelled_open_stops_at_the_next_chunk_and_writes_no_cache(tmp_path: Path) -> None:
    checkpoint = tiny_run(tmp_path)
    whole = SetAfter(10**6)
    Session.open(checkpoint=str(checkpoint), device="cpu", cancel=whole)
    chunks = whole.looks
    # resolving, the cache look-up, two background banks and three splits, the cache write, the weights
    assert chunks >= 8, f"the open checked its token only {chunks} times"
    for path in cache_files(checkpoint):  # the complete open kept the dataset: build it again
        path.unlink()
    for unset in (0, 3, chunks - 2):  # before any work, inside the dataset build, just before the cache
        token = SetAfter(unset)
        with pytest.raises(Cancelled):
            Session.open(checkpoint=str(checkpoint), device="cpu", cancel=token)
        assert token.looks == unset + 1, f"set after {unset} looks, the open went on for {token.looks - unset - 1}"
        assert cache_files(checkpoint) == [], "a cancelled open left dataset cache files behind"


def test_a_cancelled_open_of_fresh_weights_stops_inside_the_dataset_build(tmp_path: Path) -> None:
    token = SetAfter(2)  # set by the check after the second background bank
    with pytest.raises(Cancelled, match="cancelled"):
        Session.open(dataset="synthetic-waterbirds", backbone="cifar_resnet8", device="cpu", cancel=token)
    assert token.looks == 3
