"""The demo engine's interactive session: rankings and readouts with made-up, deterministic
numbers. A readout first sends a progressive estimate (≈, with a 95 % interval per group), as
the real session does, then answers with the exact numbers."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labconsole.errors import UserError
from labconsole.ui.engine_port import ImagePixels, LayerInfo, NeuronRef, RankedNeuron
from labconsole.ui.fake_data import BASELINE, GROUPS, LAYERS, TRAIN_COUNTS
from labconsole.ui.fake_evidence import example_image, with_fake_evidence

if TYPE_CHECKING:
    from labconsole.engine.records import Readout
    from labconsole.ui.fake_engine import FakeEngine


@dataclass
class FakeSession:
    engine: FakeEngine
    group_names: tuple[str, ...] = GROUPS
    train_group_counts: dict[str, int] = field(default_factory=lambda: dict(TRAIN_COUNTS))
    # while unset, a matched control holds after its first draws (a test sees them provisional)
    partial_gate: threading.Event | None = None

    def layers(self) -> list[LayerInfo]:
        return list(LAYERS)

    def rank(
        self,
        criterion: str,
        group: str | None,
        scope: str,
        k: float,
        score: str = "paper",
        progress: Callable[[int, int], None] | None = None,
    ) -> list[RankedNeuron]:
        """``progress`` counts groups scored, one per group, as the engine does: the first
        before ``engine.call_gate`` is waited for (a test sees ``1/N`` mid-call), the rest after."""
        self.engine.calls.append(("rank", criterion, group, scope, k, score))
        counted = len(self.group_names)
        if progress is not None:
            progress(1, counted)
        self.engine.wait_call()
        for done in range(2, counted + 1):
            if progress is not None:
                progress(done, counted)
        if score == "specific" and (criterion == "magnitude" or group is None):
            raise UserError(  # the engine's own refusal
                "the specificity score compares one group's gradient or activation score with the other "
                "groups': give a group and criterion gradient or activation"
            )
        seed = f"{criterion}|{group if criterion != 'magnitude' else ''}" + ("|specific" if score == "specific" else "")
        rng = random.Random(seed)
        scored = [
            (layer.name, i, round(rng.random() * (1 + depth), 4))
            for depth, layer in enumerate(LAYERS)
            for i in range(layer.neurons)
        ]
        scored.sort(key=lambda item: -item[2])
        if scope == "per-layer":
            kept = []
            for layer in LAYERS:
                kept.extend([s for s in scored if s[0] == layer.name][: int(k)])
            return sorted(kept, key=lambda item: -item[2])
        if scope == "top-percent":
            return scored[: max(1, math.ceil(len(scored) * float(k) / 100))]
        return scored[: int(k)]

    def readout(
        self,
        neurons: Sequence[NeuronRef],
        mode: str,
        std: float,
        seeds: int,
        splits: Sequence[str] = ("train", "test"),
        control: bool = False,
        on_estimate: Callable[[Readout], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Readout:
        """Like the real session: ``on_estimate`` gets the first numbers (≈, ``ci_pp`` per group),
        then the exact ones are returned (held back while ``engine.exact_gate`` is unset).
        ``progress`` counts chunks of the walk, a subsample and the rest per split: the first
        before ``engine.call_gate`` is waited for, the subsamples' with the estimate, the rest last."""
        self.engine.calls.append(("readout", tuple(neurons), mode, std, seeds))
        chunks = 2 * len(splits)
        report = progress or (lambda _done, _total: None)
        report(1, chunks)
        self.engine.wait_call()
        report(len(splits), chunks)
        strength = {"zero": 1.0, "reinit": 0.8, "noise": 0.3}[mode] * (1 + std * 20)
        from labconsole.engine import records  # the engine's own record, as the real session returns

        splits_of = {s: self._split(s, neurons, strength, seeds, mode) for s in splits}
        # the control's spread is over its draws of random neurons, whatever the mode
        control_of = {s: self._split(s, neurons, strength * 0.1, 3, "noise") for s in splits} if control else None
        shell = {
            "mode": mode,
            "std": None if mode == "zero" else float(std),
            "seeds": 1 if mode == "zero" else int(seeds),
            "neurons": [list(n) for n in neurons],
            "wga_quantum_pp": {"train": 100 / 56, "test": 100 / 642},
        }
        if on_estimate is not None:
            estimate = {
                "splits": {s: estimate_of(d) for s, d in splits_of.items()},
                "control": {s: estimate_of(d, 19.5) for s, d in control_of.items()} if control_of else None,
            }
            on_estimate(records.Readout.model_validate({**shell, **estimate, "estimate": True}))
            if self.engine.exact_gate is not None:
                self.engine.exact_gate.wait(timeout=10)
        exact = records.Readout.model_validate({**shell, "splits": splits_of, "control": control_of})
        report(chunks, chunks)
        return exact

    def _split(
        self, split: str, neurons: Sequence[NeuronRef], strength: float, seeds: int, mode: str
    ) -> dict[str, Any]:
        base = BASELINE[split]
        hurt = sum(1 + index % 3 for _, index in neurons) * strength
        minority_weight = (0.2, 1.6, 1.2, 0.1)  # minority groups are the fragile ones
        after = [max(0.0, b - hurt * w / 100) for b, w in zip(base, minority_weight)]
        spread = 0.0 if mode == "zero" or seeds <= 1 else 0.4 * strength
        return {
            "baseline": dict(zip(GROUPS, base)),
            "after": dict(zip(GROUPS, after)),
            "delta_pp": {g: round((a - b) * 100, 2) for g, a, b in zip(GROUPS, after, base)},
            "spread_pp": {g: round(spread * w, 2) for g, w in zip(GROUPS, minority_weight)},
        }

    def matched_control(
        self,
        readout: Readout,
        draws: int = 20,
        first_draws: int = 3,
        *,
        on_partial: Callable[[Readout], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Readout:
        """Like the engine's: the draws in batches of ``first_draws``, counted into
        ``progress``; after each batch but the last ``on_partial`` gets the readout with the
        control over the draws so far (after the first, it holds while ``partial_gate`` is
        unset: a test sees the first draws provisional). Δ is the readout's own."""
        neurons = tuple((str(n[0]), int(n[1])) for n in readout.neurons)
        self.engine.calls.append(
            ("matched_control", neurons, readout.mode, readout.std, readout.seeds, draws, first_draws)
        )
        report = progress or (lambda _done, _total: None)
        report(0, draws)
        self.engine.wait_call()
        done = 0
        while done < draws:
            done = min(draws, done + max(1, first_draws))
            report(done, draws)
            if on_partial is not None and done < draws:
                on_partial(with_fake_evidence(readout, GROUPS, done))
                if done <= first_draws:
                    self._hold_after_first_draws()
        return with_fake_evidence(readout, GROUPS, draws)

    def _hold_after_first_draws(self) -> None:
        """Wait while ``partial_gate`` is unset (10 s at most), and, as the engine stops its
        walk, not once the console stopped waiting for the call (Esc, or the console closing)."""
        from textual.worker import NoActiveWorker, get_current_worker

        if self.partial_gate is None:
            return
        try:
            worker = get_current_worker()
        except NoActiveWorker:
            worker = None
        deadline = time.monotonic() + 10
        while not self.partial_gate.wait(timeout=0.05):
            if (worker is not None and worker.is_cancelled) or time.monotonic() > deadline:
                return

    def example_images(self, split: str, ids: Sequence[int], size: int) -> list[ImagePixels]:
        self.engine.calls.append(("example_images", split, tuple(ids), size))
        return [example_image(int(i), int(size)) for i in ids]

    def random_neurons(self, count: int, seed: int) -> list[NeuronRef]:
        self.engine.calls.append(("random_neurons", count, seed))
        everything = [(layer.name, i) for layer in LAYERS for i in range(layer.neurons)]
        return random.Random(seed).sample(everything, min(count, len(everything)))

    def close(self) -> None:
        self.engine.calls.append(("close",))


def estimate_of(exact: dict[str, Any], extra_spread: float = 0.0, sampled: int = 64) -> dict[str, Any]:
    """A subsample's estimate of an exact split readout: a little off, with a wide, lopsided
    95 % interval (as the engine's Wilson intervals are), ``sampled`` images per group; a
    control's spread over its few draws is wider on a subsample (``extra_spread`` pp)."""
    delta = {g: None if d is None else round(d * 1.1 - 0.37, 2) for g, d in exact["delta_pp"].items()}
    after = {g: None if d is None else b + d / 100 for (g, b), d in zip(exact["baseline"].items(), delta.values())}
    return {
        **exact,
        "after": after,
        "delta_pp": delta,
        "spread_pp": {g: None if v is None else round(v + extra_spread, 2) for g, v in exact["spread_pp"].items()},
        "ci_pp": {g: None if d is None else [round(d - 6.05, 2), round(d + 4.45, 2)] for g, d in delta.items()},
        "sampled": dict.fromkeys(delta, sampled),
        "of": {g: sampled * 10 for g in delta},
    }
