"""Stage II fine-tuning: the stage's events, checkpoints, summary, resume, variant options and
its refusals of bad input."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from labconsole.engine import events as ev
from labconsole.engine.api import run_job
from labconsole.engine.models.factory import create_model
from labconsole.engine.runs import RunDir
from labconsole.engine.stage1.neurons import eligible_layers
from labconsole.engine.train.finetune_step import FinetuneStep
from labconsole.engine.train.masking import neuron_mask
from labconsole.errors import CheckpointError, PresetError, UserError
from labconsole.presets import load_preset


def _smoke_finetune(checkpoint: Path | str, *overrides: str):
    # --smoke clears model.checkpoint, so set it after loading.
    preset = load_preset("presets/quickstart.toml", ['stages=["finetune"]', *overrides], smoke=True)
    return preset.model_copy(update={"model": preset.model.model_copy(update={"checkpoint": str(checkpoint)})})


@pytest.fixture(scope="module")
def finetuned(trained_smoke_run: RunDir, tmp_path_factory) -> RunDir:
    preset = _smoke_finetune(trained_smoke_run.path, 'finetune.criterion="gradient"', "finetune.eval_train=true")
    return run_job(preset, emit=lambda e: None, runs_root=tmp_path_factory.mktemp("ft"))


def test_finetune_emits_per_epoch_group_accuracies_and_selects_by_val_wga(finetuned: RunDir) -> None:
    epochs = [e for e in finetuned.events("EpochResult") if e["stage"] == "finetune"]
    assert [e["epoch"] for e in epochs] == [0, 1, 2]  # epoch 0 = the starting model
    epochs = epochs[1:]  # the paper's selection picks among fine-tuning epochs only
    for e in epochs:
        assert set(e["splits"]) == {"train", "val", "test"}
        assert e["splits"]["test"]["wga"] == min(v for v in e["splits"]["test"]["groups"].values() if v is not None)
    summary = finetuned.summary()["finetune"]
    best = max(epochs, key=lambda e: (e["splits"]["val"]["wga"], -e["epoch"]))
    assert summary["selection"] == {
        "rule": "best val WGA",
        "epoch": best["epoch"],
        "val_wga": best["splits"]["val"]["wga"],
    }
    assert summary["splits"]["test"] == best["splits"]["test"]
    assert summary["wga_after"]["test"] == best["splits"]["test"]["wga"]
    assert summary["wga_gain"]["test"] == pytest.approx(summary["wga_after"]["test"] - summary["wga_before"]["test"])
    assert summary["variant"] == "paper" and summary["variant_options"]["mask"].startswith("paper")
    assert summary["mask_last_epoch"]["gradient_source"] == "full-train"
    assert summary["mask_last_epoch"]["gradient_examples"] <= 16  # smoke: worst 32 → 16 sampled
    for name in ("finetune-best.safetensors", "finetune-best.json", "finetune-last.safetensors", "finetune-resume.pt"):
        assert (finetuned.checkpoints / name).exists(), name
    sidecar = json.loads((finetuned.checkpoints / "finetune-best.json").read_text())
    assert sidecar["stage"] == "finetune" and sidecar["epoch"] == best["epoch"]


def test_before_is_the_erm_selected_model(trained_smoke_run: RunDir, finetuned: RunDir) -> None:
    erm_test = trained_smoke_run.summary()["splits"]["test"]["wga"]
    assert finetuned.summary()["finetune"]["wga_before"]["test"] == pytest.approx(erm_test)


def test_finetuning_changes_the_weights_the_erm_checkpoint_stays(trained_smoke_run: RunDir, finetuned: RunDir) -> None:
    from safetensors.torch import load_file

    erm = load_file(str(trained_smoke_run.checkpoints / "best.safetensors"))
    tuned = load_file(str(finetuned.checkpoints / "finetune-last.safetensors"))
    assert any(not torch.equal(erm[k], tuned[k]) for k in erm if k.endswith("weight"))


def test_erm_then_finetune_from_kick_in_epoch_in_one_run(tmp_path: Path) -> None:
    preset = load_preset(
        "presets/quickstart.toml",
        ['stages=["erm", "finetune"]', "erm.epochs=2", "erm.keep_epochs=[1]", "finetune.epochs=1"],
        smoke=True,
    )
    preset = preset.model_copy(
        update={
            "erm": preset.erm.model_copy(update={"keep_epochs": (1,)}),
            "finetune": preset.finetune.model_copy(update={"kick_in_epoch": 1}),
        }
    )
    run = run_job(preset, emit=lambda e: None, runs_root=tmp_path)
    summary = run.summary()["finetune"]
    assert summary["start"]["checkpoint"].endswith("epoch_001.safetensors")
    assert summary["wga_before"]["test"] == pytest.approx(run.summary()["splits"]["test"]["wga"])
    stages = [e["stage"] for e in run.events("EpochResult")]
    assert stages == ["erm", "erm", "finetune", "finetune"]  # fine-tuning: epoch 0 (start) and 1


def test_missing_kick_in_checkpoint_is_a_clear_error(trained_smoke_run: RunDir) -> None:
    preset = _smoke_finetune(trained_smoke_run.path)
    preset = preset.model_copy(update={"finetune": preset.finetune.model_copy(update={"kick_in_epoch": 40})})
    with pytest.raises(CheckpointError, match="epoch_040"):
        run_job(preset, emit=lambda e: None, runs_root=trained_smoke_run.path.parent / "x")


def test_cancel_and_resume(trained_smoke_run: RunDir, tmp_path: Path) -> None:
    preset = _smoke_finetune(trained_smoke_run.path)
    cancel = threading.Event()

    def emit(event: ev.Event) -> None:
        if isinstance(event, ev.EpochResult) and event.epoch == 1:
            cancel.set()

    run = run_job(preset, emit=emit, cancel=cancel, runs_root=tmp_path)
    assert run.status() == "cancelled"
    assert [e["epoch"] for e in run.events("EpochResult")] == [0, 1]
    resumed = run_job(preset, emit=lambda e: None, resume=run.path)
    assert resumed.is_done
    assert [e["epoch"] for e in run.events("EpochResult")] == [0, 1, 2]  # the start is not re-evaluated
    assert resumed.summary()["finetune"]["epochs"] == 2


def test_checkpoint_of_another_architecture_is_refused(trained_smoke_run: RunDir, tmp_path: Path) -> None:
    preset = _smoke_finetune(trained_smoke_run.path)
    preset = preset.model_copy(update={"model": preset.model.model_copy(update={"backbone": "cifar_resnet20"})})
    with pytest.raises(CheckpointError, match="backbone"):
        run_job(preset, emit=lambda e: None, runs_root=tmp_path)


def test_checkpoint_of_another_dataset_is_refused(trained_smoke_run: RunDir, tmp_path: Path) -> None:
    preset = load_preset("presets/quickstart.toml", ['stages=["finetune"]', 'data.dataset="digits"'], smoke=True)
    preset = preset.model_copy(
        update={"model": preset.model.model_copy(update={"checkpoint": str(trained_smoke_run.path)})}
    )
    with pytest.raises(CheckpointError, match="does not fit"):
        run_job(preset, emit=lambda e: None, runs_root=tmp_path)


@pytest.mark.parametrize(
    "override,needle",
    [
        ("finetune.prune_percent=100", "prune_percent"),
        ("finetune.prune_percent=-0.5", "prune_percent"),
        ("finetune.supervised_weight=-0.1", "supervised_weight"),
        ("finetune.temperature=0", "temperature"),
        ("finetune.temperature=-1", "temperature"),
    ],
)
def test_bad_numbers_are_preset_errors(override: str, needle: str) -> None:
    with pytest.raises(PresetError, match=needle):
        load_preset("presets/quickstart.toml", [override])


def test_minority_gradient_source_needs_group_labels(tmp_path: Path) -> None:
    preset = load_preset(
        "presets/quickstart.toml",
        [
            'stages=["finetune"]',
            'data.dataset="digits"',
            'finetune.criterion="gradient"',
            'finetune.gradient_source="minority-groups"',
        ],
        smoke=True,
    )
    with pytest.raises(UserError, match=r"minority-groups.*group labels"):
        run_job(preset, emit=lambda e: None, runs_root=tmp_path)


def test_no_model_to_start_from_is_a_clear_error(tmp_path: Path) -> None:
    preset = load_preset("presets/quickstart.toml", ['stages=["finetune"]'], smoke=True)
    with pytest.raises(PresetError, match=r"model.checkpoint"):
        run_job(preset, emit=lambda e: None, runs_root=tmp_path)


# -- variant options change exactly what they say -----------------------------------------------


def _step(**options):
    from labconsole.config.finetune import FinetuneConfig

    torch.manual_seed(0)
    model = create_model("cifar_resnet8", 2, width=4)
    cfg = FinetuneConfig(**options)
    projection = None
    if cfg.contrast_on == "features":
        from labconsole.engine.train.finetune_step import ProjectionHead

        projection = ProjectionHead(model.fc.in_features, cfg.projection_dim)
    step = FinetuneStep(model, cfg, torch.device("cpu"), projection)
    step.set_mask(neuron_mask(model, eligible_layers(model), [("conv1", 0)]))
    model.eval()  # deterministic BatchNorm so losses can be compared exactly
    return step


def _batch():
    gen = torch.Generator().manual_seed(3)
    return torch.randn(6, 3, 32, 32, generator=gen), torch.randn(6, 3, 32, 32, generator=gen), torch.tensor([0, 1] * 3)


def test_two_views_uses_view_two_same_view_ignores_it() -> None:
    x1, x2, y = _batch()
    paper = _step()
    with torch.no_grad():
        assert float(paper.loss(x1, x2, y)) != pytest.approx(float(paper.loss(x1, x1, y)))
    code = _step(contrastive="double-same-view")
    assert float(code.loss(x1, x2, y)) == pytest.approx(float(code.loss(x1, torch.zeros_like(x2), y)))


def test_supervised_weight_zero_leaves_only_the_contrast_and_mse_vs_ce_differ() -> None:
    from labconsole.engine.train.losses import nt_xent

    x1, x2, y = _batch()
    step = _step(supervised_weight=0.0)
    with torch.no_grad():
        expected = nt_xent(step.model(x1), step.aux(x2), 0.5)
        assert float(step.loss(x1, x2, y)) == pytest.approx(float(expected), rel=1e-5)
        mse, ce = _step(supervised="mse").loss(x1, x2, y), _step(supervised="ce").loss(x1, x2, y)
        assert float(mse - expected) == pytest.approx(
            0.2
            * float(torch.nn.functional.mse_loss(step.model(x1).softmax(1), torch.nn.functional.one_hot(y, 2).float())),
            rel=1e-4,
        )
        assert float(ce - expected) == pytest.approx(
            0.2 * float(torch.nn.functional.cross_entropy(step.model(x1), y)), rel=1e-4
        )


def test_head_softmax_contrasts_and_supervises_probabilities() -> None:
    from labconsole.engine.train.losses import nt_xent

    x1, x2, y = _batch()
    step = _step(head_softmax=True, supervised="ce")
    with torch.no_grad():
        p, p_aux = step.model(x1).softmax(1), step.aux(x2).softmax(1)
        expected = nt_xent(p, p_aux, 0.5) + 0.2 * torch.nn.functional.cross_entropy(p, y)
        assert float(step.loss(x1, x2, y)) == pytest.approx(float(expected), rel=1e-5)


def test_contrast_on_features_goes_through_the_projection_head() -> None:
    x1, x2, y = _batch()
    step = _step(contrast_on="features", projection_dim=3)
    step.model.train()
    step.loss(x1, x2, y).backward()
    assert step.projection is not None
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in step.projection.parameters())


# -- views --------------------------------------------------------------------------------------


def test_identity_warp_keeps_images_and_views_differ_per_image() -> None:
    from labconsole.engine.train.views import table1_views, two_views, warp_batch

    gen = torch.Generator().manual_seed(0)
    images = (torch.rand(6, 3, 16, 16, generator=gen) * 255).to(torch.uint8)
    identity = torch.eye(3, dtype=torch.float64).repeat(6, 1, 1)
    assert torch.allclose(warp_batch(images.float(), identity), images.float(), atol=1e-3)
    same = images[:1].repeat(6, 1, 1, 1)
    views = table1_views(same, gen)
    assert len({tuple(v.flatten()[:64].round().tolist()) for v in views}) == 6  # own parameters per image
    first, second = two_views(images, gen, "translate")
    assert first.shape == second.shape == images.shape and not torch.equal(first, second)
