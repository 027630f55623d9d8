"""GradCAM: hooks removed whatever happens, maps that follow the evidence, ViT token grids."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labconsole.engine.models.factory import create_model
from labconsole.engine.train.gradcam import default_layer, gradcam, layer_output, pick_examples, tokens_to_grid
from labconsole.errors import UserError


class FirstChannelNet(nn.Module):
    """Output 0 reads only channel 0 of the conv, which is active on the left half of the image;
    channel 1 is active on the right half and never used."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        used = self.conv(x)[:, 0].mean(dim=(1, 2))
        return torch.stack([used, -used], dim=1)


def test_map_lights_up_where_the_used_channel_is_active() -> None:
    x = torch.zeros(2, 2, 8, 8)
    x[:, 0, :, :4] = 1.0  # channel 0: left half
    x[:, 1, :, 4:] = 1.0  # channel 1: right half
    cam = gradcam(FirstChannelNet(), x, "conv", output_index=0)
    assert cam.shape == (2, 8, 8)
    assert cam[:, :, :3].min() > 0.9 and cam[:, :, 5:].max() < 0.1
    assert float(cam.max()) == pytest.approx(1.0)


def test_hooks_are_removed_even_on_error() -> None:
    model = create_model("cifar_resnet8", 2, width=4)
    layer = dict(model.named_modules())[default_layer(model)]
    with pytest.raises(UserError, match="output_index"):
        gradcam(model, torch.randn(1, 3, 32, 32), default_layer(model), output_index=5)
    assert not layer._forward_hooks
    with pytest.raises(RuntimeError), layer_output(model, default_layer(model)):
        raise RuntimeError("boom")
    assert not layer._forward_hooks


def test_default_layers() -> None:
    assert default_layer(create_model("cifar_resnet8", 2, width=4)) == "layer3.0.conv2"
    assert default_layer(create_model("resnet18", 2)) == "layer4.1.conv2"


def test_unknown_layer_is_a_user_error() -> None:
    with pytest.raises(UserError, match="no such module"):
        gradcam(create_model("cifar_resnet8", 2, width=4), torch.randn(1, 3, 32, 32), "layer9", 0)


def test_vit_tokens_reshape_to_patch_grid() -> None:
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)  # 1 class token + 2x2 patches
    grid = tokens_to_grid(tokens, prefix=1)
    assert grid.shape == (2, 3, 2, 2)
    assert torch.equal(grid[0, :, 0, 1], tokens[0, 2])  # patch 1 (row 0, col 1) = token 2
    with pytest.raises(UserError):
        tokens_to_grid(torch.zeros(1, 4, 3), prefix=1)


@pytest.mark.slow
def test_gradcam_on_a_small_vit() -> None:
    import timm

    model = timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        num_classes=2,
        img_size=32,
        patch_size=8,
        depth=2,
        embed_dim=32,
        num_heads=2,
    )
    layer = default_layer(model)
    assert layer == "blocks.1.norm1"
    cam = gradcam(model, torch.randn(2, 3, 32, 32), layer, 0)
    assert cam.shape == (2, 32, 32) and torch.isfinite(cam).all()


def test_pick_examples_covers_every_group() -> None:
    g = torch.tensor([0, 0, 0, 1, 2, 2, 3, 3, 3, 3])
    picked = pick_examples(g, 4, 2, seed=0)
    assert sorted(g[picked].tolist()) == [0, 0, 1, 2, 2, 3, 3]
    assert picked == pick_examples(g, 4, 2, seed=0)
