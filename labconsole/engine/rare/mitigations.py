"""Mitigations of rare spurious correlations (Paper B §6): each is a change of the training recipe
at one strength — weight decay, Gaussian input noise, gradient clipping by value or by norm."""

from __future__ import annotations

from labconsole.config.rare import RareConfig
from labconsole.engine.rare.training import Recipe

# method name → (Recipe field, RareConfig field holding the strengths, axis label)
MITIGATIONS: dict[str, tuple[str, str, str]] = {
    "weight_decay": ("weight_decay", "weight_decays", "weight decay"),
    "input_noise": ("input_noise_std", "noise_stds", "input noise std"),
    "clip_value": ("clip_value", "clip_values", "gradient clip value (0 = off)"),
    "clip_norm": ("clip_norm", "clip_norms", "gradient clip norm (0 = off)"),
}


def mitigated_recipe(base: Recipe, method: str, strength: float) -> Recipe:
    """``base`` with one mitigation set to ``strength`` (0 disables it)."""
    field = MITIGATIONS[method][0]
    return base.with_(**{field: float(strength)})


def mitigation_grid(rare: RareConfig) -> dict[str, tuple[float, ...]]:
    """method → strengths to sweep, from the [rare] section."""
    return {method: tuple(getattr(rare, cfg_field)) for method, (_, cfg_field, _) in MITIGATIONS.items()}
