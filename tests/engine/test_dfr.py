"""DFR baseline: group-stratified halves, balanced draws, a head that reproduces the logistic
regression exactly, and a stage that retrains the last layer only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from labconsole.engine.api import run_job
from labconsole.engine.runs import RunDir
from labconsole.engine.train.dfr import _head_from, balanced_draw, split_halves
from labconsole.errors import PresetError
from labconsole.presets import load_preset


def test_halves_are_disjoint_and_split_every_group() -> None:
    g = np.array([0] * 10 + [1] * 5 + [2] * 2 + [3] * 7)
    a, b = split_halves(g, seed=0)
    assert not set(a) & set(b) and len(a) + len(b) == len(g)
    for group in range(4):
        na, nb = (g[a] == group).sum(), (g[b] == group).sum()
        assert abs(na - nb) <= 1 and na >= 1


def test_balanced_draw_has_equal_group_counts() -> None:
    g = np.array([0] * 10 + [1] * 3 + [2] * 6)
    pick = balanced_draw(g, np.random.default_rng(0))
    assert np.bincount(g[pick]).tolist() == [3, 3, 3]
    assert len(set(pick.tolist())) == len(pick)


def test_binary_head_keeps_the_decision() -> None:
    coef, intercept = np.array([[0.5, -2.0]]), np.array([0.3])
    w, b = _head_from(coef, intercept, 2)
    x = np.random.default_rng(1).normal(size=(20, 2))
    assert ((x @ w.T + b).argmax(1) == ((x @ coef.T + intercept)[:, 0] > 0)).all()


@pytest.fixture(scope="module")
def dfr_run(trained_smoke_run: RunDir, tmp_path_factory) -> RunDir:
    preset = load_preset("presets/baseline-dfr.toml", ['stages=["dfr"]'], smoke=True)
    preset = preset.model_copy(
        update={
            "model": preset.model.model_copy(update={"checkpoint": str(trained_smoke_run.path)}),
            "sweep": preset.sweep.model_copy(update={"seeds": ()}),
        }
    )
    return run_job(preset, emit=lambda e: None, runs_root=tmp_path_factory.mktemp("dfr"))


def test_dfr_retrains_only_the_head(trained_smoke_run: RunDir, dfr_run: RunDir) -> None:
    from safetensors.torch import load_file

    erm = load_file(str(trained_smoke_run.checkpoints / "best.safetensors"))
    dfr = load_file(str(dfr_run.checkpoints / "dfr.safetensors"))
    changed = {k for k in erm if not torch.equal(erm[k], dfr[k])}
    assert changed and changed <= {"fc.weight", "fc.bias"}


def test_dfr_summary(dfr_run: RunDir, trained_smoke_run: RunDir) -> None:
    summary = dfr_run.summary()["dfr"]
    assert summary["selection"]["C"] in (1.0, 0.7)  # the smoke profile keeps the first two values
    assert summary["wga_before"]["test"] == pytest.approx(trained_smoke_run.summary()["splits"]["test"]["wga"])
    test = summary["splits"]["test"]
    assert summary["wga_after"]["test"] == test["wga"] == min(v for v in test["groups"].values() if v is not None)
    assert summary["halves"]["train"] + summary["halves"]["select"] == 64


def test_dfr_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    preset = load_preset("presets/baseline-dfr.toml", ['stages=["dfr"]'], smoke=True)
    with pytest.raises(PresetError, match="needs an ERM model"):
        run_job(
            preset.model_copy(update={"sweep": preset.sweep.model_copy(update={"seeds": ()})}),
            emit=lambda e: None,
            runs_root=tmp_path,
        )
