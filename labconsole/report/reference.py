"""Published numbers beside ours.

A preset's ``[reference."<label>"]`` tables hold ``row -> {column: value}``. Each (row, column)
is matched to one of our numbers:

* an explicit ``_ours = { column = "dotted.summary.path", "row/column" = "..." }`` entry in the
  table wins (``{row}`` and ``{col}`` in a path are filled in);
* a row named after a split (``train``/``val``/``test``) reads that split's group accuracies and
  metrics (``wga``, ``mean`` …);
* Stage I rows (``k=3``, ``top2``, ``zero k=1``, ``noise σ=0.01 k=2``, ``reinit σ=0.005 k=1``) read
  the change of group *column* when the neurons ranked on that group are edited (split ``test``
  when the label says TEST, else ``train``);
* in a sweep, a row names an axis value (``magnitude``, ``criterion=magnitude``) and a column a
  metric (``wga`` = test WGA after fine-tuning when there is one, else test WGA; ``std`` = the
  spread over seeds); a row called ``ERM`` reads the WGA before fine-tuning.

Units: a table whose label says ``fraction`` holds fractions, one that says ``pp``/``%`` holds
percent / percentage points; otherwise values all within ±1 are taken as fractions. Everything is shown in % / pp. A label with ``|change|``
compares magnitudes (the paper's text lost the signs).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

SPLITS = ("train", "val", "test")
METRIC_ALIASES: dict[str, tuple[str, ...]] = {
    "wga": ("finetune.wga_after.test", "finetune.splits.test.wga", "splits.test.wga", "model.splits.test.wga"),
    "val_wga": ("finetune.wga_after.val", "finetune.splits.val.wga", "splits.val.wga", "model.splits.val.wga"),
    "mean": ("finetune.splits.test.mean", "splits.test.mean", "model.splits.test.mean"),
    "mean_train_weighted": ("finetune.splits.test.mean_train_weighted", "splits.test.mean_train_weighted"),
    "erm_wga": ("finetune.wga_before.test", "splits.test.wga", "model.splits.test.wga"),
}
STD_COLUMNS = {"std", "wga_std", "±", "sd", "spread"}


def norm(text: Any) -> str:
    return re.sub(r"\s+", " ", str(text).strip().lower()).replace(" = ", "=").replace("= ", "=").replace(" =", "=")


def tables(reference: dict[str, Any]) -> list[tuple[str, dict[str, dict[str, float]], dict[str, Any]]]:
    """(label, rows, options) per reference table; non-numeric cells are dropped."""
    out = []
    for label, table in (reference or {}).items():
        if not isinstance(table, dict):
            continue
        options = {k: v for k, v in table.items() if str(k).startswith("_")}
        rows: dict[str, dict[str, float]] = {}
        for row, cols in table.items():
            if str(row).startswith("_"):
                continue
            if isinstance(cols, dict):
                values = {
                    str(c): float(v) for c, v in cols.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                }
            elif isinstance(cols, (int, float)) and not isinstance(cols, bool):
                values = {"value": float(cols)}
            else:
                values = {}
            if values:
                rows[str(row)] = values
        if rows:
            out.append((str(label), rows, options))
    return out


def table_scale(label: str, rows: dict[str, dict[str, float]], options: dict[str, Any]) -> float:
    """Factor that brings the table's values to % / pp."""
    unit = str(options.get("_unit", "")).lower()
    if unit:
        return 100.0 if unit.startswith("frac") else 1.0
    if "fraction" in label.lower():
        return 100.0
    if re.search(r"\bpp\b|%|percent", label.lower()):
        return 1.0
    return 1.0 if any(abs(v) > 1.0 for cols in rows.values() for v in cols.values()) else 100.0


def absolute(label: str) -> bool:
    return "|change|" in label or "|Δ|" in label


def flat_lookup(flat: dict[str, float], names: tuple[str, ...] | list[str]) -> tuple[str, float] | None:
    for name in names:
        if name in flat:
            return name, flat[name]
    return None


def percent_of(metric: str, value: float) -> float:
    """Our stored numbers are fractions except Stage I changes, which are already pp."""
    return value if "_pp" in metric or metric.endswith("pp") else 100.0 * value


# -- runs ----------------------------------------------------------------------------------------


