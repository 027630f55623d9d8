"""The product's vocabulary: every named choice defined once, and one validator per kind of number.

The preset sections (pydantic), the command line (Typer lists a ``Literal``'s values in
``--help`` and refuses others), the console's choice lists and the engine's own checks all take
their names from here, so a mode, criterion or scope is spelt one way everywhere.

The validators raise ``InvalidValue``: a ``ValueError`` (pydantic turns it into a preset error
naming the key) and a ``UserError`` (the command line exits with 2 and prints the message).

No torch, no pydantic: importing this costs nothing.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

from labconsole.errors import UserError

# -- where and how a job runs -------------------------------------------------------------------
Device = Literal["auto", "cpu", "cuda"]
Variant = Literal["paper", "official-code"]
ExecutorName = Literal["local", "slurm"]
Split = Literal["train", "val", "test"]

# -- data and models -------------------------------------------------------------------------------
DatasetName = Literal[
    "synthetic-waterbirds", "waterbirds", "celeba", "digits", "digits-color", "mnist", "fashion-mnist", "cifar10"
]
# The file datasets with published group counts (``labconsole check-data``).
CheckedDataset = Literal["waterbirds", "celeba"]
Optimizer = Literal["adam", "sgd"]
# The registered backbones (engine.models.factory registers exactly these; a test keeps them
# equal), named here so the console can list them without importing torch. Any timm model is
# also accepted as "timm:<name>[.<tag>]".
BACKBONES: tuple[str, ...] = (
    "cifar_resnet8",
    "cifar_resnet20",
    "small_cnn",
    "mlp",
    "mlp_small",
    "mlp_large",
    "resnet18",
    "resnet34",
    "resnet50",
    "deit_tiny_patch16_224",
    "deit_small_patch16_224",
    "deit_base_patch16_224",
    "vit_small_patch16_224",
)

# -- Stage I: ranking and interventions (Paper A) -----------------------------------------------
Criterion = Literal["magnitude", "gradient", "activation"]
# "global": top-k over the whole model; "per-layer": top-k in each eligible layer;
# "top-percent": the top k % of all eligible neurons (k is then a percentage, e.g. 0.1).
Scope = Literal["global", "per-layer", "top-percent"]
Norm = Literal["l2", "l1"]
Mode = Literal["zero", "reinit", "noise"]
Where = Literal["weight", "output", "post-bn"]

# -- Stage II: which neurons the auxiliary model masks, and the two views ------------------------
MaskCriterion = Literal["magnitude", "gradient", "combined"]
Views = Literal["translate", "translate-flip", "table1"]

# -- Paper B --------------------------------------------------------------------------------------
PatternName = Literal["S1", "S2", "S3", "R1", "R2", "R3", "Inv"]


def choices(kind: object) -> tuple[str, ...]:
    """The values of a ``Literal`` type, in their declared order."""
    values = get_args(kind)
    if not values or not all(isinstance(v, str) for v in values):
        raise TypeError(f"{kind!r} is not a Literal of strings")
    return tuple(values)


DEVICES = choices(Device)
VARIANTS = choices(Variant)
EXECUTORS = choices(ExecutorName)
SPLITS = choices(Split)
DATASETS = choices(DatasetName)
CHECKED_DATASETS = choices(CheckedDataset)
CRITERIA = choices(Criterion)
SCOPES = choices(Scope)
NORMS = choices(Norm)
MODES = choices(Mode)
WHERES = choices(Where)
MASK_CRITERIA = choices(MaskCriterion)
VIEWS = choices(Views)
PATTERNS = choices(PatternName)

# Other spellings of a scope, accepted where a person types one (the engine's ranking calls).
SCOPE_ALIASES: dict[str, Scope] = {
    "global": "global",
    "unstructured": "global",
    "per-layer": "per-layer",
    "layer": "per-layer",
    "structured": "per-layer",
    "top-percent": "top-percent",
    "percent": "top-percent",
}

# σ of the Gaussian for the reinit / noise interventions (Paper A Fig. 2/4/5).
SIGMA_GRID: tuple[float, ...] = (0.005, 0.01, 0.02)
DEFAULT_SIGMA = 0.01


# Why a mask may not cover 100 %: the auxiliary model would have no neuron (or weight) left.
MASK_ALL = "masking 100 % leaves the auxiliary model nothing"


class InvalidValue(UserError, ValueError):
    """A number outside its range, or a name outside its vocabulary."""


def check_choice(value: str, allowed: tuple[str, ...], *, key: str) -> str:
    if value not in allowed:
        raise InvalidValue(f"{key} = {value!r}: expected one of {', '.join(allowed)}")
    return value


def normalise_scope(scope: str, *, key: str = "scope") -> Scope:
    try:
        return SCOPE_ALIASES[scope]
    except KeyError:
        raise InvalidValue(f"{key} = {scope!r}: expected one of {', '.join(SCOPES)}") from None


def check_percent(value: float, *, key: str, zero_means: str = "", all_refused: str = "") -> float:
    """A percentage of neurons or weights: 0 < p ≤ 100, where 0.01 means 0.01 % (not 1 %).

    ``zero_means`` names what 0 does where 0 is a meaningful setting (e.g. "no mask");
    ``all_refused`` says why 100 % makes no sense where it does not (e.g. a mask of everything)."""
    p = _finite(value, key=key)
    if p == 0 and zero_means:
        return 0.0
    top = ")" if all_refused else "]"
    zero = f", or 0 for {zero_means}" if zero_means else ""
    if not 0 < p <= 100 or (p == 100 and all_refused):
        why = f"; {all_refused}" if p == 100 and all_refused else ""
        raise InvalidValue(f"{key} = {value}: expected a percentage in (0, 100{top}{zero} (0.01 means 0.01 %){why}")
    return p


def count_of_percent(total: int, percent: float, *, rounding: Literal["up", "nearest"]) -> int:
    """How many of ``total`` units ``percent`` % selects, never fewer than one.

    "up" (the top p % of neurons in a ranking): ceil, so any p > 0 selects someone and a
    non-integral count includes the boundary neuron. "nearest": round half to even, which is what
    ``torch.nn.utils.prune`` does with a float amount (the authors' smallest-weights mask)."""
    exact = total * percent / 100
    count = math.ceil(exact) if rounding == "up" else round(exact)
    return max(1, min(total, count))


def check_k(value: float, *, key: str, at_most: int | None = None, what: str = "eligible neurons") -> int:
    """A number of neurons: a whole number ≥ 1 (and ≤ ``at_most`` when given)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidValue(f"{key} = {value!r}: expected a whole number ≥ 1")
    if float(value) != int(value) or int(value) < 1:
        raise InvalidValue(f"{key} = {value}: expected a whole number ≥ 1")
    k = int(value)
    if at_most is not None and k > at_most:
        raise InvalidValue(f"{key} = {k} is larger than the number of {what} ({at_most})")
    return k


def check_sigma(value: float, *, key: str) -> float:
    """σ of a Gaussian (reinit / noise): finite and > 0."""
    s = _finite(value, key=key)
    if not s > 0:
        raise InvalidValue(f"{key} = {value}: σ must be > 0")
    return s


def _finite(value: float, *, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidValue(f"{key} = {value!r}: expected a finite number")
    return float(value)
