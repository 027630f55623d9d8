"""The demo engine's rare-spurious-correlation lab (Paper B): pattern previews, a scripted
experiment and the closed-form theory curves."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from labconsole.engine.events import CancelToken, Emit, Progress, RunFinished, RunStarted
from labconsole.ui.engine_port import RareScorePoint


def rare_preview(pattern: str, image_size: int) -> list[list[float]]:
    return patched_digit(pattern, image_size)


def rare_experiment(
    pattern: str, counts: Sequence[int], target_class: int, seeds: int, *, emit: Emit, cancel: CancelToken
) -> list[RareScorePoint]:
    run_id = f"fake-rare-{pattern}"
    emit(RunStarted(run_id=run_id, preset=f"rare-{pattern}", run_dir="", stages=("rare",)))
    rows: list[RareScorePoint] = []
    strength = {"S1": 0.3, "S2": 0.6, "S3": 0.9, "R1": 0.2, "R2": 0.5, "R3": 0.8, "Inv": 0.7}.get(pattern, 0.5)
    for i, n in enumerate(counts):
        if cancel.is_set():
            emit(RunFinished(run_id=run_id, status="cancelled"))
            return rows
        emit(Progress(run_id=run_id, stage="rare", epoch=i + 1, total_epochs=len(counts), step=1, total_steps=1))
        score = strength * (1 - math.exp(-n / 4)) if n else 0.002
        rows.append(
            RareScorePoint(
                n=n,
                spurious_score=round(score, 4),
                spurious_score_se=round(0.01 + 0.02 * score, 4),
                clean_acc=round(0.981 - 0.001 * i, 4),
                spurious_acc=round(0.981 - 0.6 * score, 4),
                p_value=None if n == 0 else round(math.exp(-3 * n * strength), 4),
            )
        )
    emit(RunFinished(run_id=run_id, status="done"))
    return rows


def theory_curve(
    gammas: Sequence[float],
    *,
    sigma_inv: float,
    sigma_sp: float,
    ridge: float,
    x_inv: float = 1.0,
    x_sp: float = 1.0,
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"gamma": [], "clean_acc": [], "spurious_acc": [], "prediction_difference": []}
    for gamma in gammas:  # the closed forms of SPEC §6 (authors' notebook)
        a = ((gamma * (1 - gamma) / 2 * x_sp**2 + sigma_sp + ridge) / (sigma_inv + ridge)) * x_inv**2
        d = math.sqrt(a**2 * sigma_inv + (gamma / 2) ** 2 * x_sp**4 * sigma_sp) or 1e-12
        half = (gamma / 2) * x_sp**2
        out["gamma"].append(gamma)
        out["clean_acc"].append(0.5 * phi((a + gamma / 2 * half) / d) + 0.5 * phi((a - gamma / 2 * half) / d))
        out["spurious_acc"].append(phi((a + (gamma / 2) * (gamma / 2 - 1) * x_sp**2) / d))
        out["prediction_difference"].append(half)
    return out


def phi(z: float) -> float:
    """The standard normal CDF."""
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def patched_digit(pattern: str, size: int) -> list[list[float]]:
    """A hand-drawn "7" with a Paper B pattern applied (SPEC §6 coordinates, top-left origin)."""
    image = [[0.0] * size for _ in range(size)]
    top, left, right = size // 5, size // 4, 3 * size // 4
    for col in range(left, right):
        image[top][col] = image[top + 1][col] = 0.9
    for row in range(top, 4 * size // 5):
        col = right - 1 - (row - top) * (right - left) // (3 * size // 5)
        image[row][max(col, 0)] = image[row][max(col - 1, 0)] = 0.9
    if pattern in ("S1", "S2", "S3"):
        side = {"S1": 1, "S2": 3, "S3": 5}[pattern]
        for r in range(side):
            for c in range(side):
                image[r][c] = 1.0
    elif pattern.startswith("R"):
        amplitude = {"R1": 0.25, "R2": 0.5, "R3": 1.0}[pattern]
        rng = random.Random(0)
        image = [[min(1.0, v + amplitude * rng.random()) for v in row] for row in image]
    elif pattern == "Inv":
        for r in range(3, min(25, size)):
            for c in range(13, min(16, size)):
                image[r][c] = 1.0
    return image
