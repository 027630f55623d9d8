"""Spurious score, clean and spurious test accuracy, and the statistics Paper B reports.

ε-spurious score = fraction of test images whose label is not the target class t with
p_t(x + pattern) − p_t(x) > ε (softmax probabilities). Clean accuracy uses the unchanged test set;
spurious accuracy adds the pattern to every test image whose label ≠ t.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from labconsole.engine.data.patterns import Pattern
from labconsole.engine.rare.training import predict_proba
from labconsole.engine.records.base import MeanSE
from labconsole.errors import UserError


def check_epsilon(epsilon: float) -> float:
    if not 0.0 < float(epsilon) < 1.0:
        raise UserError(f"rare.epsilon = {epsilon}: the spurious-score threshold must lie strictly between 0 and 1")
    return float(epsilon)


def spurious_score_from_probs(
    p_clean: torch.Tensor, p_pattern: torch.Tensor, labels: torch.Tensor, target: int, epsilon: float = 0.1
) -> float:
    """Fraction of non-target test images whose target probability rises by more than ε."""
    check_epsilon(epsilon)
    keep = labels != target
    if not bool(keep.any()):
        raise UserError(f"the test set has no image outside target class {target}")
    rise = p_pattern[keep, target] - p_clean[keep, target]
    return float((rise > epsilon).float().mean())


def spurious_measures(
    model: nn.Module, x_test: torch.Tensor, y_test: torch.Tensor, pattern: Pattern, target: int, epsilon: float = 0.1
) -> dict[str, float]:
    """Spurious score, clean test accuracy and spurious test accuracy of one model."""
    p_clean = predict_proba(model, x_test)
    others = y_test != target
    p_pattern = predict_proba(model, pattern.apply(x_test[others]))
    score = spurious_score_from_probs(p_clean[others], p_pattern, y_test[others], target, epsilon)
    clean_acc = float((p_clean.argmax(1) == y_test).float().mean())
    # Spurious test set: pattern on every non-target image, target-class images unchanged.
    correct = p_clean.argmax(1) == y_test
    correct_spurious = correct.clone()
    correct_spurious[others] = p_pattern.argmax(1) == y_test[others]
    spurious_acc = float(correct_spurious.float().mean())
    return {"score": score, "clean_acc": clean_acc, "spurious_acc": spurious_acc}


def mean_se(values: Sequence[float]) -> MeanSE:
    """Mean and standard error of the mean (sample std / √n; 0 for one value)."""
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0:
        return MeanSE(mean=None, se=None, n=0)
    mean = sum(vals) / n
    se = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) / math.sqrt(n) if n > 1 else 0.0
    return MeanSE(mean=mean, se=se, n=n)


def welch_greater(sample: Sequence[float], baseline: Sequence[float]) -> float | None:
    """One-sided Welch t-test p-value for H1: mean(sample) > mean(baseline).

    ``None`` when a side has fewer than two values. When both sides have zero variance the test is
    degenerate: p = 0 if the sample mean is larger, 1 otherwise.
    """
    from scipy import stats

    a, b = [float(v) for v in sample], [float(v) for v in baseline]
    if len(a) < 2 or len(b) < 2:
        return None
    var_a = sum((v - sum(a) / len(a)) ** 2 for v in a)
    var_b = sum((v - sum(b) / len(b)) ** 2 for v in b)
    if var_a == 0 and var_b == 0:
        return 0.0 if sum(a) / len(a) > sum(b) / len(b) else 1.0
    # Nearly identical samples make scipy warn about precision loss; the p-value is still the
    # test's answer, and a warning on stderr would break ``-q`` output.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=False, alternative="greater")
    return float(result.pvalue)