def resolve_run(
    summary: dict[str, Any], flat: dict[str, float], label: str, row: str, col: str, options: dict[str, Any]
) -> tuple[float | None, str]:
    """(our value in % / pp, where it came from) for one reference cell of a single run."""
    explicit = _explicit(options, row, col)
    if explicit:
        return (
            (percent_of(explicit, flat[explicit]), explicit)
            if explicit in flat
            else (None, f"{explicit} not in this run")
        )
    r, c = norm(row), norm(col)
    splits = _splits(summary)
    if r in splits and isinstance(splits[r], dict):
        groups = splits[r].get("groups") or {}
        if col in groups and groups[col] is not None:
            return 100.0 * groups[col], f"{r} accuracy of {col}"
        if isinstance(splits[r].get(c), (int, float)):
            return 100.0 * splits[r][c], f"{r} {c}"
    stage1 = _stage1_cell(summary, label, row, col)
    if stage1 is not None:
        return stage1
    aliases = METRIC_ALIASES.get("erm_wga" if r == "erm" else c.replace(" ", "_").replace("test_", ""), ())
    found = flat_lookup(flat, list(aliases) + [f"{row}.{col}", col])
    if found:
        return percent_of(*found), found[0]
    return None, "no matching number in this run"


def _explicit(options: dict[str, Any], row: str, col: str) -> str:
    mapping = options.get("_ours")
    if not isinstance(mapping, dict):
        return ""
    template = mapping.get(f"{row}/{col}") or mapping.get(col) or mapping.get(row) or ""
    return str(template).replace("{row}", row).replace("{col}", col)


def _splits(summary: dict[str, Any]) -> dict[str, Any]:
    for candidate in (summary.get("splits"), (summary.get("model") or {}).get("splits")):
        if isinstance(candidate, dict) and candidate:
            return candidate
    return {}


STAGE1_ROW = re.compile(r"(?:k\s*=\s*|top\s*-?\s*)(\d+)", re.I)
SIGMA = re.compile(r"(?:σ|sigma|std)\s*=\s*([0-9.eE+-]+)", re.I)


def _stage1_cell(summary: dict[str, Any], label: str, row: str, col: str) -> tuple[float | None, str] | None:
    rows = ((summary.get("neurons") or {}).get("rows")) if isinstance(summary.get("neurons"), dict) else None
    k_match = STAGE1_ROW.search(row)
    if not rows or not k_match:
        return None
    k = int(k_match.group(1))
    text, lab = row.lower(), label.lower()
    mode = next(
        (
            m
            for m, words in (("reinit", ("reinit", "random init", "init")), ("noise", ("noise",)), ("zero", ("zero",)))
            if any(w in text for w in words)
        ),
        None,
    )
    mode = mode or next(
        (m for m, w in (("reinit", "random init"), ("noise", "noise"), ("reinit", "reinit")) if w in lab), "zero"
    )
    sigma = SIGMA.search(row)
    split = "test" if re.search(r"\btest\b", lab) else "train"
    criterion = "magnitude" if "magnitude" in lab else "gradient" if "gradient" in lab else None
    candidates = [
        r
        for r in rows
        if isinstance(r, dict)
        and r.get("k") == k
        and r.get("mode") == mode
        and (criterion is None or r.get("criterion") == criterion)
        and (sigma is None or _close(r.get("std"), float(sigma.group(1))))
    ]
    ranked = [r for r in candidates if r.get("ranked_group") == col] or [
        r for r in candidates if not r.get("ranked_group")
    ]
    if not ranked:
        return None, f"no Stage I readout with {mode} k={k}" + (f" σ={sigma.group(1)}" if sigma else "")
    chosen = ranked[0]
    value = ((chosen.get("delta_pp") or {}).get(split) or {}).get(col)
    if not isinstance(value, (int, float)):
        return None, f"readout has no {split} value for {col}"
    stds = sorted({r.get("std") for r in ranked if r.get("std") is not None})
    note = f"{split} Δ, {chosen.get('label', mode)}"
    if sigma is None and len(stds) > 1:
        note += f" (σ not named in the paper row; showing σ={chosen.get('std')})"
    return float(value), note


def _close(a: Any, b: float) -> bool:
    return isinstance(a, (int, float)) and abs(a - b) <= 1e-9 + 1e-6 * abs(b)


# -- sweeps --------------------------------------------------------------------------------------


def point_matches(point: dict[str, Any], row: str) -> bool:
    """Does a reference row name this sweep combination (every axis value appears in it)?"""
    if not point:
        return False
    r = norm(row)
    tokens = set(re.split(r"[\s,;/|()]+", r))
    tokens |= {t.split("=", 1)[1] for t in tokens if "=" in t}
    for key, value in point.items():
        v = norm(value)
        if r in (v, f"{norm(key)}={v}", f"{norm(key).split('.')[-1]}={v}"):
            continue
        if v not in tokens and f"{v}%" not in tokens:
            return False
    return True


