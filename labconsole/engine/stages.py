"""The stages a preset can list in ``stages = [...]``, imported lazily by name.

Each entry is ``"module:function"``; the function takes a StageContext and returns a dict that
is merged into ``summary.json`` under the stage's name (the ERM stage fills the top level).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from labconsole.errors import PresetError

STAGES: dict[str, str] = {
    "erm": "labconsole.engine.train.erm:run_erm_stage",
    "rare-score": "labconsole.engine.rare.stages:run_score_stage",
    "rare-weights": "labconsole.engine.rare.stages:run_weights_stage",
    "rare-sensitivity": "labconsole.engine.rare.stages:run_sensitivity_stage",
    "rare-membership": "labconsole.engine.rare.stages:run_membership_stage",
    "rare-mitigations": "labconsole.engine.rare.stages:run_mitigations_stage",
    "rare-deletion": "labconsole.engine.rare.stages:run_deletion_stage",
    "rare-theory": "labconsole.engine.rare.stages:run_theory_stage",
    "model": "labconsole.engine.stage1.stages:run_model_stage",
    "neurons": "labconsole.engine.stage1.stages:run_neurons_stage",
    "tracing": "labconsole.engine.stage1.tracing:run_tracing_stage",
    "overlap": "labconsole.engine.stage1.tracing:run_overlap_stage",
    "finetune": "labconsole.engine.train.finetune:run_finetune_stage",
    "dfr": "labconsole.engine.train.dfr:run_dfr_stage",
    "gradcam": "labconsole.engine.train.gradcam:run_gradcam_stage",
}


def stage_function(name: str) -> Callable[[Any], dict[str, Any]]:
    try:
        target = STAGES[name]
    except KeyError:
        raise PresetError(f"unknown stage {name!r} in `stages` (known: {', '.join(sorted(STAGES))})") from None
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)
