"""Stage I evidence over model seeds, read from each run's recorded readouts
(``artifacts/stage1_readouts.json``), never recomputed.

For one readout (criterion, score, k or percent, mode, …) and one minority group, every seed
gives the critical set's Δtrain and Δtest, its control's mean Δ on each split, the signature
Δtrain − Δtest with its control mean, and the empirical p's the run recorded. Over seeds,
``paired_over_seeds`` pairs critical with control seed by seed (mean ± s.e. of the difference,
one-sided paired t-test) on train, on test and on the signature.

The verdict over seeds asks what the per-seed verdict asks (``evidence_stats.signature_seen``),
over seeds: the signature beats its control (paired difference negative at p < SIGNIFICANCE)
and the test accuracy holds (the mean test Δ drops by no more than the control's mean spread
on test, ``held_on_test``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from labconsole.engine.records import ReadoutRow, ReadoutsArtifact
from labconsole.engine.stage1.evidence_stats import SIGNIFICANCE, held_on_test, paired_over_seeds, signature_seen

Paired = dict[str, float | int | None]  # ``paired_over_seeds``' result


@dataclass(frozen=True)
class SeedCell:
    """One seed's recorded numbers for one readout and group (pp; the signature's p as recorded)."""

    seed: int
    train_pp: float
    test_pp: float
    control_train_pp: float
    control_test_pp: float
    control_test_sd_pp: float  # the control draws' spread on test
    signature_pp: float
    control_signature_pp: float
    signature_p: float | None

    @property
    def seen(self) -> bool:
        """This seed's verdict under today's rule, from its recorded numbers."""
        return signature_seen(self.signature_pp, self.signature_p, self.test_held)

    @property
    def test_held(self) -> bool | None:
        return held_on_test(self.test_pp, self.control_test_sd_pp)


@dataclass
class OverSeeds:
    """One readout and minority group over seeds."""

    readout: str  # e.g. "gradient/top3/zero" (score "paper" left out)
    group: str
    ranked_on: str | None  # the group the neurons were ranked on; None for a global ranking
    cells: list[SeedCell] = field(default_factory=list)

    @property
    def seeds(self) -> list[int]:
        return [c.seed for c in self.cells]

    def paired(self, part: str) -> Paired:
        """Critical − control paired by seed on ``part``: "train", "test" or "signature"."""
        pairs = {
            "train": [(c.train_pp, c.control_train_pp) for c in self.cells],
            "test": [(c.test_pp, c.control_test_pp) for c in self.cells],
            "signature": [(c.signature_pp, c.control_signature_pp) for c in self.cells],
        }[part]
        return paired_over_seeds([a for a, _ in pairs], [b for _, b in pairs])

    def mean(self, name: str) -> float:
        values = [float(getattr(c, name)) for c in self.cells]
        return sum(values) / len(values)

    @property
    def seen_in(self) -> int:
        return sum(1 for c in self.cells if c.seen)

    @property
    def test_held(self) -> bool:
        return held_on_test(self.mean("test_pp"), self.mean("control_test_sd_pp")) is True

    @property
    def seen(self) -> bool:
        sig = self.paired("signature")
        mean, p = sig["mean_pp"], sig["p_one_sided"]
        return mean is not None and p is not None and mean < 0 and p < SIGNIFICANCE and self.test_held

    def verdict(self) -> str:
        """ "signature seen in 1 of 3 seeds; over seeds Δtrain − Δtest beats the control at
        p = 0.012 and test holds (Δtest −1.0 pp, control spread 4.0 pp): seen" — from the
        recorded numbers only."""
        n = len(self.cells)
        sig = self.paired("signature")
        sig_p, mean = sig["p_one_sided"], sig["mean_pp"]
        beats = mean is not None and sig_p is not None and mean < 0 and sig_p < SIGNIFICANCE
        text = f"signature seen in {self.seen_in} of {n} seeds; over seeds Δtrain − Δtest "
        text += ("beats" if beats else "does not beat") + f" the control at p = {_p(sig_p)}"
        text += " and test holds" if self.test_held else " but test drops beyond the control's spread"
        text += f" (Δtest {self.mean('test_pp'):+.1f} pp, control spread {self.mean('control_test_sd_pp'):.1f} pp)"
        return text + (": seen" if self.seen else ": not seen")


def _p(value: float | int | None) -> str:
    return "—" if value is None else f"{float(value):.3f}"


def readout_name(row: ReadoutRow) -> str:
    """The readout without the group it was ranked on: criterion (score), k or percent, mode."""
    # Rows recorded before the score was a typed field keep it as an extra key (or lack it).
    score = str(getattr(row, "score", None) or "paper")
    parts = [row.criterion + ("" if score == "paper" else f" ({score})")]
    parts.append(f"top{row.percent:g}%" if row.percent is not None else f"top{row.k}")
    parts.append(row.mode + (f" σ={row.std:g}" if row.std is not None and row.mode != "zero" else ""))
    if row.where != "weight":
        parts.append(row.where)
    return "/".join(parts)


def _cell(seed: int, row: ReadoutRow, group: str) -> SeedCell | None:
    """The seed's numbers for ``group``, or None when the run did not record all of them."""
    found = row.evidence
    sig = found.signature if found is not None else None
    control = row.control or {}
    if found is None or sig is None or "train" not in control or "test" not in control:
        return None
    recorded = [
        found.critical.get("train", {}).get(group),
        found.critical.get("test", {}).get(group),
        control["train"].delta_pp.get(group),
        control["test"].delta_pp.get(group),
        control["test"].spread_pp.get(group),
        sig.critical_pp.get(group),
        sig.control_mean_pp.get(group),
    ]
    values = [float(v) for v in recorded if v is not None]
    if len(values) < len(recorded):
        return None
    train, test, control_train, control_test, control_test_sd, signature_pp, control_signature = values
    return SeedCell(
        seed=seed,
        train_pp=train,
        test_pp=test,
        control_train_pp=control_train,
        control_test_pp=control_test,
        control_test_sd_pp=control_test_sd,
        signature_pp=signature_pp,
        control_signature_pp=control_signature,
        signature_p=sig.p.get(group),
    )


def over_seeds(runs: Sequence[tuple[int, ReadoutsArtifact]]) -> list[OverSeeds]:
    """Per readout and minority group (the group it was ranked on, or every minority group for
    a global ranking), the seeds' recorded numbers; only entries with two or more seeds, in
    the order the readouts were first recorded. A seed given twice is refused."""
    if len({seed for seed, _ in runs}) != len(runs):
        raise ValueError("over_seeds: one readouts record per model seed")
    entries: dict[tuple[str, str, str | None], OverSeeds] = {}
    for seed, artifact in sorted(runs, key=lambda item: item[0]):
        for row in artifact.rows:
            for group in artifact.minority_groups:
                if row.ranked_group not in (None, group):
                    continue
                cell = _cell(seed, row, group)
                if cell is None:
                    continue
                key = (readout_name(row), group, row.ranked_group)
                entry = entries.setdefault(key, OverSeeds(readout=key[0], group=group, ranked_on=row.ranked_group))
                if seed not in entry.seeds:  # a readout repeated within one run counts once
                    entry.cells.append(cell)
    return [e for e in entries.values() if len(e.cells) >= 2]