def _alnum(text: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def backbone_key(name: str) -> str:
    """``vit_small_patch16_224`` and ``ViT-S`` → ``vits``; ``resnet50`` and ``ResNet-50`` → ``resnet50``."""
    key = _alnum(name)
    for prefix, short in (
        ("vitsmall", "vits"),
        ("deitsmall", "vits"),
        ("vitbase", "vitb"),
        ("deitbase", "vitb"),
        ("vittiny", "vitt"),
        ("deittiny", "vitt"),
    ):
        if key.startswith(prefix):
            return short
    return key


def looks_like_backbone(row: str) -> bool:
    return bool(re.match(r"(resnet|vit|deit|mlp|cnn|cifar)", _alnum(row)))


def cells_for_point(
    ref: dict[str, Any], point: dict[str, Any], backbone: str, wanted: set[str]
) -> list[tuple[int, float, str, str]]:
    """Published (priority, value in %, label, row/col) for this combination and measure.

    A row may name the combination with columns naming measures, or (transposed, e.g. Table 12)
    a column may name it with rows naming backbones; the row of our backbone comes first.
    """
    found = []
    for label, rows, options in tables(ref):
        scale = table_scale(label, rows, options)
        for row, cols in rows.items():
            for col, value in cols.items():
                base = norm(col).replace(" ", "_").replace("test_", "")
                if point_matches(point, row) and (base in wanted or col == "value"):
                    found.append((0, value * scale, label, f"{row}/{col}"))
                elif point_matches(point, col) and (not looks_like_backbone(row) or backbone_key(row) == backbone):
                    found.append((1, value * scale, label, f"{row}/{col}"))
                elif point_matches(point, col) and looks_like_backbone(row):
                    found.append((2, value * scale, label, f"{row}/{col} (paper backbone {row})"))
    return sorted(found, key=lambda item: item[0])


def resolve_sweep(
    combos: list[dict[str, Any]], label: str, row: str, col: str, options: dict[str, Any], backbone: str = ""
) -> tuple[dict[str, Any] | None, str]:
    """(stats in % with mean/se/std/n, where from) for a reference cell of a sweep."""
    r, c = norm(row), norm(col).replace(" ", "_").replace("test_", "")
    explicit = _explicit(options, row, col)
    is_std = c in STD_COLUMNS or c.endswith("_std")
    base = c[:-4] if c.endswith("_std") else "wga" if is_std else c
    matched = [x for x in combos if point_matches(x.get("point") or {}, row)]
    note = ""
    if not matched:
        # Transposed tables: the column names the combination, the row a backbone (Table 12).
        matched = [x for x in combos if point_matches(x.get("point") or {}, col)]
        if matched:
            base = "wga"
    if looks_like_backbone(row) and backbone and backbone_key(row) != backbone_key(backbone):
        note = f" (paper row {row}; our backbone {backbone})"
    if not matched and ("erm" in (r, c) or r.startswith("erm ")):
        matched, base = combos[:1], "erm_wga"
    if not matched and len(combos) == 1:
        matched = combos
    if not matched:
        return None, "no sweep combination matches this row or column"
    combo = matched[0]
    metrics = combo.get("metrics") or {}
    names = (
        [explicit]
        if explicit
        else list(METRIC_ALIASES.get(base, ())) + [col, f"splits.test.groups.{col}", f"{row}.{col}"]
    )
    name = next((n for n in names if n in metrics and (metrics[n] or {}).get("n")), None)
    if name is None:
        return None, f"no {col} in the aggregated numbers"
    stats = dict(metrics[name])
    factor = 1.0 if "_pp" in name else 100.0
    scaled = {k: (stats[k] * factor if isinstance(stats.get(k), (int, float)) else None) for k in ("mean", "se", "std")}
    scaled["n"] = stats.get("n", 0)
    where = f"{name} of {_point_text(combo.get('point') or {}) if base != 'erm_wga' else 'the first combination'}"
    if is_std:
        scaled = {"mean": scaled["std"], "se": None, "std": None, "n": scaled["n"]}
        where = f"std over seeds of {where}"
    return scaled, where + note


def _point_text(point: dict[str, Any]) -> str:
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in point.items()) or "all runs"


Resolver = Callable[[str, str, str, dict[str, Any]], Any]
