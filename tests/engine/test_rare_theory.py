"""Paper B's toy model: exact ridge solution vs Monte Carlo and vs the authors' closed forms."""

from __future__ import annotations

import pytest

from labconsole.engine.rare.theory import ToyModel, authors_closed_form, monte_carlo_check, solve_population
from labconsole.errors import UserError


@pytest.mark.parametrize(
    "model",
    [
        ToyModel(gamma=0.05, x_inv=1.5, x_sp=2.0, sigma_inv=0.5, sigma_sp=0.1, lam=0.2),
        ToyModel(
            gamma=0.1,
            x_inv=1.0,
            x_sp=1.0,
            sigma_inv=1.0,
            sigma_sp=0.05,
            lam=0.01,
            noise=0.1,
            convention="authors",
            intercept=True,
        ),
    ],
)
def test_exact_solution_matches_monte_carlo_within_sampling_error(model: ToyModel) -> None:
    check = monte_carlo_check(model, samples=50_000, repeats=10, extra_dims=2, seed=0)
    for name, q in check.quantities.items():
        assert q.abs_error is not None and q.mc_se is not None, name
        if q.mc_se == 0.0:
            assert q.abs_error < 1e-12, name
            continue
        assert q.abs_error < 5 * q.mc_se + 1e-4, name
    assert check.max_noise_dim_weight is not None
    assert check.max_noise_dim_weight < 0.05  # noise-only dimensions get (almost) no weight


def test_authors_forms_agree_only_for_unit_norms() -> None:
    unit = ToyModel(gamma=0.05, sigma_inv=0.5, sigma_sp=0.1, lam=0.2, convention="authors", intercept=True)
    exact, closed = solve_population(unit), authors_closed_form(unit)
    assert exact.clean_acc == pytest.approx(closed["clean_acc"], abs=1e-12)
    assert exact.spurious_acc == pytest.approx(closed["spurious_acc"], abs=1e-12)
    scaled = unit.with_(x_inv=0.5, x_sp=2.0)
    assert abs(solve_population(scaled).clean_acc - authors_closed_form(scaled)["clean_acc"]) > 0.05


def test_phase_transition_at_gamma_zero() -> None:
    base = ToyModel(gamma=0.0, sigma_sp=0.001, lam=0.0)
    assert solve_population(base).prediction_difference == 0.0
    tiny = solve_population(base.with_(gamma=0.005))
    far = solve_population(base.with_(gamma=0.1))
    # Sharp, not gradual: 5 % of the way along γ gives more than half the effect at γ = 0.1.
    assert tiny.prediction_difference > 0.5 * far.prediction_difference
    assert tiny.spurious_acc < solve_population(base).spurious_acc
    # More spurious noise (lower SNR) or more ridge penalty damps the jump.
    assert solve_population(base.with_(gamma=0.005, sigma_sp=1.0)).prediction_difference < 0.05
    assert solve_population(base.with_(gamma=0.005, lam=1.0)).prediction_difference < tiny.prediction_difference


def test_bad_parameters() -> None:
    with pytest.raises(UserError, match="γ"):
        ToyModel(gamma=0.7)


def test_degenerate_system_is_solved_exactly() -> None:
    # σ_sp = 0, λ = 0, γ = 0: the spurious coordinate is identically zero, the 2×2 system singular.
    degenerate = ToyModel(gamma=0.0, sigma_sp=0.0, lam=0.0)
    sol = solve_population(degenerate)
    assert sol.w_sp == 0.0 and sol.prediction_difference == 0.0
    # Equal to the λ → 0⁺ limit of the regular problem.
    limit = solve_population(degenerate.with_(lam=1e-12))
    assert sol.w_inv == pytest.approx(limit.w_inv, rel=1e-9)
    assert sol.clean_acc == pytest.approx(limit.clean_acc, abs=1e-9)
    assert sol.spurious_acc == pytest.approx(limit.spurious_acc, abs=1e-9)
    # Away from γ = 0 the system is regular again and the pattern is learnt.
    assert solve_population(degenerate.with_(gamma=0.01)).prediction_difference > 0
