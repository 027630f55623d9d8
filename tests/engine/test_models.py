from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from labconsole.engine.models.checkpoint import fit_state_dict, load_checkpoint, load_state_dict_file, save_checkpoint
from labconsole.engine.models.factory import create_model, forward_features, get_head, list_backbones
from labconsole.errors import CheckpointError, UserError


@pytest.mark.parametrize(
    "name,channels,size",
    [
        ("cifar_resnet8", 3, 32),
        ("cifar_resnet20", 3, 32),
        ("small_cnn", 1, 28),
        ("mlp", 1, 28),
        ("mlp_small", 1, 28),
        ("mlp_large", 3, 32),
    ],
)
def test_small_models_forward_and_head(name: str, channels: int, size: int) -> None:
    model = create_model(name, 3, in_channels=channels, image_size=size, width=8)
    x = torch.randn(2, channels, size, size)
    assert model(x).shape == (2, 3)
    head = get_head(model)
    assert isinstance(head, nn.Linear) and head.out_features == 3
    assert forward_features(model, x).shape == (2, head.in_features)


def test_torchvision_resnet_head_replaced_without_download() -> None:
    model = create_model("resnet18", 2, image_size=64)
    assert get_head(model).out_features == 2
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2)
    assert forward_features(model, torch.randn(1, 3, 64, 64)).shape == (1, 512)


def test_timm_vit_builds_offline() -> None:
    model = create_model("deit_tiny_patch16_224", 2, image_size=32)
    assert get_head(model).out_features == 2
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 2)
    assert forward_features(model, torch.randn(1, 3, 32, 32)).shape == (1, 192)


def test_pretrained_without_cache_or_permission_is_a_clear_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(CheckpointError, match="allow_download"):
        create_model("resnet18", 2, weights="IMAGENET1K_V1")
    with pytest.raises(CheckpointError, match="allow_download"):
        create_model("deit_small_patch16_224", 2, weights="pretrained")
    with pytest.raises(UserError, match="unknown backbone"):
        create_model("resnet999", 2)
    assert {"cifar_resnet8", "resnet50", "vit_small_patch16_224"} <= {b.name for b in list_backbones()}


def test_local_imagenet_style_weights_file_loads_backbone(tmp_path: Path) -> None:
    source = create_model("resnet18", 1000)
    path = tmp_path / "resnet18-local.pth"
    torch.save(source.state_dict(), path)
    model = create_model("resnet18", 2, weights=str(path))
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert get_head(model).out_features == 2


def test_safetensors_round_trip_with_sidecar(tmp_path: Path) -> None:
    model = create_model("cifar_resnet8", 2, width=4)
    path = save_checkpoint(
        tmp_path / "best",
        model,
        {"backbone": "cifar_resnet8", "num_classes": 2, "width": 4, "image_size": 32, "in_channels": 3, "dataset": "d"},
    )
    assert path.suffix == ".safetensors" and path.with_suffix(".json").exists()
    loaded, meta = load_checkpoint(path)
    assert meta["dataset"] == "d"
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(CheckpointError, match="expected 'resnet50'"):
        load_checkpoint(path, expect={"backbone": "resnet50"})


@pytest.mark.parametrize("wrapper", ["model_state_dict", "model", "bare", "module-prefix"])
def test_legacy_pth_with_softmax_head(tmp_path: Path, wrapper: str) -> None:
    model = create_model("cifar_resnet8", 2, width=4)
    state = {}
    for k, v in model.state_dict().items():
        k = k.replace("fc.", "fc.0.")  # the authors' Sequential(Linear, Softmax) head
        state[("module." if wrapper == "module-prefix" else "") + k] = v.clone()
    obj = {wrapper: state, "epoch": 40} if wrapper in ("model_state_dict", "model") else state
    path = tmp_path / "legacy.pth.tar"
    torch.save(obj, path)
    target = create_model("cifar_resnet8", 2, width=4)
    fit_state_dict(target, load_state_dict_file(path), source=str(path), skip_head=False)
    assert torch.equal(target.fc.weight, model.fc.weight)


def test_mismatched_checkpoint_lists_keys(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save(create_model("cifar_resnet20", 2, width=4).state_dict(), path)
    target = create_model("cifar_resnet8", 2, width=8)
    with pytest.raises(CheckpointError) as info:
        fit_state_dict(target, load_state_dict_file(path), source=str(path), skip_head=False)
    message = str(info.value)
    assert "does not fit backbone cifar_resnet8" in message
    assert "unexpected: layer1.1" in message and "shape mismatch: conv1.weight" in message


def test_smoke_keeps_small_backbones_and_shrinks_big_ones() -> None:
    from labconsole.config.model import SMALL_BACKBONES, ModelConfig
    from labconsole.engine.models.factory import list_backbones

    assert set(SMALL_BACKBONES) == {b.name for b in list_backbones() if b.family == "small"}
    assert ModelConfig(backbone="mlp").smoke().backbone == "mlp"
    assert ModelConfig(backbone="resnet50", weights="IMAGENET1K_V1").smoke().backbone == "cifar_resnet8"
