"""Paper B's model zoo has the parameter counts of its Table 2 (10 classes)."""

from __future__ import annotations

import pytest
import torch

from labconsole.engine.models.factory import create_model

# Paper B, Table 2 (MNIST/Fashion models on 28×28×1, CIFAR-10 models on 32×32×3).
TABLE_2 = {
    "mlp_small": (203_530, 1, 28),
    "mlp": (335_114, 1, 28),
    "mlp_large": (932_362, 1, 28),
    "small_cnn": (312_202, 1, 28),
    "cifar_resnet20": (269_722, 3, 32),
}


@pytest.mark.parametrize("backbone", sorted(TABLE_2))
def test_parameter_count_matches_table_2(backbone: str) -> None:
    count, channels, size = TABLE_2[backbone]
    model = create_model(backbone, 10, in_channels=channels, image_size=size)
    assert sum(p.numel() for p in model.parameters()) == count
    assert model(torch.zeros(2, channels, size, size)).shape == (2, 10)


def test_resnet20_shortcuts_subsample_and_zero_pad() -> None:
    model = create_model("cifar_resnet20", 10, in_channels=3, image_size=32)
    block = model.layer2[0]
    x = torch.randn(1, 16, 8, 8)
    out = block.downsample(x)
    assert out.shape == (1, 32, 4, 4)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2]) and not out[:, :8].any() and not out[:, 24:].any()
