"""Stage I readouts records, built by hand for seeds with a known answer (no model, no training)."""

from __future__ import annotations

from typing import Any

GROUPS = ["landbird-land", "landbird-water", "waterbird-land", "waterbird-water"]
MINORITY = ["landbird-water", "waterbird-land"]


def readout_row(
    group: str | None,
    train: float,
    test: float,
    *,
    control_train: float = -1.0,
    control_test: float = -1.0,
    control_test_sd: float = 2.0,
    control_signature: float = 0.0,
    signature_p: float = 1 / 21,
    test_p: float = 0.5,
    criterion: str = "gradient",
) -> dict[str, Any]:
    """A readout row as the neurons stage records it: the critical Δ (pp) of every group (only
    ``group``'s numbers given; a global ranking when ``group`` is None), its control's mean Δ
    (spread 0.5 pp on train, ``control_test_sd`` on test) and the signature with its control and p."""
    targets = MINORITY if group is None else [group]
    critical = {
        "train": {g: (train if g in targets else 0.0) for g in GROUPS},
        "test": {g: (test if g in targets else 0.0) for g in GROUPS},
    }
    control = {
        "train": {"delta_pp": {g: control_train for g in GROUPS}, "spread_pp": {g: 0.5 for g in GROUPS}},
        "test": {"delta_pp": {g: control_test for g in GROUPS}, "spread_pp": {g: control_test_sd for g in GROUPS}},
    }
    return {
        "label": f"{criterion} on {group or 'all'} top-3",
        "criterion": criterion,
        "score": "paper",
        "ranked_group": group,
        "k": 3,
        "mode": "zero",
        "control_kind": "layer-matched",
        "splits": {s: {"delta_pp": critical[s]} for s in critical},
        "control": control,
        "evidence": {
            "kind": "layer-matched",
            "draws": 20,
            "critical": critical,
            "p": {"train": {g: signature_p for g in GROUPS}, "test": {g: test_p for g in GROUPS}},
            "signature": {
                "critical_pp": {g: critical["train"][g] - critical["test"][g] for g in GROUPS},
                "control_mean_pp": {g: control_signature for g in GROUPS},
                "control_sd_pp": {g: 1.0 for g in GROUPS},
                "p": {g: signature_p for g in GROUPS},
            },
        },
    }


def readouts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``artifacts/stage1_readouts.json`` with these rows."""
    return {"schema_version": 1, "group_names": GROUPS, "minority_groups": MINORITY, "rows": rows}
