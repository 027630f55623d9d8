"""The numbers behind a Stage I readout's evidence: empirical and paired p, and the memorization
signature with its verdict. Plain floats in, plain values (the signature: its record) out, no
model and no torch, so the engine at record time and a sweep over recorded runs apply exactly
the same rule.

* **Significance.** Per group and split, the empirical one-sided p of the critical Δ: the share of
  control draws at least as damaging, counted with the critical set itself,
  ``p = (1 + #{draw Δ ≤ critical Δ}) / (N + 1)`` (never 0; the smallest value N draws can give
  is 1/(N + 1)). Over model seeds, ``paired_over_seeds`` gives the mean ± s.e. of critical minus
  control and a one-sided paired t-test.
* **Memorization signature** (Paper A's claim): critical neurons cut a group's *train* accuracy
  while its *test* accuracy holds. Both halves are required for "seen": ``Δtrain − Δtest`` is
  negative and below its control (the same quantity on every control draw, p < SIGNIFICANCE),
  **and** the group's test accuracy holds: its test Δ drops by no more than the control's
  spread (``Δtest ≥ −sd`` of the draws' test Δ; a gain always holds). A set that wipes a group
  out on train and, a little less, on test (−98 / −67 pp) has a very negative ``Δtrain − Δtest``
  too; the second half is what tells that apart from memorization. It is measured from zero,
  not from the control's mean: when random neurons of the same layers already cost the group
  test accuracy, a critical set that costs as much has not left the test accuracy intact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from labconsole.engine.records.evidence import Signature

SIGNIFICANCE = 0.05


def empirical_p(value: float, controls: Sequence[float]) -> float | None:
    """One-sided empirical p that a control is at least as low as ``value``:
    ``(1 + #{c ≤ value}) / (N + 1)``; None without draws."""
    if not controls:
        return None
    at_least = sum(1 for c in controls if c <= value + 1e-12)
    return (1 + at_least) / (len(controls) + 1)


def mean_sd(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def paired_over_seeds(critical: Sequence[float], control: Sequence[float]) -> dict[str, float | int | None]:
    """Critical Δ vs its control's mean Δ over model seeds (paired by seed): mean and s.e. of the
    difference and a one-sided paired t-test (H1: the critical set is more damaging)."""
    if len(critical) != len(control):
        raise ValueError("paired test: one critical and one control value per seed")
    diffs = [c - k for c, k in zip(critical, control)]
    n = len(diffs)
    mean, sd = mean_sd(diffs)
    se = sd / math.sqrt(n) if sd is not None and n > 1 else None
    p: float | None = None
    t: float | None = None
    if n > 1 and se is not None and mean is not None:
        from scipy import stats

        if se > 0:
            t = mean / se
            p = float(stats.t.cdf(t, df=n - 1))
        else:  # every seed gives the same difference
            t, p = None, (0.0 if mean < 0 else 1.0)
    return {"n": n, "mean_pp": mean, "se_pp": se, "t": t, "p_one_sided": p}


def held_on_test(test_pp: float | None, control_sd_pp: float | None) -> bool | None:
    """Whether the group's test accuracy held under the critical set: its test Δ (pp) dropped by
    no more than the control draws' spread on test (``Δtest ≥ −sd``); None without either."""
    if test_pp is None or control_sd_pp is None:
        return None
    return test_pp >= -control_sd_pp - 1e-9


def signature_seen(value: float | None, p: float | None, held: bool | None) -> bool:
    """Paper A's memorization signature, both halves: ``Δtrain − Δtest`` (``value``) negative and
    below its control at p < SIGNIFICANCE, and the test accuracy held (``held_on_test``)."""
    return value is not None and p is not None and value < 0 and p < SIGNIFICANCE and held is True


def signature(
    critical: Mapping[str, Mapping[str, float | None]],
    draws_pp: Mapping[str, Mapping[str, Sequence[float]]],
    groups: Sequence[str],
) -> Signature | None:
    """Δtrain − Δtest per group for the critical set and each control draw, its p (share of
    draws with a signature at least as negative), whether the test accuracy held (the test Δ
    against the test draws' spread) and the verdict of ``signature_seen``; None without train
    and test."""
    if "train" not in critical or "test" not in critical:
        return None
    values: dict[str, float | None] = {}
    draws: dict[str, list[float]] = {}
    means: dict[str, float | None] = {}
    sds: dict[str, float | None] = {}
    p_values: dict[str, float | None] = {}
    test_held: dict[str, bool | None] = {}
    verdict: dict[str, str] = {}
    for g in groups:
        train, test = critical["train"].get(g), critical["test"].get(g)
        ctrl_train, ctrl_test = draws_pp["train"].get(g, []), draws_pp["test"].get(g, [])
        ctrl = [a - b for a, b in zip(ctrl_train, ctrl_test)]
        value = None if train is None or test is None else train - test
        p = None if value is None else empirical_p(value, ctrl)
        held = held_on_test(test, mean_sd(ctrl_test)[1])
        values[g], draws[g], p_values[g], test_held[g] = value, ctrl, p, held
        means[g], sds[g] = mean_sd(ctrl)
        verdict[g] = "seen" if signature_seen(value, p, held) else "not seen"
    return Signature(
        critical_pp=values,
        control_pp=draws,
        control_mean_pp=means,
        control_sd_pp=sds,
        p=p_values,
        test_held=test_held,
        verdict=verdict,
    )


def verdict_line(sig: Signature | None, groups: Sequence[str], label: str = "") -> str | None:
    """ "memorization signature (Δtrain − Δtest): seen for waterbird-land (−12.0 pp, p = 0.048),
    not seen for landbird-water (−30.0 pp, p = 0.048; test dropped beyond the control's spread)
    at p < 0.05 with test held, 20 control draws" — from the numbers only."""
    if sig is None:
        return None
    parts = []
    for g in groups:
        value, p = sig.critical_pp.get(g), sig.p.get(g)
        if value is None or p is None:
            continue
        dropped = "; test dropped beyond the control's spread" if sig.test_held.get(g) is False else ""
        parts.append(f"{sig.verdict[g]} for {g} ({value:+.1f} pp, p = {p:.3f}{dropped})")
    if not parts:
        return None
    n = len(next(iter(sig.control_pp.values()), []))
    head = f"{label}: " if label else ""
    return (
        f"{head}memorization signature (Δtrain − Δtest): {'; '.join(parts)} at p < {SIGNIFICANCE:g} "
        f"with test held (test Δ ≥ −1 sd of the control's test Δ), {n} control draws"
    )
