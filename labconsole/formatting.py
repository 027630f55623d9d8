"""How numbers read everywhere: the console, the headless printer, reports and Stage I tables.

One missing-value mark (``MISSING``, an en dash), accuracies as percentages with one decimal,
differences in percentage points with a sign and two decimals, spreads after ``±``. A value is
missing when it is None, not a number, or not finite (NaN / inf never reach a table as text).
"""

from __future__ import annotations

import math
from typing import TypeGuard

MISSING = "–"


def is_number(value: object) -> TypeGuard[int | float]:
    """A finite int or float (a bool is not a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def pct(fraction: object, digits: int = 1) -> str:
    """A fraction as a percentage, without the sign: 0.6403 → '64.0'."""
    return f"{100 * fraction:.{digits}f}" if is_number(fraction) else MISSING


def pp(value: object, digits: int = 2, signed: bool = True) -> str:
    """A value already in percentage points: -3.2 → '-3.20', 1 → '+1.00'."""
    if not is_number(value):
        return MISSING
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def pm(value: object, spread: object, digits: int = 2, signed: bool = True) -> str:
    """``pp`` with its spread: '-3.20 ± 0.41'; the spread is left out when missing or zero."""
    text = pp(value, digits, signed)
    if text == MISSING or not is_number(spread) or spread == 0:
        return text
    return f"{text} ± {spread:.{digits}f}"
