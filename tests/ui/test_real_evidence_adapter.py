"""The real adapter's evidence calls, on a stand-in session (no training): the specificity score
reaches the engine's ranking, the matched control sends its first draws and then all of them
(draw d the same set in both), and example images come from the tensor cache by position."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from labconsole.errors import UserError
from labconsole.ui.real_engine import RealSession


class StandInSession:
    """What ``RealSession`` reads of an engine ``Session``."""

    def __init__(self, images: torch.Tensor | None = None) -> None:
        self.cancel: Any = None
        self.seed = 7
        self.group_names = ["a", "b"]
        self.train_group_counts = {"a": 10, "b": 2}
        self.asked: list[dict[str, Any]] = []
        self.images = images

    def ranking(self, **kwargs: Any) -> Any:
        self.asked.append(kwargs)
        return SimpleNamespace(neurons=(("conv1", 3, 0.5),))

    def cache(self, split: str) -> Any:
        return SimpleNamespace(images=self.images)


def test_rank_passes_the_score_to_the_engine_ranking() -> None:
    stand_in = StandInSession()
    session = RealSession(stand_in)  # type: ignore[arg-type]
    assert session.rank("gradient", "b", "global", 1, "specific") == [("conv1", 3, 0.5)]
    asked = stand_in.asked[-1]
    assert (asked["criterion"], asked["group"], asked["scope"], asked["k"], asked["score"]) == (
        "gradient",
        "b",
        "global",
        1,
        "specific",
    )


def test_the_matched_control_sends_its_first_draws_then_all(monkeypatch) -> None:
    import labconsole.engine.stage1.evidence as evidence

    calls: list[dict[str, Any]] = []

    def fake_evidence_readout(session: Any, neurons: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return {"kind": kwargs["kind"], "draws": kwargs["draws"], "p": {"train": {"a": 1 / (kwargs["draws"] + 1)}}}

    monkeypatch.setattr(evidence, "evidence_readout", fake_evidence_readout)
    session = RealSession(StandInSession())  # type: ignore[arg-type]
    partial: list[dict[str, Any]] = []
    found = session.matched_control([("conv1", 3)], "zero", 0.01, 1, draws=20, first_draws=3, on_partial=partial.append)
    assert [c["draws"] for c in calls] == [3, 20]
    assert all(c["kind"] == "layer-matched" and c["seed"] == 7 for c in calls)  # the readout's seed
    assert partial[0]["draws"] == 3 and found["draws"] == 20
    assert found["p"]["train"]["a"] == pytest.approx(1 / 21)


def test_the_first_draws_are_the_first_of_the_full_draws() -> None:
    """What makes the provisional numbers a prefix of the full ones (seeded per draw)."""
    from labconsole.engine.stage1.evidence import matched_draws

    critical = [("conv1", 0), ("conv1", 1), ("layer1", 4)]
    sizes = {"conv1": 16, "layer1": 32}
    assert matched_draws(critical, sizes, 3, seed=7) == matched_draws(critical, sizes, 20, seed=7)[:3]


def test_example_images_come_from_the_cache_by_position_and_are_resized() -> None:
    grey = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    grey[1] = 200
    grey[2, :, :2, :] = 100  # top half 100, bottom half 0
    session = RealSession(StandInSession(grey))  # type: ignore[arg-type]
    images = session.example_images("train", [1, 2], 2)
    assert len(images) == 2 and len(images[0]) == 2 and len(images[0][0]) == 2
    assert images[0][0][0] == (200, 200, 200)  # a grey image as grey RGB
    assert images[1][0][0] == (100, 100, 100) and images[1][1][0] == (0, 0, 0)  # area-averaged halves
    with pytest.raises(UserError, match="example 3 is not in train: it has 3 examples"):
        session.example_images("train", [3], 2)
