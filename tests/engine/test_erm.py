from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from labconsole.engine import events as ev
from labconsole.engine.api import run_job
from labconsole.engine.runs import RunDir
from labconsole.errors import UserError
from labconsole.presets import load_preset


def smoke(overrides=(), epochs: int = 2):
    return load_preset("presets/quickstart.toml", ['stages=["erm"]', f"erm.epochs={epochs}", *overrides], smoke=True)


def test_erm_run_writes_the_documented_run_directory(trained_smoke_run: RunDir) -> None:
    run = trained_smoke_run
    for name in (
        "config.toml",
        "manifest.json",
        "metrics.jsonl",
        "summary.json",
        "done",
        "checkpoints/best.safetensors",
        "checkpoints/best.json",
        "checkpoints/last.safetensors",
    ):
        assert (run.path / name).exists(), name
    summary = run.summary()
    assert summary["preset"] == "quickstart" and summary["variant"] == "paper"
    assert summary["selection"]["rule"] == "best val WGA"
    test = summary["splits"]["test"]
    assert set(test) >= {"groups", "wga", "mean", "mean_train_weighted", "mean_groups", "wga_quantum"}
    assert test["wga"] == min(v for v in test["groups"].values() if v is not None)
    manifest = run.manifest()
    assert manifest["status"] == "done" and "torch" in manifest["versions"]
    assert manifest["dataset_check"]["counts"]["train"] == [120, 16, 8, 40]
    epochs = [e for e in run.events("EpochResult")]
    assert [e["epoch"] for e in epochs] == [1, 2]
    best = max(epochs, key=lambda e: (e["splits"]["val"]["wga"], -e["epoch"]))
    assert summary["selection"]["epoch"] == best["epoch"]
    sidecar = json.loads((run.path / "checkpoints/best.json").read_text())
    assert sidecar["backbone"] == "cifar_resnet8" and sidecar["group_names"][1] == "landbird-water"


def test_cancel_saves_and_resume_continues(tmp_path: Path) -> None:
    preset = smoke(epochs=2)
    cancel = threading.Event()
    seen: list[ev.Event] = []

    def emit(event: ev.Event) -> None:
        seen.append(event)
        if isinstance(event, ev.EpochResult) and event.epoch == 1:
            cancel.set()  # cancelled during epoch 2

    run = run_job(preset, emit=emit, cancel=cancel, runs_root=tmp_path)
    assert isinstance(seen[-1], ev.RunFinished) and seen[-1].status == "cancelled"
    assert run.status() == "cancelled" and not run.is_done
    assert (run.checkpoints / "last.safetensors").exists()
    epochs_before = [e["epoch"] for e in run.events("EpochResult")]
    assert epochs_before == [1]

    resumed = run_job(preset, emit=lambda e: None, resume=run.path)
    assert resumed.path == run.path and resumed.is_done
    assert [e["epoch"] for e in run.events("EpochResult")] == [1, 2]
    assert resumed.summary()["epochs"] == 2


def test_resume_of_finished_or_foreign_dir_is_refused(trained_smoke_run: RunDir, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="already finished"):
        run_job(smoke(), emit=lambda e: None, resume=trained_smoke_run.path)
    with pytest.raises(UserError, match="not a run directory"):
        run_job(smoke(), emit=lambda e: None, resume=tmp_path)


def test_same_seed_same_result(tmp_path: Path) -> None:
    a = run_job(smoke(epochs=1), emit=lambda e: None, runs_root=tmp_path / "a")
    b = run_job(smoke(epochs=1), emit=lambda e: None, runs_root=tmp_path / "b")
    assert a.summary()["splits"] == b.summary()["splits"]


def test_balanced_erm_options_run(tmp_path: Path) -> None:
    for balance in ("reweight", "subsample"):
        run = run_job(smoke([f"erm.balance={balance}"], epochs=1), emit=lambda e: None, runs_root=tmp_path)
        assert run.is_done


def test_progress_is_throttled_and_carries_state(tmp_path: Path) -> None:
    seen: list[ev.Event] = []
    run_job(smoke(epochs=1), emit=seen.append, runs_root=tmp_path)
    progress = [e for e in seen if isinstance(e, ev.Progress)]
    assert progress, "expected progress events"
    assert all(p.total_steps > 0 and p.loss is not None for p in progress)
    assert progress[-1].recent_losses


def test_group_weights_normalised() -> None:
    from labconsole.engine.train.erm import group_weights, subsample_index

    g = torch.tensor([0] * 8 + [1] * 2)
    w = group_weights(g, 2)
    assert w[1] / w[0] == pytest.approx(4.0)
    assert w[g].mean() == pytest.approx(1.0)
    idx = subsample_index(g, 2, torch.Generator().manual_seed(0))
    assert torch.bincount(g[idx]).tolist() == [2, 2]


def test_train_split_evaluated_on_selected_model_when_not_every_epoch(tmp_path: Path) -> None:
    run = run_job(smoke(["erm.eval_train=false"], epochs=1), emit=lambda e: None, runs_root=tmp_path)
    epochs = list(run.events("EpochResult"))
    assert "train" not in epochs[0]["splits"]
    train = run.summary()["splits"]["train"]
    assert train["n"] == 184 and train["wga"] is not None


def test_model_stage_fills_the_top_level_summary(trained_smoke_run: RunDir, tmp_path: Path) -> None:
    ckpt = trained_smoke_run.path / "checkpoints" / "best.safetensors"
    preset = load_preset("presets/quickstart.toml", ['stages=["model"]', f"model.checkpoint={ckpt}"])
    preset = preset.model_copy(
        update={"data": preset.smoke().data, "model": preset.model.model_copy(update={"width": 8})}
    )
    run = run_job(preset, emit=lambda e: None, runs_root=tmp_path)
    summary = run.summary()
    assert summary["splits"]["test"] == summary["model"]["splits"]["test"]
    assert summary["splits"]["test"]["groups"] == trained_smoke_run.summary()["splits"]["test"]["groups"]
    assert summary["selection"]["rule"].startswith("given checkpoint")


def test_an_erm_only_run_keeps_its_decoded_data_for_the_console(trained_smoke_run: RunDir) -> None:
    from labconsole.engine.stage1 import run_data_cache

    config = load_preset(str(trained_smoke_run.path / "config.toml")).data
    cached = run_data_cache.read_bundle(trained_smoke_run.path, config)
    assert cached is not None, "the ERM stage wrote no dataset cache into the run directory"
    assert {name: len(split.y) for name, split in cached.splits.items()}["train"] == 184
