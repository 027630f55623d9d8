"""The memorization signature's verdict needs both halves of Paper A's claim: Δtrain − Δtest
below its control, and the group's test accuracy held (its test drop within the control's spread)."""

from __future__ import annotations

import pytest

from labconsole.engine.records import Signature
from labconsole.engine.stage1.evidence_stats import held_on_test, signature, signature_seen, verdict_line

GROUPS = ["minority"]


def _draws(test: list[float]) -> dict[str, dict[str, list[float]]]:
    """20 control draws costing the group 0–2 pp on train and ``test`` on test."""
    return {"train": {"minority": [-1.0 * (i % 3) for i in range(20)]}, "test": {"minority": test}}


QUIET_TEST = [-1.0 * ((i + 1) % 3) for i in range(20)]  # 0–2 pp: mean −0.95, sd 0.83


def _signature(train: float, test: float, draws_test: list[float] = QUIET_TEST) -> Signature:
    sig = signature({"train": {"minority": train}, "test": {"minority": test}}, _draws(draws_test), GROUPS)
    assert sig is not None
    return sig


def test_train_drops_and_test_holds_is_the_signature() -> None:
    sig = _signature(-30.0, -0.5)
    assert sig.critical_pp == {"minority": -29.5}
    assert sig.p == {"minority": pytest.approx(1 / 21)}  # no draw comes near −29.5
    assert sig.test_held == {"minority": True}  # −0.5 pp on test, inside the draws' 0.83 pp spread
    assert sig.verdict == {"minority": "seen"}


def test_a_test_collapse_is_not_the_signature_even_when_train_drops_more() -> None:
    # Paper A's claim is train drops *and test holds*: −98 pp train, −67 pp test gives a
    # Δtrain − Δtest (−31 pp) far below every draw, yet the group is lost on test too.
    sig = _signature(-98.0, -67.0)
    assert sig.critical_pp == {"minority": -31.0}
    assert sig.p == {"minority": pytest.approx(1 / 21)}
    assert sig.test_held == {"minority": False}
    assert sig.verdict == {"minority": "not seen"}
    line = verdict_line(sig, GROUPS)
    assert line is not None
    assert "not seen for minority (-31.0 pp, p = 0.048; test dropped beyond the control's spread)" in line
    assert "with test held" in line and "20 control draws" in line


def test_a_control_that_also_wrecks_test_does_not_excuse_the_drop() -> None:
    # Random neurons of the same layers cost the group ~40 pp on test (sd 0.8): a critical set
    # at −40 pp is typical of its control, but the group's test accuracy did not hold.
    wrecked = [-40.0 + d for d in QUIET_TEST]
    sig = _signature(-80.0, -40.0, wrecked)
    assert sig.p == {"minority": pytest.approx(1 / 21)}
    assert sig.test_held == {"minority": False} and sig.verdict == {"minority": "not seen"}


def test_held_on_test_and_both_halves_of_the_verdict() -> None:
    assert held_on_test(-1.0, 2.0) is True
    assert held_on_test(-2.0, 2.0) is True  # at the edge of the spread
    assert held_on_test(-2.5, 2.0) is False
    assert held_on_test(5.0, 0.0) is True  # a test gain always holds
    assert held_on_test(-0.1, 0.0) is False  # the draws never moved test; the critical set did
    assert held_on_test(None, 1.0) is None and held_on_test(-1.0, None) is None
    assert signature_seen(-10.0, 0.01, True) is True
    assert signature_seen(-10.0, 0.01, False) is False
    assert signature_seen(-10.0, 0.01, None) is False  # an unknown test is not a held test
    assert signature_seen(-10.0, 0.2, True) is False
    assert signature_seen(5.0, 0.01, True) is False
