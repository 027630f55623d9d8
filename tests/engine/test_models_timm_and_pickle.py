"""Any timm model by name and pretrained tag; legacy .pth files read as tensors unless trusted."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
from torch import nn

from labconsole.engine.models import factory
from labconsole.engine.models.checkpoint import load_checkpoint, save_checkpoint
from labconsole.engine.models.factory import backbone_info, create_model, get_head, timm_request
from labconsole.engine.models.weights import load_state_dict_file
from labconsole.errors import CheckpointError, UserError

TAGGED = "timm:vit_small_patch16_224.augreg_in21k_ft_in1k"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_tag_in_the_backbone_reaches_timm(monkeypatch: pytest.MonkeyPatch) -> None:
    import timm

    calls: list[tuple[str, dict[str, object]]] = []

    def fake_create_model(name: str, **kwargs: object) -> nn.Module:
        calls.append((name, kwargs))
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))

    monkeypatch.setattr(timm, "create_model", fake_create_model)
    create_model(TAGGED, 2, image_size=8, weights="pretrained", allow_download=True)
    create_model("deit_small_patch16_224", 2, image_size=8, weights="timm:fb_in1k", allow_download=True)
    assert [(name, kw["pretrained"]) for name, kw in calls] == [
        ("vit_small_patch16_224.augreg_in21k_ft_in1k", True),
        ("deit_small_patch16_224.fb_in1k", True),
    ]


def test_timm_request_resolves_names_and_refuses_unknown_tags() -> None:
    assert timm_request(TAGGED, "none") == ("vit_small_patch16_224.augreg_in21k_ft_in1k", False)
    assert timm_request("timm:resnet18", "pretrained") == ("resnet18", True)
    assert timm_request("vit_small_patch16_224", "hub") == ("vit_small_patch16_224", True)
    with pytest.raises(UserError, match=r"no pretrained tag 'nope'.*augreg_in21k_ft_in1k"):
        timm_request("timm:vit_small_patch16_224.nope", "none")
    with pytest.raises(UserError, match="no architecture 'no_such_net'"):
        backbone_info("timm:no_such_net")
    with pytest.raises(UserError, match="give one"):
        timm_request(TAGGED, "timm:augreg_in1k")


def test_any_timm_model_builds_offline_and_reloads_from_its_sidecar(tmp_path: Path) -> None:
    info = backbone_info("timm:resnet10t.c3_in1k")
    assert (info.family, info.default_image_size) == ("timm", 176)
    model = create_model("timm:resnet10t.c3_in1k", 2, image_size=32)  # a CNN: no img_size argument
    assert get_head(model).out_features == 2
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 2)
    path = save_checkpoint(tmp_path / "best", model, {"backbone": "timm:resnet10t.c3_in1k", "num_classes": 2})
    loaded, _ = load_checkpoint(path)
    assert loaded.backbone_name == "timm:resnet10t.c3_in1k"
    assert torch.equal(get_head(loaded).weight, get_head(model).weight)


def test_pretrained_tag_without_permission_names_the_tag() -> None:
    with pytest.raises(CheckpointError, match=r"augreg_in21k_ft_in1k.*allow_download"):
        create_model(TAGGED, 2, weights="pretrained")


class _Custom:
    """A class only full unpickling can rebuild (torch.load(weights_only=True) refuses it)."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        self.state = state


def _pickled_checkpoint(tmp_path: Path) -> tuple[Path, nn.Module]:
    model = create_model("cifar_resnet8", 2, width=4)
    path = tmp_path / "legacy-with-objects.pth"
    torch.save({"model_state_dict": model.state_dict(), "extra": _Custom({})}, path)
    return path, model


def test_plain_legacy_pth_loads_as_tensors_only(tmp_path: Path) -> None:
    model = create_model("cifar_resnet8", 2, width=4)
    path = tmp_path / "plain.pth"
    torch.save({"state_dict": collections.OrderedDict(model.state_dict()), "epoch": 3}, path)
    state = load_state_dict_file(path)
    assert torch.equal(state["fc.weight"], model.fc.weight)


def test_pickled_objects_need_explicit_trust(tmp_path: Path) -> None:
    path, model = _pickled_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=r"legacy-with-objects\.pth.*model\.allow_pickle = true"):
        load_state_dict_file(path)
    with pytest.raises(CheckpointError, match="allow_pickle"):
        create_model("cifar_resnet8", 2, width=4, weights=str(path))
    state = load_state_dict_file(path, allow_pickle=True)
    assert torch.equal(state["fc.weight"], model.fc.weight)
    trusted = create_model("cifar_resnet8", 2, width=4, weights=str(path), allow_pickle=True)
    assert torch.equal(trusted.fc.weight, model.fc.weight)


def test_models_package_has_no_import_circle() -> None:
    import ast

    root = Path(factory.__file__).parent

    def imports(name: str) -> set[str]:
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labconsole.engine.models."):
                found.add(node.module.rsplit(".", 1)[1])
        return found

    assert "checkpoint" not in imports("factory")
    assert not {"factory", "checkpoint"} & imports("weights")
