"""Paper B §5 / App. A: ridge regression on a two-feature toy model, exactly and by Monte Carlo.

Label y ∈ {−1, +1} with probability ½ each. Invariant coordinate u = y·‖x_inv‖ + N(0, σ_inv);
spurious coordinate s = b·‖x_sp‖ + N(0, σ_sp), where b = 1 marks a spurious example. A fraction π
of all training examples are spurious, all from class +1: π = γ (SPEC §6, ``convention="spec"``) or
π = γ/2 (γ = the fraction *within class +1*, which is what the authors' closed forms use,
``convention="authors"``). σ's are variances. Gaussian input noise of variance ``noise`` adds to
both σ's at training and at test time (as in the paper's Observation 2). Other input dimensions
carry only independent zero-mean noise, so the population ridge optimum puts zero weight on them
and the problem is exactly 2×2 in the (u, s) plane (3×3 with an unpenalised intercept).

See docs/rare-theory.md for the derivation and the comparison with the authors' closed forms.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np

from labconsole.engine.records.rare import MonteCarloCheck, MonteCarloQuantity
from labconsole.errors import UserError

Convention = Literal["spec", "authors"]


def normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


@dataclass(frozen=True)
class ToyModel:
    gamma: float
    x_inv: float = 1.0  # ‖x_inv‖
    x_sp: float = 1.0  # ‖x_sp‖
    sigma_inv: float = 1.0  # variance along x_inv
    sigma_sp: float = 0.01  # variance along x_sp
    lam: float = 0.0
    noise: float = 0.0  # variance of isotropic input noise, train and test
    convention: Convention = "spec"
    intercept: bool = False

    def __post_init__(self) -> None:
        limit = 0.5 if self.convention == "spec" else 1.0
        if not 0.0 <= self.gamma <= limit:
            raise UserError(f"γ = {self.gamma}: must lie in [0, {limit}] ({self.convention} convention)")
        if self.sigma_inv + self.noise <= 0 or self.sigma_sp < 0 or self.lam < 0 or self.noise < 0:
            raise UserError("σ_inv + noise must be > 0 and σ_sp, λ, noise ≥ 0")

    @property
    def spurious_mass(self) -> float:
        """π: probability that a training example is spurious."""
        return self.gamma if self.convention == "spec" else self.gamma / 2.0

    @property
    def var_inv(self) -> float:
        return self.sigma_inv + self.noise

    @property
    def var_sp(self) -> float:
        return self.sigma_sp + self.noise

    def with_(self, **changes: Any) -> ToyModel:
        return replace(self, **changes)


@dataclass(frozen=True)
class RidgeSolution:
    w_inv: float  # weight on the unit direction x_inv/‖x_inv‖
    w_sp: float  # weight on the unit direction x_sp/‖x_sp‖
    bias: float
    clean_acc: float
    spurious_acc: float
    prediction_difference: float  # w_sp · x_sp

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def population_moments(m: ToyModel) -> tuple[np.ndarray, np.ndarray]:
    """E[z zᵀ] and E[z y] for z = (u, s[, 1])."""
    p, q, pi = m.x_inv, m.x_sp, m.spurious_mass
    second = np.array(
        [[p * p + m.var_inv, pi * p * q, 0.0], [pi * p * q, pi * q * q + m.var_sp, pi * q], [0.0, pi * q, 1.0]]
    )
    cross = np.array([p, pi * q, 0.0])
    k = 3 if m.intercept else 2
    return second[:k, :k], cross[:k]


def accuracies(m: ToyModel, w_inv: float, w_sp: float, bias: float) -> tuple[float, float]:
    """(clean accuracy, spurious accuracy on class −1 with the pattern) via the Gaussian CDF."""
    p, q = m.x_inv, m.x_sp
    spread = math.sqrt(w_inv**2 * m.var_inv + w_sp**2 * m.var_sp)

    def p_correct(y: int, b: int) -> float:
        margin = y * (w_inv * y * p + w_sp * b * q + bias)
        if spread == 0.0:
            return 1.0 if margin > 0 else (0.5 if margin == 0 else 0.0)
        return normal_cdf(margin / spread)

    clean = 0.5 * p_correct(+1, 0) + 0.5 * p_correct(-1, 0)
    return clean, p_correct(-1, 1)


def solve_ridge_system(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the ridge normal equations; a singular system gets its minimum-norm solution.

    The system is singular only when a direction carries no signal and no penalty (σ_sp = 0, λ = 0
    and no spurious examples, e.g. γ = 0): the spurious coordinate is then identically zero. The
    minimum-norm solution puts zero weight on it, which is also the exact λ → 0⁺ limit of ridge,
    so the degenerate point is solved, not approximated.
    """
    try:
        return np.asarray(np.linalg.solve(matrix, rhs))
    except np.linalg.LinAlgError:
        return np.asarray(np.linalg.pinv(matrix) @ rhs)


def solve_population(m: ToyModel) -> RidgeSolution:
    """The exact population ridge optimum: (E[zzᵀ] + λ·I_w) w = E[zy] (bias unpenalised)."""
    second, cross = population_moments(m)
    penalty = np.diag([m.lam, m.lam, 0.0][: len(cross)])
    w = solve_ridge_system(second + penalty, cross)
    bias = float(w[2]) if m.intercept else 0.0
    clean, spurious = accuracies(m, float(w[0]), float(w[1]), bias)
    return RidgeSolution(float(w[0]), float(w[1]), bias, clean, spurious, float(w[1]) * m.x_sp)


