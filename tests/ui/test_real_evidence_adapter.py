"""The real adapter's evidence calls, on a stand-in session (no training): the specificity score
reaches the engine's ranking, the matched control is one engine call whose partial and final
results come back merged into the readout (draw d the same set in all), and example images come
from the tensor cache by position."""

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


def test_the_matched_control_is_one_engine_call_merged_into_the_readout(monkeypatch) -> None:
    import labconsole.engine.stage1.evidence as evidence
    from labconsole.engine.records import MeasuredEvidence, Readout

    calls: list[dict[str, Any]] = []

    def found_over(draws: int) -> MeasuredEvidence:
        control = {"train": {"baseline": {"a": 0.9}, "after": {"a": 0.8}, "delta_pp": {"a": -10.0}}}
        neurons = [[["conv1", 5]]] * draws
        return MeasuredEvidence.model_validate(
            {
                "kind": "layer-matched",
                "draws": draws,
                "control": control,
                "control_neurons": neurons,
                "critical": {"train": {"a": -40.0}},
                "p": {"train": {"a": 1 / (draws + 1)}},
            }
        )

    def stand_in_evidence_readout(session: Any, neurons: Any, **kwargs: Any) -> MeasuredEvidence:
        calls.append({"neurons": neurons, **kwargs})
        kwargs["progress"](3, 20)
        kwargs["on_partial"](found_over(3))
        return found_over(20)

    monkeypatch.setattr(evidence, "evidence_readout", stand_in_evidence_readout)
    session = RealSession(StandInSession())  # type: ignore[arg-type]
    readout = Readout(mode="zero", seeds=1, neurons=[("conv1", 3, 0.5)], splits={"train": {"delta_pp": {"a": -40.0}}})
    partial: list[Readout] = []
    counts: list[tuple[int, int]] = []
    result = session.matched_control(
        readout, 20, 3, on_partial=partial.append, progress=lambda done, total: counts.append((done, total))
    )
    assert len(calls) == 1  # one walk over the 20 draws
    asked = calls[0]
    assert asked["neurons"] == [("conv1", 3)] and asked["mode"] == "zero" and asked["splits"] == ("train",)
    assert (asked["draws"], asked["first_draws"], asked["kind"], asked["seed"]) == (20, 3, "layer-matched", 7)
    assert counts == [(3, 20)]
    assert isinstance(partial[0], Readout) and isinstance(result, Readout)
    assert partial[0].evidence is not None and partial[0].evidence.draws == 3
    found = result.evidence
    assert found is not None and found.draws == 20 and found.p["train"]["a"] == pytest.approx(1 / 21)
    assert result.control_kind == "layer-matched" and len(result.control_neurons) == 20
    assert result.control is not None and result.control["train"].delta_pp == {"a": -10.0}
    assert result.split("train").delta_pp == {"a": -40.0}  # the readout's own numbers are kept


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


def test_calls_on_one_session_run_one_at_a_time() -> None:
    """A superseded call runs on until its next cancel check: a newer call waits for it, so two
    calls never edit the model's weights at once."""
    import threading

    inside, release = threading.Event(), threading.Event()
    overlapped: list[bool] = []
    running = threading.Lock()

    class SlowSession(StandInSession):
        def ranking(self, **kwargs: Any) -> Any:
            if not running.acquire(blocking=False):
                overlapped.append(True)  # another call is inside the engine right now
                return super().ranking(**kwargs)
            try:
                inside.set()
                release.wait(10)
                return super().ranking(**kwargs)
            finally:
                running.release()

    session = RealSession(SlowSession())  # type: ignore[arg-type]
    first = threading.Thread(target=lambda: session.rank("gradient", "a", "global", 1))
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=lambda: session.rank("gradient", "b", "global", 1))
    second.start()
    second.join(0.3)
    assert second.is_alive()  # waiting for the first call
    release.set()
    first.join(10)
    second.join(10)
    assert not overlapped and not second.is_alive()
