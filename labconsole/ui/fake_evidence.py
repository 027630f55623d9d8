"""The demo engine's evidence: a layer-matched control with p, the signature and flipped
examples, made up but shaped like ``labconsole.engine.stage1.evidence``'s (deterministic, no
torch), and the small coloured images the flip preview shows."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

# The engine's statistics and verdict rule (pure Python, no torch), so the demo judges alike.
from labconsole.engine.stage1.evidence_stats import empirical_p, held_on_test, mean_sd, signature_seen
from labconsole.ui.engine_port import ImagePixels, NeuronRef

if TYPE_CHECKING:  # pydantic records, imported where one is built
    from labconsole.engine.records import GroupFlips, MeasuredEvidence, Readout, Signature

# Per split, how many examples each group has (train = the Waterbirds training counts).
SPLIT_SIZES = {
    "train": {"landbird-land": 3498, "landbird-water": 184, "waterbird-land": 56, "waterbird-water": 1057},
    "test": {"landbird-land": 2255, "landbird-water": 2255, "waterbird-land": 642, "waterbird-water": 642},
}


def control_draw(neurons: Sequence[NeuronRef], split: str, draw: int, groups: Sequence[str]) -> dict[str, float]:
    """Draw ``draw``'s Δ pp per group: a small drop with noise (draw d is the same whatever the
    number of draws, as in the engine)."""
    rng = random.Random(f"{sorted(neurons)}|{split}|{draw}")
    return {g: round(-0.4 - 0.3 * i + rng.gauss(0.0, 0.8), 2) for i, g in enumerate(groups)}


def flips(
    neurons: Sequence[NeuronRef], split: str, delta_pp: Mapping[str, float | None], groups: Sequence[str]
) -> dict[str, GroupFlips]:
    """Per group, examples that went right → wrong (about −Δ of the group) and a few back;
    ids are positions in the split (groups one after the other)."""
    from labconsole.engine.records import GroupFlips

    out: dict[str, GroupFlips] = {}
    start = 0
    for g in groups:
        size = SPLIT_SIZES[split][g]
        drop = max(0.0, -(delta_pp.get(g) or 0.0))
        to_wrong_n = min(size, round(size * drop / 100) + 1)
        to_right_n = min(size - to_wrong_n, to_wrong_n // 8)
        rng = random.Random(f"{sorted(neurons)}|{split}|{g}|flips")
        picked = sorted(rng.sample(range(start, start + size), to_wrong_n + to_right_n))
        rng.shuffle(picked)
        to_wrong, to_right = sorted(picked[:to_wrong_n]), sorted(picked[to_wrong_n:])
        out[g] = GroupFlips(
            n=size,
            n_to_wrong=len(to_wrong),
            n_to_right=len(to_right),
            to_wrong=to_wrong[:500],
            to_right=to_right[:500],
        )
        start += size
    return out


def fake_evidence(readout: Readout, groups: Sequence[str], draws: int) -> MeasuredEvidence:
    """The layer-matched control of ``readout`` over its first ``draws`` draws: the critical Δ
    is the readout's own, the control's ``after`` is over the readout's baseline. The record
    ``evidence_readout`` returns (the demo draws no neurons: no ``control_neurons``)."""
    from labconsole.engine.records import MeasuredEvidence, ReadoutSplit

    neurons = [(str(n[0]), int(n[1])) for n in readout.neurons]
    critical = {split: dict(part.delta_pp) for split, part in readout.splits.items()}
    draws_pp = {
        split: {g: [control_draw(neurons, split, d, groups)[g] for d in range(draws)] for g in groups}
        for split in critical
    }
    control: dict[str, ReadoutSplit] = {}
    p: dict[str, dict[str, float | None]] = {}
    for split, per_group in draws_pp.items():
        stats = {g: mean_sd(values) for g, values in per_group.items()}
        baseline = readout.splits[split].baseline
        control[split] = ReadoutSplit(
            baseline=dict(baseline),
            after={g: (baseline[g] or 0.0) + (stats[g][0] or 0.0) / 100 for g in groups},
            delta_pp={g: None if stats[g][0] is None else round(stats[g][0] or 0.0, 2) for g in groups},
            spread_pp={g: None if stats[g][1] is None else round(stats[g][1] or 0.0, 2) for g in groups},
        )
        p[split] = {
            g: None if critical[split][g] is None else empirical_p(critical[split][g] or 0.0, per_group[g])
            for g in groups
        }
    return MeasuredEvidence(
        kind="layer-matched",
        draws=draws,
        critical=critical,
        control=control,
        draws_pp=draws_pp,
        p=p,
        signature=signature(critical, draws_pp, groups),
        flips={s: flips(neurons, s, critical[s], groups) for s in critical},
        flip_ids="positions in the split",
    )


def with_fake_evidence(readout: Readout, groups: Sequence[str], draws: int) -> Readout:
    """``readout`` with ``fake_evidence`` as its control and evidence, merged as the engine's
    ``with_evidence`` merges a layer-matched control into the readout it belongs to."""
    found = fake_evidence(readout, groups, draws)
    return found.merged_into(readout, found.kind)


def signature(
    critical: Mapping[str, Mapping[str, float | None]],
    draws_pp: Mapping[str, Mapping[str, Sequence[float]]],
    groups: Sequence[str],
) -> Signature | None:
    """Δtrain − Δtest per group against the same on every draw (the engine's rule; the demo
    keeps no per-draw ``control_pp``)."""
    from labconsole.engine.records import Signature

    if "train" not in critical or "test" not in critical:
        return None
    out = Signature(critical_pp={}, control_mean_pp={}, control_sd_pp={}, p={}, test_held={}, verdict={})
    for g in groups:
        train, test = critical["train"].get(g), critical["test"].get(g)
        ctrl = [a - b for a, b in zip(draws_pp["train"][g], draws_pp["test"][g])]
        value = None if train is None or test is None else train - test
        mean, sd = mean_sd(ctrl)
        p = None if value is None else empirical_p(value, ctrl)
        out.critical_pp[g], out.control_mean_pp[g], out.control_sd_pp[g], out.p[g] = value, mean, sd, p
        held = held_on_test(test, mean_sd(draws_pp["test"][g])[1])
        out.test_held[g] = held
        out.verdict[g] = "seen" if signature_seen(value, p, held) else "not seen"
    return out


def example_image(position: int, size: int) -> ImagePixels:
    """A made-up bird: a coloured disc on a land (green) or water (blue) background, by id."""
    rng = random.Random(position)
    water = position % 2 == 1
    background = (40, 90 + rng.randrange(40), 170) if water else (70 + rng.randrange(40), 130, 50)
    bird = (230, 200, 60) if rng.random() < 0.5 else (150, 90, 40)
    cx, cy, r = size / 2 + rng.uniform(-1, 1), size / 2 + rng.uniform(-1, 1), size / 3.2
    return [
        [bird if (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r else background for x in range(size)]
        for y in range(size)
    ]