def authors_closed_form(m: ToyModel) -> dict[str, float]:
    """The authors' notebook formulas, verbatim (γ = fraction within class +1; σ's as given + noise)."""
    g, p2, q2 = m.gamma, m.x_inv**2, m.x_sp**2
    si, ss, lam = m.var_inv, m.var_sp, m.lam
    a = ((g * (1 - g) / 2 * q2 + ss + lam) / (si + lam)) * p2
    d = math.sqrt(a**2 * si + (g / 2) ** 2 * q2**2 * ss)
    half = (g / 2) ** 2 * q2
    if d == 0.0:
        return {"A": a, "D": d, "clean_acc": float("nan"), "spurious_acc": float("nan")}
    clean = 0.5 * normal_cdf((a + half) / d) + 0.5 * normal_cdf((a - half) / d)
    spurious = normal_cdf((a + (g / 2) * (g / 2 - 1) * q2) / d)
    return {"A": a, "D": d, "clean_acc": clean, "spurious_acc": spurious}


def sample_toy(
    m: ToyModel,
    n: int,
    rng: np.random.Generator,
    *,
    extra_dims: int = 0,
    split: Literal["train", "clean", "spurious"] = "train",
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` examples in (1 + extra_dims) invariant + (1 + extra_dims) spurious dimensions."""
    if split == "train":
        y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        # Among class +1 (probability ½), a share 2π is spurious so that P(spurious) = π.
        b = ((y > 0) & (rng.random(n) < 2.0 * m.spurious_mass)).astype(float)
    elif split == "clean":
        y, b = np.where(rng.random(n) < 0.5, -1.0, 1.0), np.zeros(n)
    else:
        y, b = -np.ones(n), np.ones(n)
    d = 1 + extra_dims
    inv = rng.normal(0.0, math.sqrt(m.var_inv), (n, d))
    sp = rng.normal(0.0, math.sqrt(m.var_sp), (n, d))
    inv[:, 0] += y * m.x_inv
    sp[:, 0] += b * m.x_sp
    return np.concatenate([inv, sp], axis=1), y


def fit_ridge_sample(m: ToyModel, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Empirical ridge: (XᵀX/N + λI) w = Xᵀy/N, with an unpenalised bias if ``m.intercept``."""
    n, dim = x.shape
    design = np.concatenate([x, np.ones((n, 1))], axis=1) if m.intercept else x
    penalty = np.diag([m.lam] * dim + ([0.0] if m.intercept else []))
    w = solve_ridge_system(design.T @ design / n + penalty, design.T @ y / n)
    return (w[:dim], float(w[dim])) if m.intercept else (w, 0.0)


def monte_carlo_check(
    m: ToyModel, *, samples: int, repeats: int, extra_dims: int = 3, seed: int = 0
) -> MonteCarloCheck:
    """Fit ridge on sampled data ``repeats`` times; compare with the exact solution.

    Returns, per quantity, the exact value, the Monte-Carlo mean, its standard error over repeats
    and the absolute error of the mean, plus the largest weight on a noise-only dimension.
    """
    exact = solve_population(m).to_dict()
    rng = np.random.default_rng(seed)
    d = 1 + extra_dims
    rows: dict[str, list[float]] = {
        k: [] for k in ("w_inv", "w_sp", "bias", "clean_acc", "spurious_acc", "prediction_difference")
    }
    stray = 0.0
    for _ in range(repeats):
        x, y = sample_toy(m, samples, rng, extra_dims=extra_dims)
        w, bias = fit_ridge_sample(m, x, y)
        stray = max(stray, float(np.abs(np.delete(w, [0, d])).max()) if extra_dims else 0.0)
        xc, yc = sample_toy(m, samples, rng, extra_dims=extra_dims, split="clean")
        xs, ys = sample_toy(m, samples, rng, extra_dims=extra_dims, split="spurious")
        rows["w_inv"].append(float(w[0]))
        rows["w_sp"].append(float(w[d]))
        rows["bias"].append(bias)
        rows["clean_acc"].append(float(np.mean(np.sign(xc @ w + bias) == yc)))
        rows["spurious_acc"].append(float(np.mean(np.sign(xs @ w + bias) == ys)))
        rows["prediction_difference"].append(float(w[d]) * m.x_sp)
    quantities: dict[str, MonteCarloQuantity] = {}
    for key, values in rows.items():
        arr = np.asarray(values)
        se = float(arr.std(ddof=1) / math.sqrt(len(arr)))
        quantities[key] = MonteCarloQuantity(
            exact=exact[key], mc_mean=float(arr.mean()), mc_se=se, abs_error=abs(float(arr.mean()) - exact[key])
        )
    return MonteCarloCheck(samples=samples, repeats=repeats, max_noise_dim_weight=stray, quantities=quantities)


def gamma_curve(m: ToyModel, gammas: np.ndarray) -> dict[str, list[float]]:
    """Exact clean/spurious accuracy and prediction difference along γ, with the authors' forms."""
    out: dict[str, list[float]] = {
        "gamma": [],
        "clean_acc": [],
        "spurious_acc": [],
        "prediction_difference": [],
        "authors_clean_acc": [],
        "authors_spurious_acc": [],
    }
    for g in gammas:
        point = m.with_(gamma=float(g))
        sol = solve_population(point)
        # Same data, expressed in the authors' γ (the spurious share of class +1 = 2π).
        authors = authors_closed_form(point.with_(convention="authors", gamma=2.0 * point.spurious_mass))
        out["gamma"].append(float(g))
        out["clean_acc"].append(sol.clean_acc)
        out["spurious_acc"].append(sol.spurious_acc)
        out["prediction_difference"].append(sol.prediction_difference)
        out["authors_clean_acc"].append(authors["clean_acc"])
        out["authors_spurious_acc"].append(authors["spurious_acc"])
    return out
