"""Stage I evidence over model seeds, from hand-built readouts records with a known answer: the
paired p over seeds, the per-seed count, and the verdict both ways (test held, test dropped)."""

from __future__ import annotations

import math

import pytest

from labconsole.engine.records import ReadoutsArtifact
from labconsole.engine.stage1.evidence_seeds import over_seeds
from tests.engine.evidence_seed_fixtures import readout_row, readouts


def _seeds(rows_per_seed: list[list[dict[str, object]]]) -> list[tuple[int, ReadoutsArtifact]]:
    return [(seed, ReadoutsArtifact.model_validate(readouts(rows))) for seed, rows in enumerate(rows_per_seed)]


def _t2_p(t: float) -> float:
    """One-sided p of a t statistic with 2 degrees of freedom (closed form)."""
    return 0.5 + t / (2 * math.sqrt(2 + t * t))


def test_train_drop_with_test_held_is_the_signature_over_seeds() -> None:
    # Δtrain −2, −3, −4 and Δtest −1 against a control of −1 / −1 (its signature 0; spread on
    # test 2 pp, so a 1 pp test drop holds): the
    # signature's critical − control is −1, −2, −3 (mean −2, s.e. 1/√3, t = −2√3, ν = 2).
    runs = _seeds([[readout_row("waterbird-land", -2.0 - s, -1.0)] for s in range(3)])
    (entry,) = over_seeds(runs)
    assert (entry.readout, entry.group, entry.ranked_on, entry.seeds) == (
        "gradient/top3/zero",
        "waterbird-land",
        "waterbird-land",
        [0, 1, 2],
    )
    sig = entry.paired("signature")
    assert sig["mean_pp"] == pytest.approx(-2.0) and sig["se_pp"] == pytest.approx(1 / math.sqrt(3))
    assert sig["p_one_sided"] == pytest.approx(_t2_p(-2 * math.sqrt(3)))  # 0.037
    assert entry.paired("train")["mean_pp"] == pytest.approx(-2.0)
    assert entry.paired("test")["p_one_sided"] == 1.0  # critical and control equal on test every seed
    assert entry.mean("train_pp") == pytest.approx(-3.0) and entry.mean("control_test_pp") == pytest.approx(-1.0)
    assert entry.seen_in == 3 and entry.test_held and entry.seen
    assert entry.verdict() == (
        "signature seen in 3 of 3 seeds; over seeds Δtrain − Δtest beats the control at p = 0.037 "
        "and test holds (Δtest -1.0 pp, control spread 2.0 pp): seen"
    )


def test_a_test_collapse_is_not_the_signature_over_seeds() -> None:
    # Δtrain −98, −99, −100 with Δtest −67, −68, −69: Δtrain − Δtest (−31 every seed) beats the
    # control, but the group is lost on test too (critical − control −67 ± 0.6 on test).
    runs = _seeds([[readout_row("waterbird-land", -98.0 - s, -67.0 - s)] for s in range(3)])
    (entry,) = over_seeds(runs)
    assert entry.paired("signature")["mean_pp"] == pytest.approx(-31.0)
    assert entry.paired("signature")["p_one_sided"] == 0.0  # the same difference every seed
    test = entry.paired("test")
    assert test["mean_pp"] == pytest.approx(-67.0)
    assert test["p_one_sided"] == pytest.approx(_t2_p(-67.0 * math.sqrt(3)))
    assert entry.seen_in == 0  # each seed's own verdict: the test drop is far beyond the control's spread
    assert not entry.test_held and not entry.seen
    assert entry.verdict().startswith("signature seen in 0 of 3 seeds; over seeds Δtrain − Δtest beats the control")
    assert entry.verdict().endswith(
        "but test drops beyond the control's spread (Δtest -68.0 pp, control spread 2.0 pp): not seen"
    )


def test_a_signature_that_does_not_beat_its_control_is_not_seen() -> None:
    # Signature differences −1, −2, +0.5: mean −0.83, not below the control at 0.05.
    trains = [-2.0, -3.0, -0.5]
    runs = _seeds([[readout_row("waterbird-land", t, -1.0, signature_p=0.5)] for t in trains])
    (entry,) = over_seeds(runs)
    diffs = [-1.0, -2.0, 0.5]
    mean = sum(diffs) / 3
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2) / math.sqrt(3)
    assert entry.paired("signature")["p_one_sided"] == pytest.approx(_t2_p(mean / se))
    assert entry.seen_in == 0 and not entry.seen
    assert "does not beat the control" in entry.verdict()


def test_global_rankings_cover_every_minority_group_and_one_seed_is_not_enough() -> None:
    rows = [readout_row(None, -5.0, -1.0, criterion="magnitude"), readout_row("landbird-water", -4.0, -1.0)]
    entries = over_seeds(_seeds([rows, rows]))
    assert [(e.readout, e.group, e.ranked_on) for e in entries] == [
        ("magnitude/top3/zero", "landbird-water", None),
        ("magnitude/top3/zero", "waterbird-land", None),
        ("gradient/top3/zero", "landbird-water", "landbird-water"),
    ]
    assert over_seeds(_seeds([rows])) == []  # a paired test needs two seeds
    with pytest.raises(ValueError, match="one readouts record per model seed"):
        over_seeds([(0, ReadoutsArtifact.model_validate(readouts(rows)))] * 2)
