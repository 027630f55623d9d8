"""Our GradCAM equals pytorch-grad-cam's (the reference implementation) on the same model, layer
and output; skipped when the `grad-cam` package is not installed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from labconsole.engine.models.factory import create_model
from labconsole.engine.train.gradcam import default_layer, gradcam

pytest.importorskip("pytorch_grad_cam")


class Scaled(nn.Module):
    """Logits × 1000: pytorch-grad-cam divides by (1e-7 + max), which is exact only for maps far above 1e-7."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model(x) * 1000.0
        return out


def _min_max(maps: torch.Tensor) -> np.ndarray:
    """The reference's normalisation (ours divides by the maximum only; after the ReLU the two
    agree whenever a map reaches 0, and min–max makes them comparable everywhere)."""
    flat = maps.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1)
    high = flat.max(dim=1).values.view(-1, 1, 1)
    return ((maps - low) / (high - low)).numpy()


@pytest.mark.parametrize("layer", ["layer1.0.conv2", None])
def test_gradcam_equals_pytorch_grad_cam(layer: str | None) -> None:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    model = Scaled(create_model("cifar_resnet8", 2, width=8)).eval()
    name = layer or f"model.{default_layer(model.model)}"
    name = name if name.startswith("model.") else f"model.{name}"
    x = torch.randn(4, 3, 32, 32)
    ours = _min_max(gradcam(model, x, name, output_index=0))
    module = dict(model.named_modules())[name]
    with GradCAM(model=model, target_layers=[module]) as cam:
        reference = cam(input_tensor=x, targets=[ClassifierOutputTarget(0)] * len(x))
    assert reference.shape == ours.shape
    np.testing.assert_allclose(ours, reference, atol=1e-5)
