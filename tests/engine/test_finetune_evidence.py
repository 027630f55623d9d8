"""Stage II reporting that cannot mislead: epoch 0 (the starting model) is recorded and can be
selected, the contrastive term has a real weight (0 removes it), the mask's realised size is
stated, and BatchNorm can be frozen."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from labconsole.config.finetune import FinetuneConfig
from labconsole.engine.api import run_job
from labconsole.engine.models.factory import create_model
from labconsole.engine.runs import RunDir
from labconsole.engine.stage1.neurons import eligible_layers
from labconsole.engine.train.finetune import set_batchnorm_mode
from labconsole.engine.train.finetune_step import FinetuneStep
from labconsole.engine.train.losses import nt_xent
from labconsole.engine.train.masking import AuxiliaryModel, neuron_mask
from labconsole.presets import load_preset


def _step(**options: object) -> FinetuneStep:
    torch.manual_seed(0)
    model = create_model("cifar_resnet8", 2, width=4)
    step = FinetuneStep(model, FinetuneConfig(**options), torch.device("cpu"))  # type: ignore[arg-type]
    step.set_mask(neuron_mask(model, eligible_layers(model), [("conv1", 0)]))
    model.eval()  # deterministic BatchNorm so losses compare exactly
    return step


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return torch.randn(6, 3, 32, 32, generator=gen), torch.randn(6, 3, 32, 32, generator=gen), torch.tensor([0, 1] * 3)


def test_contrastive_weight_zero_is_the_supervised_term_alone() -> None:
    x1, x2, y = _batch()
    step = _step(contrastive_weight=0.0)
    calls: list[int] = []

    class Recording(AuxiliaryModel):
        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(1)
            return super().__call__(x)

    assert step.aux is not None
    step.aux = Recording(step.model, step.aux.mask)
    with torch.no_grad():
        loss = step.loss(x1, x2, y)
        expected = 0.2 * F.mse_loss(step.model(x1).softmax(1), F.one_hot(y, 2).float())
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert calls == []  # the auxiliary branch is never run
    with torch.no_grad():  # and the second view plays no part
        assert float(step.loss(x1, torch.zeros_like(x2), y)) == pytest.approx(float(loss), rel=1e-6)


def test_contrastive_weight_scales_only_the_contrast() -> None:
    x1, x2, y = _batch()
    one, three = _step(), _step(contrastive_weight=3.0)
    with torch.no_grad():
        contrast = nt_xent(one.model(x1), one.aux(x2), 0.5)  # type: ignore[misc]
        assert float(three.loss(x1, x2, y) - one.loss(x1, x2, y)) == pytest.approx(2 * float(contrast), rel=1e-5)


def test_frozen_batchnorm_keeps_running_statistics() -> None:
    model = create_model("cifar_resnet8", 2, width=4)
    model.train()
    set_batchnorm_mode(model, "frozen")
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    model(torch.randn(8, 3, 32, 32))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    set_batchnorm_mode(model, "train")  # "train" leaves model.train() as it is
    model.train()
    model(torch.randn(8, 3, 32, 32))
    assert any(not torch.equal(before[k], model.state_dict()[k]) for k in before)


def test_prune_percent_zero_is_accepted_and_a_negative_one_refused() -> None:
    assert FinetuneConfig(prune_percent=0).prune_percent == 0
    with pytest.raises(ValueError, match="contrastive_weight"):
        FinetuneConfig(contrastive_weight=-1)


def _smoke(checkpoint: Path, *overrides: str):  # type: ignore[no-untyped-def]
    preset = load_preset("presets/quickstart.toml", ['stages=["finetune"]', *overrides], smoke=True)
    return preset.model_copy(update={"model": preset.model.model_copy(update={"checkpoint": str(checkpoint)})})


@pytest.fixture(scope="module")
def wrecked(trained_smoke_run: RunDir, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunDir, RunDir]:
    """The same fine-tuning with a learning rate that destroys the model, selected two ways."""
    root = tmp_path_factory.mktemp("ft-evidence")
    runs = []
    for rule in ("best-val-wga-or-start", "best-val-wga"):
        preset = _smoke(trained_smoke_run.path, "finetune.lr=50.0", f'finetune.selection="{rule}"')
        runs.append(run_job(preset, emit=lambda e: None, runs_root=root))
    return runs[0], runs[1]


def test_epoch_zero_is_the_start_and_is_recorded(wrecked: tuple[RunDir, RunDir]) -> None:
    for run in wrecked:
        epochs = [e for e in run.events("EpochResult") if e["stage"] == "finetune"]
        assert [e["epoch"] for e in epochs] == [0, 1, 2]
        summary = run.summary()["finetune"]
        assert summary["history"][0]["epoch"] == 0
        assert summary["history"][0]["val_wga"] == epochs[0]["splits"]["val"]["wga"]
        assert summary["start"]["splits"]["test"]["wga"] == pytest.approx(summary["wga_before"]["test"])


def test_keeping_the_start_and_saying_so(wrecked: tuple[RunDir, RunDir]) -> None:
    keep, paper = (run.summary()["finetune"] for run in wrecked)
    start_val = keep["history"][0]["val_wga"]
    later = [h["val_wga"] for h in keep["history"][1:]]
    assert max(later) <= start_val, "lr = 50 was meant to wreck the model"
    assert keep["selection"]["epoch"] == 0
    assert keep["wga_after"]["test"] == pytest.approx(keep["wga_before"]["test"])
    assert keep["beat_start_on_val"] is False and "never beat its start on val" in keep["warning"]
    # The paper's rule must pick a fine-tuning epoch — and the summary says it is worse than the start.
    assert paper["selection"]["epoch"] in (1, 2)
    assert "never beat its start on val" in paper["warning"]


def test_mask_realised_size_is_stated(wrecked: tuple[RunDir, RunDir]) -> None:
    summary = wrecked[1].summary()["finetune"]
    mask = summary["mask_last_epoch"]
    assert mask["realised_count"] == 1  # 0.01 % of a few hundred neurons rounds up to one
    assert mask["realised_percent"] == pytest.approx(100 / mask["eligible_count"])
    assert summary["mask_realised"].startswith(f"p = 0.01 % of {mask['eligible_count']} neurons → 1 neuron (")


def test_mask_off_and_supervised_only_run(trained_smoke_run: RunDir, tmp_path: Path) -> None:
    preset = _smoke(trained_smoke_run.path, "finetune.prune_percent=0", "finetune.epochs=1")
    summary = run_job(preset, emit=lambda e: None, runs_root=tmp_path).summary()["finetune"]
    assert summary["mask_last_epoch"]["realised_count"] == 0 and summary["mask_last_epoch"]["kind"] == "none"
    preset = _smoke(trained_smoke_run.path, "finetune.contrastive_weight=0", "finetune.epochs=1")
    summary = run_job(preset, emit=lambda e: None, runs_root=tmp_path).summary()["finetune"]
    assert summary["contrastive_weight"] == 0
    assert summary["mask_realised"] == "no auxiliary branch (contrastive_weight = 0)"


def test_continued_erm_control_is_the_supervised_only_run_from_the_same_start(
    trained_smoke_run: RunDir, tmp_path: Path
) -> None:
    preset = _smoke(trained_smoke_run.path, 'finetune.control="continued-erm"', "finetune.epochs=1")
    summary = run_job(preset, emit=lambda e: None, runs_root=tmp_path).summary()["finetune"]
    alone = _smoke(trained_smoke_run.path, "finetune.contrastive_weight=0", "finetune.epochs=1")
    reference = run_job(alone, emit=lambda e: None, runs_root=tmp_path).summary()["finetune"]
    assert summary["control"]["wga_after"] == reference["wga_after"]  # same start, data order, views
    for split in ("val", "test"):
        assert summary["method_minus_control"][split] == pytest.approx(
            summary["wga_after"][split] - reference["wga_after"][split]
        )
    assert summary["control"]["history"][0]["epoch"] == 0


def test_control_table_prints_erm_method_control_and_the_difference() -> None:
    from labconsole.engine.records import FinetuneSection
    from labconsole.engine.train.finetune import format_control_table

    text = format_control_table(
        FinetuneSection.model_validate(
            {
                "wga_before": {"val": 0.667, "test": 0.6},
                "wga_after": {"val": 0.1, "test": 0.147},
                "control": {"wga_after": {"val": 0.593, "test": 0.627}},
                "method_minus_control": {"val": 0.1 - 0.593, "test": 0.147 - 0.627},
            }
        )
    )
    lines = text.splitlines()
    assert lines[1].split()[-2:] == ["66.7", "60.0"] and lines[1].startswith("ERM (start)")
    assert lines[3].startswith("continued ERM (control)") and lines[3].split()[-2:] == ["59.3", "62.7"]
    assert lines[4].startswith("method − control (pp)") and lines[4].split()[-2:] == ["-49.3", "-48.0"]
